"""Exact methods: the offline MILP bound, per-arrival MILP re-planning, and brute force.

- :func:`solve_offline` solves the clairvoyant MILP over the whole stream (every task known at
  time 0, released at its graph's arrival). Its optimum is a lower bound on the makespan of every
  online policy; with a time limit its dual bound still is.
- :func:`milp_last_k` is "exact Last-K": at each arrival it solves the MILP over the window's
  unstarted tasks with everything else fixed.
- :func:`brute_force` enumerates list schedules of tiny instances and returns the offline optimum.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence

import numpy as np

from gaplab.modeling import CompiledModel
from gaplab.models.task_graph.build import (
    WindowModel,
    build_window,
    start_values,
    unordered_pairs,
)
from gaplab.models.task_graph.instance import Instance
from gaplab.models.task_graph.planning import Plan, topological_order
from gaplab.models.task_graph.schedule import Placement, Schedule
from gaplab.solvers import Result, SolutionStatus, SolveOptions, Termination, get_backend

logger = logging.getLogger(__name__)

HORIZON_SLACK = 1e-6
"""Relative slack added to a heuristic makespan before it is used as the horizon ``H``."""
START_TOLERANCE = 1e-6
"""Largest violation (seconds) at which a heuristic placement is still handed over as a start."""
OFFLINE_NONZEROS_PER_SECOND = 100_000.0
"""Estimated offline MILP nonzeros that :func:`solve_offline` accepts per second of time limit.

