"""Fast CPU/GPU expert assignment rules for one MoE layer, and the baselines they beat.

Every rule returns an :class:`~gaplab.models.moe_assign.validate.Assignment`. The greedy rule
is the one a runtime would call once per layer and step, so its core,
:func:`greedy_assign`, works on plain numpy vectors and avoids per-expert Python work.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.validate import Assignment, layer_time

logger = logging.getLogger(__name__)

FRACTIONAL_TOLERANCE = 1e-6
"""LP values within this of 0 or 1 count as integral when rounding."""

MAX_ENUMERATED = 12
"""Maximum number of fractional LP entries whose roundings :func:`round_fractional` enumerates."""

KEYS = ("difference", "ratio")
STOPS = ("best_prefix", "first_crossing")


def greedy_assign(
    gpu_cost: np.ndarray,
    cpu_cost: np.ndarray,
    uncached: np.ndarray | None = None,
    *,
    key: str = "difference",
    stop: str = "best_prefix",
    slot_limit: int | None = None,
    gpu_base: float = 0.0,
    ids: np.ndarray | None = None,
    copy_s: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Assign experts greedily: move them to the GPU in key order, keep the best prefix.

    Experts are sorted by ``p_e - g_e`` (``key="difference"``, the largest saving from the GPU
    first) or by ``p_e / g_e`` (``key="ratio"``), ties broken by lower ``ids`` (by position
    when ``ids`` is None). Starting from everything on the CPU, the rule moves experts to the
    GPU in that order and returns the prefix with the smallest ``max(GPU load, CPU load)``.
    ``stop="first_crossing"`` considers prefixes only up to the first one where the GPU load
    reaches the CPU load. With a ``slot_limit``, uncached experts beyond the first
    ``slot_limit`` in the order are skipped.

    With the ratio key and the best prefix the result is at most ``z_LP + min(g_f, p_f)``,
    where ``f`` is the expert the LP relaxation splits, hence at most twice the optimum.

    Parameters
    ----------
    gpu_cost, cpu_cost
        ``g_e`` and ``p_e`` in seconds.
    uncached
        Boolean ``1 - c_e``; needed only with ``slot_limit``.
    key, stop
        The sort key and the stopping rule, see above.
    slot_limit
        Most uncached experts to copy, or None.
    gpu_base
        Fixed GPU time added to the GPU side (shared experts).
    ids
        Expert ids for tie-breaking.
    copy_s
        Copy time of each expert (0 when cached) when a copy engine overlaps copies with
        kernels; the GPU load of a prefix is then the larger of its copy total and
        ``gpu_base`` + its kernel total + its longest copy. None for one serialized stream.

    Returns
    -------
    on_gpu, layer_time
        The 0-1 decisions as booleans and the layer time in seconds.
    """
    g = np.asarray(gpu_cost, dtype=float)
    p = np.asarray(cpu_cost, dtype=float)
    if key == "difference":
        score = g - p
    elif key == "ratio":
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            score = -p / g
    else:
        raise ValueError(f"key must be one of {KEYS}, got {key!r}")
    order = np.argsort(score, kind="stable") if ids is None else np.lexsort((ids, score))

    if slot_limit is not None:
        if uncached is None:
            raise ValueError("a slot_limit needs the uncached flags of the experts")
        copies = np.asarray(uncached, dtype=bool)[order]
        allowed = ~copies | (np.cumsum(copies) <= slot_limit)
        order = order[allowed]

    total_cpu = float(p.sum())
    if copy_s is None:
        gpu_load = gpu_base + np.cumsum(g[order])
    else:
        copies = np.asarray(copy_s, dtype=float)[order]
        kernels = g[order] - copies
        compute = gpu_base + np.cumsum(kernels) + np.maximum.accumulate(copies)
        gpu_load = np.maximum(np.cumsum(copies), compute)
    cpu_load = total_cpu - np.cumsum(p[order])
    prefix_time = np.maximum(gpu_load, cpu_load)
    if stop == "first_crossing":
        crossed = np.flatnonzero(gpu_load >= cpu_load)
        if len(crossed):
            prefix_time = prefix_time[: crossed[0] + 1]
    elif stop != "best_prefix":
        raise ValueError(f"stop must be one of {STOPS}, got {stop!r}")

    on_gpu = np.zeros(len(g), dtype=bool)
    best_empty = max(gpu_base, total_cpu)
    if len(prefix_time) == 0:
        return on_gpu, best_empty
    position = int(np.argmin(prefix_time))
    best = float(prefix_time[position])
    if best < best_empty:
        on_gpu[order[: position + 1]] = True
        return on_gpu, best
    return on_gpu, best_empty


def _tie_ids(instance: Instance) -> np.ndarray | None:
    """Ids for tie-breaking, or None when the experts are already in increasing id order."""
    experts = instance.experts
    if len(experts) < 2 or bool(np.all(experts[1:] > experts[:-1])):
        return None
    return experts


