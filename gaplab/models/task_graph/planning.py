"""The mutable plan that online schedulers build: per-node timelines with insertion, ranks.

A :class:`Plan` stores the node and start of every placed task and, per node, the sorted busy
intervals. List heuristics and the per-arrival MILP both work on a Plan: they remove the tasks
they re-plan and place them again with :meth:`Plan.place`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import numpy as np

from gaplab.models.task_graph.instance import Instance

EPS = 1e-9
"""Absolute slack when testing whether a task fits into an idle gap (seconds)."""


class Timeline:
    """Busy intervals of one node, sorted by start and never overlapping."""

    __slots__ = ("starts", "ends", "tasks")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.tasks: list[int] = []

    def earliest(self, ready: float, duration: float) -> float:
        """Return the earliest start at or after ``ready`` of an idle gap of length ``duration``."""
        candidate = ready
        k = bisect.bisect_right(self.ends, candidate)
        while k < len(self.starts):
            if self.starts[k] >= candidate + duration - EPS:
                return candidate
            candidate = max(candidate, self.ends[k])
            k += 1
        return candidate

    def insert(self, start: float, end: float, task: int) -> None:
        k = bisect.bisect_left(self.starts, start)
        # Zero-length tasks may share a start with a busy interval; keep ends sorted too.
        while k < len(self.starts) and self.starts[k] == start and self.ends[k] < end:
            k += 1
        self.starts.insert(k, start)
        self.ends.insert(k, end)
        self.tasks.insert(k, task)

    def remove(self, task: int) -> None:
        k = self.tasks.index(task)
        del self.starts[k], self.ends[k], self.tasks[k]


class Plan:
    """Placed tasks of one instance: ``node[t]`` (-1 when unplaced), ``start[t]``, ``finish[t]``."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        flat = instance.flat
        self.speeds = instance.network.speed_array
        self.inv_bw = instance.network.inverse_bandwidth
        self.cost = flat.cost
        self.preds = flat.preds
        self.succs = flat.succs
        n = flat.size
        self.node = np.full(n, -1, dtype=np.int64)
        self.start = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.timelines = [Timeline() for _ in self.speeds]

    @property
    def num_nodes(self) -> int:
        return len(self.speeds)

    def copy(self) -> Plan:
        other = Plan.__new__(Plan)
        other.__dict__.update(self.__dict__)
        other.node = self.node.copy()
        other.start = self.start.copy()
        other.finish = self.finish.copy()
        other.timelines = []
        for line in self.timelines:
            clone = Timeline()
            clone.starts, clone.ends, clone.tasks = (
                list(line.starts),
                list(line.ends),
                list(line.tasks),
            )
            other.timelines.append(clone)
        return other

    def placed(self, task: int) -> bool:
        return bool(self.node[task] >= 0)

    def ready_time(self, task: int, node: int, release: float) -> float:
        """Time at which every input of ``task`` is on ``node``: ``max(r_t, C_p + d_pt / b)``."""
        ready = release
        inv = self.inv_bw
        for p, data in self.preds[task]:
            arrival = self.finish[p] + data * inv[self.node[p], node]
            if arrival > ready:
                ready = arrival
        return ready

    def earliest_finish(self, task: int, node: int, release: float) -> tuple[float, float]:
        """Start and finish of ``task`` on ``node`` in the earliest idle gap (insertion)."""
        duration = self.cost[task] / self.speeds[node]
        start = self.timelines[node].earliest(self.ready_time(task, node, release), duration)
        return start, start + duration

    def best_node(self, task: int, release: float) -> tuple[int, float, float]:
        """Node with the earliest finish time (ties to the lowest node id), start and finish."""
        best = (-1, np.inf, np.inf)
        for v in range(self.num_nodes):
            s, f = self.earliest_finish(task, v, release)
            if f < best[2] - EPS:
                best = (v, s, f)
        return best

    def place(self, task: int, node: int, start: float) -> None:
        if self.node[task] >= 0:
            raise ValueError(f"task {task} is already placed; remove it first")
        end = start + self.cost[task] / self.speeds[node]
        self.node[task] = node
        self.start[task] = start
        self.finish[task] = end
        self.timelines[node].insert(start, end, task)

    def remove(self, tasks: Iterable[int]) -> None:
        for t in tasks:
            v = int(self.node[t])
            if v >= 0:
                self.timelines[v].remove(int(t))
                self.node[t] = -1
                self.start[t] = np.nan
                self.finish[t] = np.nan


def upward_rank(instance: Instance) -> np.ndarray:
    """HEFT's upward rank of every task.

    ``rank_u(t) = mean_v (w_t / s_v) + max_{c in succ(t)} (mean_uv (d_tc / b_uv) + rank_u(c))``,
    where the link mean runs over all ordered node pairs, the zero-delay diagonal included.
    """
    flat = instance.flat
    mean_time = flat.cost * np.mean(1.0 / instance.network.speed_array)
    mean_inv = float(np.mean(instance.network.inverse_bandwidth))
    rank = np.zeros(flat.size)
    for t in reversed(topological_order(instance)):
        tail = max((d * mean_inv + rank[c] for c, d in flat.succs[t]), default=0.0)
        rank[t] = mean_time[t] + tail
    return rank


def downward_rank(instance: Instance) -> np.ndarray:
    """CPoP's downward rank: longest mean path from an entry task to ``t``, excluding ``t``."""
    flat = instance.flat
    mean_time = flat.cost * np.mean(1.0 / instance.network.speed_array)
    mean_inv = float(np.mean(instance.network.inverse_bandwidth))
    rank = np.zeros(flat.size)
    for t in topological_order(instance):
        rank[t] = max(
            (rank[p] + mean_time[p] + d * mean_inv for p, d in flat.preds[t]), default=0.0
        )
    return rank


def topological_order(instance: Instance) -> list[int]:
    """Global task ids in a topological order (Kahn's algorithm, smallest id first)."""
    import heapq

    flat = instance.flat
    indegree = np.array([len(p) for p in flat.preds])
    heap = [int(t) for t in np.flatnonzero(indegree == 0)]
    heapq.heapify(heap)
    order = []
    while heap:
        t = heapq.heappop(heap)
        order.append(t)
        for c, _ in flat.succs[t]:
            indegree[c] -= 1
            if indegree[c] == 0:
                heapq.heappush(heap, c)
    return order
