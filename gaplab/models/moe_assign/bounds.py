"""Lower bounds and exhaustive search for one layer's assignment.

The LP relaxation without a slot limit has a closed form: deciding whether a layer time ``z``
is reachable is a fractional knapsack (move CPU work ``p_e`` to the GPU at GPU cost ``g_e``),
so the LP optimum moves experts to the GPU in decreasing order of ``p_e / g_e`` until the two
loads cross, with one expert split at the crossing.
"""

from __future__ import annotations

import numpy as np

from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.validate import Assignment

BRUTE_FORCE_MAX_EXPERTS = 22
"""Largest layer :func:`brute_force` enumerates (4 million schedules)."""

_CHUNK_BITS = 16


def ratio_order(instance: Instance) -> np.ndarray:
    """Positions of the experts in decreasing ``p_e / g_e``, ties by lower expert id.

    An expert with ``g_e = 0`` has an infinite ratio.
    """
    g = instance.gpu_cost
    p = instance.cpu_cost
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(g > 0, p / np.where(g > 0, g, 1.0), np.inf)
    return np.lexsort((instance.experts, -ratio))


def lp_relaxation(instance: Instance) -> tuple[float, np.ndarray]:
    """Return the LP relaxation's value ``z_LP`` and an optimal fractional ``x``.

    Exact when ``slot_limit`` is None. With a slot limit the result is the LP without it, a
    weaker but still valid lower bound (build with ``relax=True`` for the tighter one).
    Raises ValueError with ``copy_overlap``, whose relaxation has no such closed form.
    """
    if instance.copy_overlap:
        raise ValueError(
            f"instance {instance.name!r} overlaps copies with kernels; the sorted closed form "
            "covers one serialized GPU stream only, so call lp_bound, which solves the LP"
        )
    g = instance.gpu_cost
    p = instance.cpu_cost
    x = np.zeros(instance.n)
    gpu = float(instance.gpu_base_s)
    cpu = float(p.sum())
    if gpu >= cpu:
        return gpu, x
    for position in ratio_order(instance):
        step = (cpu - gpu) / (g[position] + p[position]) if g[position] + p[position] > 0 else 1
        if step >= 1.0:
            x[position] = 1.0
            gpu += g[position]
            cpu -= p[position]
            continue
        x[position] = step
        return gpu + step * g[position], x
    # Everything moved and the GPU still finishes first.
    return max(gpu, cpu), x


def lp_bound(instance: Instance) -> float:
    """Return the LP relaxation value in seconds, a lower bound on the optimal layer time.

    Uses the closed form for one serialized GPU stream; with ``copy_overlap`` it solves the
    relaxation of the overlapped program with HiGHS.
    """
    if not instance.copy_overlap:
        return lp_relaxation(instance)[0]
    from gaplab.models.moe_assign.build import build
    from gaplab.models.moe_assign.validate import MS_PER_S

    result = build(instance, relax=True).solve("highs")
    result.raise_for_status()
    assert result.objective is not None
    return result.objective / MS_PER_S


def trivial_bound(instance: Instance) -> float:
    """Return ``max(gpu_base, max_e min(g_e, p_e))``: every expert runs somewhere."""
    cheapest = np.minimum(instance.gpu_cost, instance.cpu_cost)
    return float(max(instance.gpu_base_s, cheapest.max()))


def brute_force(instance: Instance) -> tuple[float, Assignment]:
    """Enumerate all ``2**n`` schedules and return the best layer time and assignment.

    Among equal layer times the schedule whose bit mask (bit ``i`` for the ``i``-th expert) is
    smallest wins. Raises ValueError above :data:`BRUTE_FORCE_MAX_EXPERTS` experts.
    """
    n = instance.n
    if n > BRUTE_FORCE_MAX_EXPERTS:
        raise ValueError(
            f"brute force over {n} experts would enumerate 2**{n} schedules; it accepts at "
            f"most {BRUTE_FORCE_MAX_EXPERTS} experts, so use the MILP instead"
        )
    g = instance.gpu_cost
    p = instance.cpu_cost
    uncached = instance.uncached.astype(np.int64)
    copy = np.where(instance.cached, 0.0, instance.transfer_s)
    total_cpu = float(p.sum())
    bits = np.arange(n)
    chunk = 1 << min(n, _CHUNK_BITS)
    best_value = np.inf
    best_mask = 0
    for start in range(0, 1 << n, chunk):
        masks = np.arange(start, start + chunk, dtype=np.int64)
        x = ((masks[:, None] >> bits) & 1).astype(bool)
        if instance.copy_overlap:
            first = (x * copy).max(axis=1)
            compute = instance.gpu_base_s + x @ (g - copy) + first
            gpu = np.maximum(x @ copy, compute)
        else:
            gpu = instance.gpu_base_s + x @ g
        cpu = total_cpu - x @ p
        value = np.maximum(gpu, cpu)
        if instance.slot_limit is not None:
            value[(x @ uncached) > instance.slot_limit] = np.inf
        position = int(np.argmin(value))
        if value[position] < best_value:
            best_value = float(value[position])
            best_mask = int(masks[position])
    on_gpu = ((best_mask >> bits) & 1).astype(bool)
    return best_value, Assignment.of(instance, on_gpu, "brute-force")
