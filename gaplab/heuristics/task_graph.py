"""List schedulers for the task-graph model and their Last-K (schedule preemption) versions.

Four base heuristics place a set of tasks into a :class:`~gaplab.models.task_graph.planning.Plan`
that may already hold other tasks, always using the earliest idle gap on a node (insertion):

- ``heft``: tasks in decreasing upward rank, each on the node of earliest finish time;
- ``cpop``: ready tasks by upward plus downward rank. Tasks on a graph's critical path go to
  the fastest node, the others to the node of earliest finish time;
- ``minmin`` / ``maxmin``: among ready tasks, place the one whose earliest finish time is the
  smallest (MinMin) or the largest (MaxMin), on its best node.

:func:`last_k` runs a base heuristic online. At each arrival ``a_i`` it removes the tasks of
the last ``K`` graphs (the new one included) that have not started (``S_t >= a_i``). It places
them again together with the new graph, with release time ``max(a_g, a_i) = a_i``, so no
re-planned task lands in the past. Older graphs keep their slots even if not started.
``K = 1`` never re-plans and ``K >= M`` (or ``None``) re-plans everything that has not started.
:func:`non_preemptive` and :func:`fully_preemptive` implement those two ends directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from gaplab.models.task_graph.instance import Instance
from gaplab.models.task_graph.planning import (
    EPS,
    Plan,
    downward_rank,
    topological_order,
    upward_rank,
)
from gaplab.models.task_graph.schedule import Placement, Schedule

logger = logging.getLogger(__name__)

PlaceFn = Callable[[Plan, Sequence[int], np.ndarray], None]
"""``place(plan, tasks, release)``: put every task of ``tasks`` into ``plan``; ``release[t]`` is
the earliest start of task ``t`` (indexed by global id)."""


# ---------------------------------------------------------------------- base heuristics


def _ranks(plan: Plan) -> np.ndarray:
    cached = plan.__dict__.get("_rank_u")
    if cached is None:
        cached = upward_rank(plan.instance)
        plan.__dict__["_rank_u"] = cached
    return cached


def _topological_position(plan: Plan) -> np.ndarray:
    cached = plan.__dict__.get("_topo")
    if cached is None:
        cached = np.empty(plan.instance.flat.size, dtype=np.int64)
        cached[topological_order(plan.instance)] = np.arange(len(cached))
        plan.__dict__["_topo"] = cached
    return cached


def place_heft(plan: Plan, tasks: Sequence[int], release: np.ndarray) -> None:
    """Place ``tasks`` by HEFT with insertion: decreasing upward rank, earliest finish node.

    Ties in rank go to the task earlier in topological order, so a parent comes before its
    children even when costs and data are zero.

    NOTE: the K-preemptive HEFT of the saga library (ANRGUSC/saga, ``kpheft.py``) sorts by
    ``rank_u`` plus the task's index in reverse topological order. That sum is also a valid
    order but lets the index outweigh small rank differences, so orders can differ from saga's.
    """
    rank = _ranks(plan)
    position = _topological_position(plan)
    order = sorted(tasks, key=lambda t: (-rank[t], position[t]))
    for t in order:
        v, s, _ = plan.best_node(t, float(release[t]))
        plan.place(t, v, s)


def place_cpop(plan: Plan, tasks: Sequence[int], release: np.ndarray) -> None:
    """Place ``tasks`` by CPoP (critical path on a processor) with insertion."""
    instance = plan.instance
    cache = plan.__dict__.setdefault("_cpop", {})
    if not cache:
        up, down = _ranks(plan), downward_rank(instance)
        priority = up + down
        critical = np.zeros(instance.flat.size, dtype=bool)
        for group in instance.flat.graph_tasks:
            best = priority[group].max()
            critical[group] = np.abs(priority[group] - best) <= 1e-9 * max(1.0, best)
        cache["priority"], cache["critical"] = priority, critical
        # The critical path runs fastest on the fastest node (costs scale with 1 / s_v).
        cache["cp_node"] = int(np.argmax(plan.speeds))
    priority, critical, cp_node = cache["priority"], cache["critical"], cache["cp_node"]

    def pick(ready: list[int]) -> int:
        return max(ready, key=lambda task: (priority[task], -task))

    for t in _ready_order(plan, tasks, pick):
        r = float(release[t])
        if critical[t]:
            s, _ = plan.earliest_finish(t, cp_node, r)
            plan.place(t, cp_node, s)
        else:
            v, s, _ = plan.best_node(t, r)
            plan.place(t, v, s)


def _ready_order(
    plan: Plan, tasks: Sequence[int], pick: Callable[[list[int]], int]
) -> Iterator[int]:
    """Yield ``tasks`` one at a time as they become ready; ``pick`` chooses among the ready ones.

    The caller places each yielded task before asking for the next one.
    """
    pending = set(tasks)
    waiting = {t: sum(1 for p, _ in plan.preds[t] if p in pending) for t in tasks}
    ready = [t for t, k in waiting.items() if k == 0]
    count = 0
    while ready:
        t = pick(ready)
        ready.remove(t)
        count += 1
        yield t
        for c, _ in plan.succs[t]:
            if c in waiting:
                waiting[c] -= 1
                if waiting[c] == 0:
                    ready.append(c)
    if count != len(pending):
        raise RuntimeError("tasks to place depend on tasks that are neither placed nor listed")


def _place_extreme(plan: Plan, tasks: Sequence[int], release: np.ndarray, largest: bool) -> None:
    """MinMin (``largest=False``) or MaxMin: repeatedly place the ready task with the smallest or
    largest best finish time on its best node. Finish times are cached per (task, node) and only
    the column of the node that changed is recomputed after each placement."""
    pending = set(tasks)
    waiting = {t: sum(1 for p, _ in plan.preds[t] if p in pending) for t in tasks}
    num_nodes = plan.num_nodes
    eft: dict[int, np.ndarray] = {}
    est: dict[int, np.ndarray] = {}

    def fill(t: int, nodes: range | list[int]) -> None:
        if t not in eft:
            eft[t] = np.empty(num_nodes)
            est[t] = np.empty(num_nodes)
        for v in nodes:
            est[t][v], eft[t][v] = plan.earliest_finish(t, v, float(release[t]))

    for t, k in waiting.items():
        if k == 0:
            fill(t, range(num_nodes))
    placed = 0
    while eft:
        best_t, best_value = -1, 0.0
        for t in sorted(eft):
            value = float(eft[t].min())
            if (
                best_t < 0
                or (largest and value > best_value + EPS)
                or (not largest and value < best_value - EPS)
            ):
                best_t, best_value = t, value
        v = int(np.argmin(eft[best_t]))
        plan.place(best_t, v, float(est[best_t][v]))
        placed += 1
        del eft[best_t], est[best_t]
        for t in eft:
            fill(t, [v])
        for c, _ in plan.succs[best_t]:
            if c in waiting:
                waiting[c] -= 1
                if waiting[c] == 0:
                    fill(c, range(num_nodes))
    if placed != len(pending):
        raise RuntimeError("tasks to place depend on tasks that are neither placed nor listed")


def place_minmin(plan: Plan, tasks: Sequence[int], release: np.ndarray) -> None:
    """Place ``tasks`` by MinMin with insertion."""
    _place_extreme(plan, tasks, release, largest=False)


def place_maxmin(plan: Plan, tasks: Sequence[int], release: np.ndarray) -> None:
    """Place ``tasks`` by MaxMin with insertion."""
    _place_extreme(plan, tasks, release, largest=True)


BASES: dict[str, PlaceFn] = {
    "heft": place_heft,
    "cpop": place_cpop,
    "minmin": place_minmin,
    "maxmin": place_maxmin,
}


# ---------------------------------------------------------------------- online drivers


def _base(base: str | PlaceFn) -> tuple[str, PlaceFn]:
    if callable(base):
        return getattr(base, "__name__", "custom"), base
    if base not in BASES:
        raise ValueError(f"unknown base heuristic {base!r}; use one of {', '.join(BASES)}")
    return base, BASES[base]


def last_k(
    instance: Instance,
    base: str | PlaceFn = "heft",
    k: int | None = 1,
    *,
    strict_release: bool = True,
) -> Schedule:
    """Schedule the stream online with Last-K schedule preemption.

    Parameters
    ----------
    instance
        The network and the stream of graphs.
    base
        ``heft``, ``cpop``, ``minmin``, ``maxmin`` or a placement function (see :data:`PlaceFn`).
    k
        Window size: the new graph and the ``k - 1`` graphs before it are re-planned at each
        arrival. ``None`` re-plans every graph (full preemption).
    strict_release
        When true (the default), a re-planned task never starts before the current arrival
        ``a_i``. When false, its release time is its own graph's arrival, as in the dynamic
        schedulers of the saga scheduling library. The validator may then report tasks placed in
        the past.

    Returns
    -------
    Schedule
        With the placement history and the scheduler time at each arrival.
    """
    if k is not None and (int(k) != k or k < 1):
        raise ValueError(f"window size k is {k!r}; use a positive integer or None for all graphs")
    name, place = _base(base)
    flat = instance.flat
    plan = Plan(instance)
    history: list[Placement] = []
    seconds: list[float] = []
    for i, graph in enumerate(instance.graphs):
        tick = time.perf_counter()
        a_i = float(graph.arrival)
        first = 0 if k is None else max(0, i - int(k) + 1)
        window = np.concatenate(flat.graph_tasks[first : i + 1])
        unstarted = window[(plan.node[window] >= 0) & (plan.start[window] >= a_i)]
        plan.remove(unstarted)
        to_place = sorted(int(t) for t in window if plan.node[t] < 0)
        release = flat.arrival.copy()
        if strict_release:
            release[to_place] = np.maximum(release[to_place], a_i)
        place(plan, to_place, release)
        seconds.append(time.perf_counter() - tick)
        history.extend(Placement(t, a_i, int(plan.node[t]), float(plan.start[t])) for t in to_place)
    label = f"{name}-k{k}" if k is not None else f"{name}-full"
    return _schedule(plan, label, k, history, seconds)


def non_preemptive(instance: Instance, base: str | PlaceFn = "heft") -> Schedule:
    """Place each arriving graph on top of the plan and never move a placed task."""
    name, place = _base(base)
    flat = instance.flat
    plan = Plan(instance)
    history: list[Placement] = []
    seconds: list[float] = []
    for i, graph in enumerate(instance.graphs):
        tick = time.perf_counter()
        tasks = [int(t) for t in flat.graph_tasks[i]]
        place(plan, tasks, flat.arrival)
        seconds.append(time.perf_counter() - tick)
        history.extend(
            Placement(t, float(graph.arrival), int(plan.node[t]), float(plan.start[t]))
            for t in tasks
        )
    return _schedule(plan, f"{name}-np", 1, history, seconds)


def fully_preemptive(instance: Instance, base: str | PlaceFn = "heft") -> Schedule:
    """At each arrival, re-plan every task that has not started, with release time ``a_i``."""
    name, place = _base(base)
    plan = Plan(instance)
    history: list[Placement] = []
    seconds: list[float] = []
    for i, graph in enumerate(instance.graphs):
        tick = time.perf_counter()
        a_i = float(graph.arrival)
        arrived = np.flatnonzero(instance.flat.graph <= i)
        plan.remove(arrived[(plan.node[arrived] >= 0) & (plan.start[arrived] >= a_i)])
        tasks = [int(t) for t in arrived if plan.node[t] < 0]
        release = np.full(instance.flat.size, a_i)
        place(plan, tasks, release)
        seconds.append(time.perf_counter() - tick)
        history.extend(Placement(t, a_i, int(plan.node[t]), float(plan.start[t])) for t in tasks)
    return _schedule(plan, f"{name}-full", None, history, seconds)


def offline_list(instance: Instance, base: str | PlaceFn = "heft") -> Schedule:
    """Clairvoyant list schedule: every task placed at once, each released at its arrival.

    Not an online policy; it gives the exact MILP an upper bound and a big-M.
    """
    name, place = _base(base)
    plan = Plan(instance)
    tick = time.perf_counter()
    place(plan, list(range(instance.flat.size)), instance.flat.arrival)
    schedule = Schedule.offline(plan.node, plan.start, instance, f"{name}-offline")
    return Schedule(
        schedule.node,
        schedule.start,
        schedule.method,
        None,
        schedule.history,
        (time.perf_counter() - tick,),
    )


def _schedule(
    plan: Plan, method: str, k: int | None, history: list[Placement], seconds: list[float]
) -> Schedule:
    if (plan.node < 0).any():
        raise RuntimeError(f"{method} left {int((plan.node < 0).sum())} tasks unplaced")
    return Schedule(
        node=tuple(int(v) for v in plan.node),
        start=tuple(float(s) for s in plan.start),
        method=method,
        window=k,
        history=tuple(history),
        scheduler_seconds=tuple(seconds),
    )
