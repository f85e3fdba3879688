"""Metrics of a schedule (makespan, response, slowdown, fairness, utilization) and lower bounds.

Definitions (choices of this package; per-task slowdown would also be reasonable):

- makespan: ``max_t C_t``;
- response of graph ``g``: ``C_g - a_g`` with ``C_g`` the latest finish of its tasks;
- slowdown of ``g``: response divided by ``M_g``, the HEFT makespan of ``g`` alone on the empty
  network, so 1 means "as fast as if it ran alone";
- fairness: Jain's index ``(sum x)^2 / (M sum x^2)`` of the slowdowns (1 is perfectly even,
  ``1 / M`` the worst) and the maximum slowdown;
- utilization: total busy time over ``|V| * makespan``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from gaplab.models.task_graph.instance import Instance
from gaplab.models.task_graph.schedule import Schedule


@dataclass(frozen=True)
class Metrics:
    """Summary of one schedule; times in seconds."""

    makespan: float
    mean_response: float
    max_response: float
    mean_slowdown: float
    max_slowdown: float
    jain_index: float
    utilization: float
    scheduler_seconds: float
    """Total scheduler run time over all arrivals."""
    max_arrival_seconds: float
    """Largest scheduler run time at a single arrival."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def alone_makespans(instance: Instance) -> np.ndarray:
    """``M_g``: HEFT makespan of each graph alone on the empty network, arriving at 0."""
    from gaplab.heuristics.task_graph import offline_list

    out = np.empty(len(instance.graphs))
    for i, graph in enumerate(instance.graphs):
        single = Instance(graph.name, instance.network, (replace(graph, arrival=0.0),))
        out[i] = offline_list(single, "heft").makespan(single)
    return out


def jain_index(values: np.ndarray) -> float:
    """Jain's fairness index of nonnegative values; 1 when all are equal."""
    values = np.asarray(values, dtype=float)
    denominator = len(values) * float(np.sum(values**2))
    return float(np.sum(values) ** 2 / denominator) if denominator > 0 else 1.0


def graph_finish(instance: Instance, schedule: Schedule) -> np.ndarray:
    """``C_g``: latest finish time of each graph's tasks."""
    finish = schedule.finish(instance)
    return np.array([finish[group].max() for group in instance.flat.graph_tasks])


def compute_metrics(
    instance: Instance, schedule: Schedule, alone: np.ndarray | None = None
) -> Metrics:
    """Compute every metric of ``schedule``; ``alone`` reuses :func:`alone_makespans`."""
    if alone is None:
        alone = alone_makespans(instance)
    finish = schedule.finish(instance)
    makespan = float(finish.max())
    arrivals = np.array([g.arrival for g in instance.graphs])
    response = graph_finish(instance, schedule) - arrivals
    slowdown = response / np.maximum(alone, 1e-12)
    busy = float(np.sum(finish - np.asarray(schedule.start)))
    nodes = len(instance.network.speeds)
    seconds = np.asarray(schedule.scheduler_seconds, dtype=float)
    return Metrics(
        makespan=makespan,
        mean_response=float(response.mean()),
        max_response=float(response.max()),
        mean_slowdown=float(slowdown.mean()),
        max_slowdown=float(slowdown.max()),
        jain_index=jain_index(slowdown),
        utilization=busy / (nodes * makespan) if makespan > 0 else 0.0,
        scheduler_seconds=float(seconds.sum()),
        max_arrival_seconds=float(seconds.max()) if len(seconds) else 0.0,
    )


def makespan_lower_bound(instance: Instance) -> float:
    """Compute a cheap lower bound on every schedule's makespan.

    The larger of ``max_g (a_g + longest path of g with every task on the fastest node and no
    transfers)`` and ``a_1 + sum_t w_t / sum_v s_v`` (all work spread perfectly from the first
    arrival).
    """
    from gaplab.models.task_graph.planning import topological_order

    flat = instance.flat
    speeds = instance.network.speed_array
    fastest = float(speeds.max())
    path = np.zeros(flat.size)
    for t in topological_order(instance):
        path[t] = flat.cost[t] / fastest + max((path[p] for p, _ in flat.preds[t]), default=0.0)
    chain = float(np.max(flat.arrival + path))
    volume = float(instance.graphs[0].arrival + flat.cost.sum() / speeds.sum())
    return max(chain, volume)
