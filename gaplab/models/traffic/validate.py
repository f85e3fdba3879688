"""Independent check of a traffic Allocation against its Instance."""

from __future__ import annotations

import numpy as np

from gaplab.models.traffic.delay import Allocation, objective
from gaplab.models.traffic.instance import Instance

CONSERVATION_TOLERANCE = 1e-8
"""Largest accepted ``|sum_j x_ij - lambda_i|``, relative to ``max(1, lambda_i)``."""
NONNEGATIVITY_TOLERANCE = 1e-10
"""Most negative accepted flow."""


def validate(instance: Instance, solution: Allocation | np.ndarray) -> list[str]:
    """List the violated invariants of a split; empty when it is feasible.

    Checks conservation of each source's rate, nonnegativity, no flow on a missing path, and
    every access path and node strictly below its capacity (the delay is infinite at capacity).
    """
    flows = solution.flows if isinstance(solution, Allocation) else np.asarray(solution)
    shape = (instance.num_sources, instance.num_nodes)
    if flows.shape != shape:
        return [f"flows have shape {flows.shape}, expected {shape} (sources x nodes)"]
    if not np.all(np.isfinite(flows)):
        return ["flows contain NaN or infinite values"]
    problems = []
    excess = np.abs(flows.sum(axis=1) - instance.rates)
    for i in np.flatnonzero(excess > CONSERVATION_TOLERANCE * np.maximum(1.0, instance.rates)):
        problems.append(
            f"conservation: source {instance.sources[i]!r} sends {flows[i].sum():.12g}, "
            f"rate is {instance.rates[i]:.12g}"
        )
    for i, j in np.argwhere(flows < -NONNEGATIVITY_TOLERANCE):
        problems.append(
            f"nonnegativity: flow {instance.sources[i]!r} -> {instance.nodes[j]!r} is "
            f"{flows[i, j]:.3g}"
        )
    links = instance.links
    for i, j in np.argwhere(~links & (np.abs(flows) > NONNEGATIVITY_TOLERANCE)):
        problems.append(
            f"access capacity: flow {flows[i, j]:.6g} on the missing path "
            f"{instance.sources[i]!r} -> {instance.nodes[j]!r}"
        )
    for i, j in np.argwhere(links & (flows >= instance.access_capacity)):
        problems.append(
            f"access capacity: flow {flows[i, j]:.6g} on {instance.sources[i]!r} -> "
            f"{instance.nodes[j]!r} is not below its capacity {instance.access_capacity[i, j]:.6g}"
        )
    loads = flows.sum(axis=0)
    for j in np.flatnonzero(loads >= instance.node_capacity):
        problems.append(
            f"node capacity: load {loads[j]:.6g} of node {instance.nodes[j]!r} is not below its "
            f"capacity {instance.node_capacity[j]:.6g}"
        )
    return problems


def evaluate(instance: Instance, solution: Allocation | np.ndarray) -> float:
    """Flow-weighted total delay ``F`` of a split (inf when a queue is at or over capacity)."""
    flows = solution.flows if isinstance(solution, Allocation) else np.asarray(solution)
    return objective(instance, flows)