HiGHS checks its time limit only after presolve, and presolve grows with the model: HiGHS 1.16
spent 13 s presolving a 5.0M-nonzero offline MILP (400 tasks, 4 nodes) on a shared 2-core x86
machine, about 400k nonzeros per second. This cap leaves most of the limit to the search.
NOTE: an estimate from that one machine; a faster one could accept larger models.
"""


def _horizon(makespan: float) -> float:
    return makespan * (1 + HORIZON_SLACK) + HORIZON_SLACK


def interpret_window(built: WindowModel, plan: Plan, result: Result, release: np.ndarray) -> bool:
    """Write the MILP's placement of the free tasks into ``plan``; False when there is no point.

    Nodes come from ``x``. Starts are recomputed from the MILP's task order on each node: each
    task starts as early as its release, its inputs and the previous task on its node allow. This
    removes solver round-off and never delays a task beyond its MILP start.
    """
    x = result.value(built.x)
    start = result.value(built.start)
    if x is None or start is None:
        return False
    tasks = built.tasks
    xv = np.asarray(x).reshape(len(tasks), plan.num_nodes)
    nodes = xv.argmax(axis=1)
    milp_start = np.asarray(start, dtype=float)
    topo = np.empty(plan.instance.flat.size, dtype=np.int64)
    topo[topological_order(plan.instance)] = np.arange(len(topo))
    order = sorted(range(len(tasks)), key=lambda k: (milp_start[k], topo[tasks[k]]))
    for k in order:
        t, v = tasks[k], int(nodes[k])
        ready = plan.ready_time(t, v, float(release[t]))
        line = plan.timelines[v]
        # Start after every interval of node v that the MILP put before this task.
        previous = [e for s, e in zip(line.starts, line.ends, strict=True) if s <= milp_start[k]]
        begin = max([ready, *previous])
        plan.place(t, v, begin)
    return True


def solve_window(
    plan: Plan,
    tasks: Sequence[int],
    release: np.ndarray,
    horizon: float,
    backend: str,
    options: SolveOptions,
    finish_weight: float = 0.0,
    initial: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Result, bool]:
    """Solve the MILP for ``tasks`` on top of ``plan`` and place them; returns (result, placed).

    ``initial`` is a complete placement (node and start of every task by global id) handed to
    the backend as a MIP start when it satisfies the model; HiGHS uses it, others ignore it.
    """
    built = build_window(plan, tasks, release, horizon, finish_weight=finish_weight)
    compiled = built.model.compile()
    if initial is not None:
        start = checked_start(built, compiled, plan, *initial)
        options = dataclasses.replace(options, warm_start=start)
    result = get_backend(backend).solve(compiled, options)
    placed = interpret_window(built, plan, result, release)
    return result, placed


def checked_start(
    built: WindowModel,
    compiled: CompiledModel,
    plan: Plan,
    node: np.ndarray,
    start: np.ndarray,
) -> np.ndarray | None:
    """Assemble a MIP start from a placement; ``None``, with a warning, when it is infeasible."""
    x = compiled.column_vector(start_values(built, compiled, plan, node, start))
    violation = compiled.max_violation(x) if np.isfinite(x).all() else math.inf
    if violation > START_TOLERANCE:
        logger.warning(
            "heuristic start of %s violates the model by %.3g; solving without it",
            compiled.name,
            violation,
        )
        return None
    return x


def estimated_nonzeros(instance: Instance) -> int:
    """Estimate the nonzeros of the offline MILP from above, without building it.

    The disjunctions dominate: every pair of tasks that no path orders gets two rows per node,
    with about ``5 + nodes`` entries each. Pairs whose time windows cannot overlap are dropped
    by the model, so the estimate may be high.
    """
    pairs = len(unordered_pairs(instance, range(instance.flat.size)))
    nodes = len(instance.network.speed_array)
    return 2 * pairs * nodes * (5 + nodes)


def solve_offline(
    instance: Instance,
    backend: str = "highs",
    options: SolveOptions | None = None,
    objective: str = "makespan",
) -> tuple[Result, Schedule | None]:
    """Solve the offline clairvoyant MILP; returns the Result and the schedule (None without one).

    ``objective`` is ``makespan``, ``response`` (sum over graphs of ``C_g - a_g``) or
    ``max_slowdown`` (slowdowns against :func:`~gaplab.models.task_graph.metrics.alone_makespans`).
    For the makespan, the horizon ``H`` is the best makespan of clairvoyant HEFT and fully
    preemptive HEFT, both feasible offline, so ``C_max <= H`` cuts nothing optimal. The other
    objectives take per-graph deadlines from the best of those heuristics' objective values and
    :func:`semi_active_horizon`, which bounds the makespan of every schedule with no needless
    idle time. Some optimal schedule has no needless idle time and meets those deadlines. The
    best of those heuristic schedules is the MIP start.

    ``options.time_limit`` is handed to the solver, so it covers the solver call only, not the
    heuristics and the model build before it. When the model is estimated to be too large for
    the limit (:data:`OFFLINE_NONZEROS_PER_SECOND`), no solver is called: the Result has
    termination ``time_limit``, no point, the cheap lower bound of
    :func:`~gaplab.models.task_graph.metrics.makespan_lower_bound` for the makespan, and a
    ``raw_status`` that gives the sizes. Without a time limit every size is solved.
    """
    from gaplab.heuristics.task_graph import last_k, offline_list
    from gaplab.models.task_graph.metrics import alone_makespans, compute_metrics

    options = options or SolveOptions()
    if options.time_limit is not None:
        too_large = _check_size(instance, backend, options.time_limit, objective)
        if too_large is not None:
            return too_large, None
    candidates = [offline_list(instance, "heft"), last_k(instance, "heft", None)]
    best = min(s.makespan(instance) for s in candidates)
    initial = min(candidates, key=lambda s: s.makespan(instance))
    alone = None
    deadline = None
    horizon = _horizon(best)
    if objective != "makespan":
        # Every graph of an optimal schedule finishes by a_g plus the best heuristic's total
        # response (or a_g + its max slowdown times M_g), which bounds each task's finish.
        candidates.append(last_k(instance, "heft", 1))
        alone = alone_makespans(instance)
        values = [compute_metrics(instance, s, alone) for s in candidates]
        arrival = np.array([g.arrival for g in instance.graphs])
        if objective == "response":
            total = min(v.mean_response for v in values) * len(instance.graphs)
            by_graph = arrival + total
            score = [v.mean_response for v in values]
        else:
            worst = min(v.max_slowdown for v in values)
            by_graph = arrival + worst * alone
            score = [v.max_slowdown for v in values]
        initial = candidates[int(np.argmin(score))]
        deadline = np.array([_horizon(by_graph[g]) for g in instance.flat.graph])
        horizon = min(_horizon(semi_active_horizon(instance)), float(deadline.max()))
    plan = Plan(instance)
    built = build_window(
        plan,
        list(range(instance.flat.size)),
        instance.flat.arrival,
        horizon,
        objective=objective,
        alone=alone,
        deadline=deadline,
    )
    compiled = built.model.compile()
    start = checked_start(
        built, compiled, plan, np.asarray(initial.node), np.asarray(initial.start)
    )
    result = get_backend(backend).solve(compiled, dataclasses.replace(options, warm_start=start))
    if not interpret_window(built, plan, result, instance.flat.arrival):
        return result, None
    suffix = "" if objective == "makespan" else f"-{objective}"
    return result, Schedule.offline(plan.node, plan.start, instance, f"milp-offline{suffix}")


def _check_size(
    instance: Instance, backend: str, time_limit: float, objective: str
) -> Result | None:
    """Return a no-solve Result when the offline MILP is too large for ``time_limit``."""
    from gaplab.models.task_graph.metrics import makespan_lower_bound

    estimate = estimated_nonzeros(instance)
    allowed = OFFLINE_NONZEROS_PER_SECOND * time_limit
    if estimate <= allowed:
        return None
    status = (
        f"not solved: the offline MILP of {instance.flat.size} tasks has about "
        f"{estimate:,} nonzeros, above the {allowed:,.0f} accepted for a {time_limit:g} s time "
        "limit; raise the time limit or run a heuristic such as heft-full"
    )
    logger.warning("%s", status)
    return Result(
        model_name="task-graph",
        backend=backend,
        termination=Termination.TIME_LIMIT,
        solution_status=SolutionStatus.NO_SOLUTION,
        bound=makespan_lower_bound(instance) if objective == "makespan" else None,
        raw_status=status,
    )


def semi_active_horizon(instance: Instance) -> float:
    """Bound the makespan of every schedule in which no task could start earlier.

    In such a schedule each task starts at its release, at an input's arrival or at the end of
    the previous task on its node. Following those causes back from the last task visits each
    task at most once, so ``max_g a_g + sum_t (max_v w_t / s_v + max incoming transfer)`` bounds
    the makespan.
    """
    flat = instance.flat
    slowest = float(instance.network.speed_array.min())
    worst_inv = float(instance.network.inverse_bandwidth.max())
    transfer = np.zeros(flat.size)
    np.maximum.at(transfer, flat.edge_dst, flat.edge_data * worst_inv)
    return float(flat.arrival.max() + (flat.cost / slowest + transfer).sum())


def milp_last_k(
    instance: Instance,
    k: int | None = None,
    backend: str = "highs",
    window_time_limit: float = 10.0,
    finish_weight: float = 1e-4,
) -> Schedule:
    """Re-plan each window exactly: the MILP over the last ``k`` graphs' unstarted tasks.

    Each window MILP minimizes the plan's makespan plus ``finish_weight / n`` times the sum of
    the free tasks' finish times, so that among equal makespans it prefers early finishes. The
    HEFT placement of the window, which also sets its horizon, is the MIP start. When
    a window MILP returns no point within ``window_time_limit`` seconds, the window is placed by
    HEFT instead and ``info["fallbacks"]`` counts it.
    """
    from gaplab.heuristics.task_graph import place_heft

    flat = instance.flat
    plan = Plan(instance)
    history: list[Placement] = []
    seconds: list[float] = []
    gaps: list[float | None] = []
    fallbacks = 0
    options = SolveOptions(time_limit=window_time_limit, mip_rel_gap=1e-6)
    for i, graph in enumerate(instance.graphs):
        tick = time.perf_counter()
        a_i = float(graph.arrival)
        first = 0 if k is None else max(0, i - int(k) + 1)
        window = np.concatenate(flat.graph_tasks[first : i + 1])
        plan.remove(window[(plan.node[window] >= 0) & (plan.start[window] >= a_i)])
        to_place = sorted(int(t) for t in window if plan.node[t] < 0)
        release = np.maximum(flat.arrival, a_i)
        trial = plan.copy()
        place_heft(trial, to_place, release)
        horizon = _horizon(float(np.nanmax(trial.finish)))
        weight = finish_weight / max(1, len(to_place))
        result, placed = solve_window(
            plan,
            to_place,
            release,
            horizon,
            backend,
            options,
            finish_weight=weight,
            initial=(trial.node, trial.start),
        )
        gaps.append(result.gap)
        if not placed:
            fallbacks += 1
            logger.warning(
                "window MILP at arrival %d (%s) returned no point (%s); placing it by HEFT",
                i,
                graph.name,
                result.termination.value,
            )
            plan.remove(to_place)
            place_heft(plan, to_place, release)
        seconds.append(time.perf_counter() - tick)
        history.extend(Placement(t, a_i, int(plan.node[t]), float(plan.start[t])) for t in to_place)
    label = f"milp-k{k}" if k is not None else "milp-full"
    return Schedule(
        node=tuple(int(v) for v in plan.node),
        start=tuple(float(s) for s in plan.start),
        method=label,
        window=k,
        history=tuple(history),
        scheduler_seconds=tuple(seconds),
        info={"fallbacks": fallbacks, "window_gaps": gaps},
    )


def brute_force(instance: Instance, max_tasks: int = 8) -> tuple[float, Schedule]:
    """Offline optimum by enumerating every list schedule (task order and node choice).

    Take an optimal schedule with every task shifted as early as possible. Appending its tasks
    in start order, each on its node at the earliest time after its inputs and the node's
    previous task, rebuilds it. So the minimum over all topological orders and node choices is
    optimal. Depth-first search with the incumbent as a cut keeps tiny instances fast.
    """
    flat = instance.flat
    n = flat.size
    if n > max_tasks:
        raise ValueError(
            f"brute force enumerates orders and nodes of {n} tasks; it is limited to "
            f"{max_tasks} tasks. Use the MILP for larger instances"
        )
    speeds = instance.network.speed_array
    inv = instance.network.inverse_bandwidth
    num_nodes = len(speeds)
    node = [-1] * n
    start = [0.0] * n
    finish = [0.0] * n
    free_at = [0.0] * num_nodes
    waiting = [len(p) for p in flat.preds]
    best: list = [math.inf, None]

    def dfs(done: int, current: float) -> None:
        if current >= best[0] - 1e-12:
            return
        if done == n:
            best[0], best[1] = current, (list(node), list(start))
            return
        for t in range(n):
            if node[t] >= 0 or waiting[t]:
                continue
            for v in range(num_nodes):
                ready = max(
                    [flat.arrival[t], free_at[v]]
                    + [finish[p] + d * inv[node[p], v] for p, d in flat.preds[t]]
                )
                end = ready + flat.cost[t] / speeds[v]
                saved = free_at[v]
                node[t], start[t], finish[t], free_at[v] = v, ready, end, end
                for c, _ in flat.succs[t]:
                    waiting[c] -= 1
                dfs(done + 1, max(current, end))
                for c, _ in flat.succs[t]:
                    waiting[c] += 1
                node[t], free_at[v] = -1, saved

    dfs(0, 0.0)
    nodes, starts = best[1]
    return float(best[0]), Schedule.offline(nodes, starts, instance, "brute-force")