def _greedy(instance: Instance, key: str, stop: str, method: str) -> Assignment:
    copy_s = None
    if instance.copy_overlap:
        copy_s = np.where(instance.cached, 0.0, instance.transfer_s)
    on_gpu, _ = greedy_assign(
        instance.gpu_cost,
        instance.cpu_cost,
        instance.uncached,
        key=key,
        stop=stop,
        slot_limit=instance.slot_limit,
        gpu_base=float(instance.gpu_base_s),
        ids=_tie_ids(instance),
        copy_s=copy_s,
    )
    return Assignment.of(instance, on_gpu, method)


def greedy(instance: Instance) -> Assignment:
    """Greedy assignment with the difference key ``p_e - g_e`` and the best prefix."""
    return _greedy(instance, "difference", "best_prefix", "greedy")


def greedy_ratio(instance: Instance) -> Assignment:
    """Greedy assignment with the ratio key ``p_e / g_e``; within twice the optimum."""
    return _greedy(instance, "ratio", "best_prefix", "greedy-ratio")


def greedy_first_crossing(instance: Instance) -> Assignment:
    """Greedy with the difference key that stops once the GPU load reaches the CPU load."""
    return _greedy(instance, "difference", "first_crossing", "greedy-first-crossing")


def all_cpu(instance: Instance) -> Assignment:
    """Run every expert on the CPU: the layer takes ``sum_e p_e``."""
    return Assignment.of(instance, np.zeros(instance.n, dtype=bool), "all-cpu")


def cached_gpu(instance: Instance) -> Assignment:
    """Run cached experts on the GPU and the rest on the CPU, copying nothing."""
    return Assignment.of(instance, instance.cached.copy(), "cached-gpu")


def static_breakeven(instance: Instance) -> Assignment:
    """Place each expert on the device where it alone finishes sooner, ignoring balance.

    Cached experts run on the GPU when ``g_e <= p_e``; an uncached expert is copied when its
    CPU time exceeds copy plus GPU time. With a slot limit the copies with the largest saving
    ``p_e - g_e`` win. The rule looks at one expert at a time and never at the other device's
    load, like the static per-expert placement of earlier hybrid offloading systems.
    """
    g = instance.gpu_cost
    p = instance.cpu_cost
    on_gpu = g <= p
    if instance.slot_limit is not None:
        copies = np.flatnonzero(on_gpu & instance.uncached)
        if len(copies) > instance.slot_limit:
            saving = (p - g)[copies]
            order = np.lexsort((instance.experts[copies], -saving))
            on_gpu[copies[order[instance.slot_limit :]]] = False
    return Assignment.of(instance, on_gpu, "static")


def round_fractional(instance: Instance, x: np.ndarray) -> np.ndarray:
    """Return the best 0-1 vector obtained by rounding the fractional entries of ``x``.

    Entries within :data:`FRACTIONAL_TOLERANCE` of 0 or 1 are fixed. Up to
    :data:`MAX_ENUMERATED` fractional entries are enumerated (a basic LP solution of this
    program has at most three), and the best rounding within the slot limit is kept. More
    fractional entries are rounded at 0.5.
    """
    base = x > 0.5
    fractional = np.flatnonzero((x > FRACTIONAL_TOLERANCE) & (x < 1 - FRACTIONAL_TOLERANCE))
    if len(fractional) > MAX_ENUMERATED:
        logger.warning("LP point has %d fractional entries; rounding at 0.5", len(fractional))
        return base
    best, best_time = None, np.inf
    for bits in itertools.product((False, True), repeat=len(fractional)):
        candidate = base.copy()
        candidate[fractional] = bits
        copies = int(np.count_nonzero(candidate & instance.uncached))
        if instance.slot_limit is not None and copies > instance.slot_limit:
            continue
        value = layer_time(instance, candidate)
        if value < best_time:
            best, best_time = candidate, value
    if best is None:
        # Every rounding up breaks the slot limit; rounding all fractional entries down never
        # adds copies, so it stays feasible.
        best = x >= 1 - FRACTIONAL_TOLERANCE
    return best


def lp_round(instance: Instance) -> Assignment:
    """Solve the LP relaxation with HiGHS and round its fractional decisions.

    A heuristic, not an exact method: the rounded schedule can be slower than the optimum.
    The LP value, a lower bound on the optimal layer time in milliseconds, is kept as the
    Assignment's ``lower_bound``. Raises RuntimeError when the LP solve finds no point.
    """
    from gaplab.models.moe_assign.build import solve_lp_relaxation

    result = solve_lp_relaxation(instance)
    values = result.value("x")
    if values is None:
        raise RuntimeError(
            f"the LP relaxation of layer {instance.name!r} ended with "
            f"{result.termination.value!r} and returned no point to round"
        )
    rounded = round_fractional(instance, np.asarray(values, dtype=float))
    return Assignment.of(instance, rounded, "lp-round", lower_bound=result.bound)


HEURISTICS = {
    "greedy": greedy,
    "greedy-ratio": greedy_ratio,
    "greedy-first-crossing": greedy_first_crossing,
    "static": static_breakeven,
    "cached-gpu": cached_gpu,
    "all-cpu": all_cpu,
    "lp-round": lp_round,
}
"""Heuristics by the names the command line uses."""
