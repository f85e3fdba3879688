"""Fast CPU/GPU expert assignment rules for one MoE layer, and the baselines they beat.

Every rule returns an :class:`~gaplab.models.moe_assign.validate.Assignment`. The greedy rule
is the one a runtime would call once per layer and step, so its core,
:func:`greedy_assign`, works on plain numpy vectors and avoids per-expert Python work.
"""

from __future__ import annotations

import numpy as np

from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.validate import Assignment

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


HEURISTICS = {
    "greedy": greedy,
    "greedy-ratio": greedy_ratio,
    "greedy-first-crossing": greedy_first_crossing,
    "static": static_breakeven,
    "cached-gpu": cached_gpu,
    "all-cpu": all_cpu,
}
"""Heuristics by the names the command line uses."""
