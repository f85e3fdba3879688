"""Disjunctive MILP of the task-graph model, for the whole stream or for one re-plan window.

Free tasks ``t`` get a node (``x_tv`` binary, ``sum_v x_tv = 1``) and a start ``S_t >= r_t``;
``C_t = S_t + sum_v x_tv w_t / s_v``. Tasks already in the plan are constants.

- Edge ``(p, t)`` of two free tasks: ``z_ptuv >= x_pu + x_tv - 1`` for ``u != v`` and
  ``S_t >= C_p + sum_{u != v} z_ptuv d_pt / b_uv``.
- Edge from a fixed task ``p`` on node ``u``: ``S_t >= C_p + sum_v x_tv d_pt / b_uv``.
- Two free tasks that no path orders (``o_tt'`` = 1 when ``t`` goes first), for every node v:
  ``S_t' >= C_t - M (3 - x_tv - x_t'v - o_tt')`` and ``S_t >= C_t' - M (2 - x_tv - x_t'v + o_tt')``.
  Pairs ordered by a path of their graph need no disjunction, because precedence keeps them
  apart, and neither do pairs whose time windows (below) cannot overlap.
- A free task and a fixed busy interval ``[S_f, C_f)`` on node ``n_f`` that may meet
  (``C_f > r_t``), with ``y_tf`` = 1 when ``t`` goes first:
  ``C_t <= S_f + M (1 - x_t,n_f) + M (1 - y_tf)`` and ``S_t >= C_f - M (1 - x_t,n_f) - M y_tf``.
- ``C_max >= C_t`` and ``C_max >= C_f``. The objective is ``min C_max``, plus an optional small
  weight on the sum of free finish times that breaks ties between optimal makespans.

Every row has its own ``M``, from time windows: ``H`` is an upper bound on the makespan (from a
feasible schedule) and ``C_max <= H``. So ``C_t <= lft_t = H - tail_t``, where ``tail_t`` is the
longest chain of descendants run on the fastest node. ``S_t >= est_t``, the release or the
earliest end of a parent chain on the fastest node. The ``M`` of a row bounding ``C_a - S_b`` is
``lft_a - est_b``, and ``C_max >= C_t + tail_t`` is added as a valid cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gaplab.modeling import CompiledModel, IndexSet, LinExpr, Model, Variable
from gaplab.models.task_graph.instance import Instance
from gaplab.models.task_graph.planning import Plan

OBJECTIVES = ("makespan", "response", "max_slowdown")


@dataclass
class WindowModel:
    """A built MILP with the handles that :func:`interpret_window` needs."""

    model: Model
    tasks: list[int]
    x: Variable
    start: Variable
    makespan: Variable
    arc_src: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Source task of each label of the ``arc`` set (edges between two free tasks)."""
    arc_dst: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    alone: np.ndarray | None = None
    """``M_g`` of every graph when the objective is ``max_slowdown``."""


def start_values(
    built: WindowModel,
    compiled: CompiledModel,
    plan: Plan,
    node: np.ndarray,
    start: np.ndarray,
) -> dict[str, np.ndarray]:
    """Column values of ``built`` at a complete placement, by variable block (a MIP start).

    ``node`` and ``start`` give every task's node and start by global id: the fixed tasks as in
    ``plan`` and the free ones as the start proposes. Tasks not yet placed have node -1.
    ``compiled`` is ``built.model`` compiled. Pass the result to its
    :meth:`~gaplab.modeling.CompiledModel.column_vector`.
    """
    instance = plan.instance
    flat = instance.flat
    node = np.asarray(node, dtype=np.int64)
    start = np.asarray(start, dtype=float)
    placed = node >= 0
    finish = np.where(placed, start + flat.cost / plan.speeds[np.maximum(node, 0)], np.nan)
    values: dict[str, np.ndarray] = {}
    labels = {block.name: block.labels for block in compiled.variables}

    task, on = _columns(labels["x"], 2)
    values["x"] = (node[task] == on).astype(float)
    values["start"] = start[np.asarray(labels["start"], dtype=np.int64)]
    values["makespan"] = np.array([np.nanmax(finish)])
    if "z" in labels:
        arc, link = _columns(labels["z"], 2)
        u = np.array([pair[0] for pair in link], dtype=np.int64)
        v = np.array([pair[1] for pair in link], dtype=np.int64)
        used = (node[built.arc_src[arc]] == u) & (node[built.arc_dst[arc]] == v)
        values["z"] = used.astype(float)
    if "order" in labels:
        first, second = _columns(labels["order"], 2)
        # order = 1 means the first task ends before the second starts; it only binds when
        # both share a node, where a feasible placement keeps them apart.
        values["order"] = (finish[first] <= start[second] + 1e-9).astype(float)
    if "before" in labels:
        free_task, fixed = _columns(labels["before"], 2)
        values["before"] = (finish[free_task] <= plan.start[fixed] + 1e-9).astype(float)
    if "graph_finish" in labels:
        graphs = np.asarray(labels["graph_finish"], dtype=np.int64)
        done = np.zeros(len(instance.graphs))
        np.fmax.at(done, flat.graph, finish)
        values["graph_finish"] = done[graphs]
    if "max_slowdown" in labels and built.alone is not None:
        graphs = np.asarray(labels["graph_finish"], dtype=np.int64)
        arrival = np.array([g.arrival for g in instance.graphs])[graphs]
        slowdown = (values["graph_finish"] - arrival) / np.asarray(built.alone)[graphs]
        values["max_slowdown"] = np.array([slowdown.max()])
    return values


def _columns(labels: pd.Index, width: int) -> tuple[np.ndarray, ...]:
    """Split tuple labels into one array per position; non-integer parts stay objects."""
    parts = list(zip(*labels.tolist(), strict=True)) if len(labels) else [()] * width
    out = []
    for part in parts:
        array = np.asarray(part, dtype=object)
        if all(isinstance(item, int | np.integer) for item in part):
            array = array.astype(np.int64)
        out.append(array)
    return tuple(out)


def unordered_pairs(instance: Instance, tasks: Sequence[int]) -> list[tuple[int, int]]:
    """Pairs ``(t, t')`` with ``t < t'`` of ``tasks`` that no directed path connects."""
    flat = instance.flat
    chosen = set(tasks)
    # Descendant sets as Python integers used as bit sets, filled in reverse topological order.
    from gaplab.models.task_graph.planning import topological_order

    below = dict.fromkeys(chosen, 0)
    for t in reversed(topological_order(instance)):
        if t not in chosen:
            continue
        bits = 0
        for c, _ in flat.succs[t]:
            if c in chosen:
                bits |= (1 << c) | below[c]
        below[t] = bits
    ordered = sorted(chosen)
    pairs = []
    for i, t in enumerate(ordered):
        for u in ordered[i + 1 :]:
            if flat.graph[t] == flat.graph[u] and ((below[t] >> u) & 1 or (below[u] >> t) & 1):
                continue
            pairs.append((t, u))
    return pairs


def build_window(
    plan: Plan,
    tasks: Sequence[int],
    release: np.ndarray,
    horizon: float,
    *,
    name: str = "task-graph",
    finish_weight: float = 0.0,
    objective: str = "makespan",
    alone: np.ndarray | None = None,
    deadline: np.ndarray | None = None,
) -> WindowModel:
    """Declare the MILP that places ``tasks`` into ``plan`` (every other placed task is fixed).

    Parameters
    ----------
    plan
        Current plan; every placed task is a constant of the model.
    tasks
        Global ids of the free tasks; their predecessors must be free or placed.
    release
        Earliest start of every task, indexed by global id (``r_t``).
    horizon
        Upper bound ``H`` on the makespan of some feasible completion (seconds).
    finish_weight
        Weight of ``sum_t C_t`` added to ``C_max`` in the objective (0 for pure makespan).
    objective
        ``makespan`` (``min C_max``), ``response`` (``min sum_g (C_g - a_g)`` over the graphs
        with free tasks) or ``max_slowdown`` (``min lambda`` with
        ``(C_g - a_g) / M_g <= lambda``). For the last two, ``horizon`` must bound the makespan
        of an optimal schedule, not only of some feasible one.
    alone
        ``M_g`` of every graph (seconds), needed by ``max_slowdown``.
    deadline
        Optional latest finish of every task's graph, indexed by global id. The model then adds
        ``C_t + tail_t <= deadline_t``, which must hold for some optimal schedule.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if objective == "max_slowdown" and alone is None:
        raise ValueError("objective 'max_slowdown' needs alone= (M_g of every graph)")
    instance = plan.instance
    flat = instance.flat
    free = sorted(int(t) for t in tasks)
    if not free:
        raise ValueError("build_window needs at least one free task")
    free_set = set(free)
    speeds = plan.speeds
    inv = plan.inv_bw
    num_nodes = len(speeds)
    fixed = np.flatnonzero(plan.node >= 0)
    r = np.asarray(release, dtype=float)[free]
    fixed_finish = float(plan.finish[fixed].max()) if len(fixed) else 0.0

    m = Model(name)
    task = m.index("task", free)
    node = m.index("node", range(num_nodes))
    x = m.binary("x", task, node)
    start = m.continuous(
        "start", task, lower=pd.Series(r, index=pd.Index(free, name="task")), upper=horizon
    )
    makespan = m.continuous("makespan", lower=fixed_finish, upper=horizon)
    runtime = flat.cost[free][:, None] / speeds[None, :]
    finish = start + (x * runtime).sum("node")
    m.subject_to("one_node", x.sum("node") == 1)
    tail = _tail(instance, speeds)
    m.subject_to("makespan_def", makespan >= finish + tail[free])
    # Valid cuts that tighten the LP relaxation: no node can finish its load before the
    # earliest release of the free tasks.
    m.subject_to("node_load", makespan >= (x * runtime).sum("task") + float(r.min()))

    # Time windows: no free task starts before est_t or finishes after lft_t = H - tail_t. They
    # drop pairs that cannot overlap and give every disjunction its own, smaller big-M.
    est = _earliest_start(plan, free_set, np.asarray(release, dtype=float), speeds)
    lft = horizon - tail
    if deadline is not None:
        lft = np.minimum(lft, np.asarray(deadline, dtype=float) - tail)
        m.subject_to("deadline", finish <= lft[free])
    relevant = fixed[plan.finish[fixed] > float(r.min())]

    arc_src, arc_dst = _precedence(m, plan, free_set, x, start, finish, inv, num_nodes)
    _disjunctions(m, instance, free, x, start, finish, est, lft)
    _fixed_intervals(m, plan, free, relevant, x, start, finish, est, lft)

    goal: LinExpr = makespan
    if objective != "makespan":
        goal = _graph_objective(m, plan, free, task, finish, objective, alone)
    m.minimize(goal + finish.sum() * finish_weight if finish_weight > 0 else goal)
    return WindowModel(m, free, x, start, makespan, arc_src, arc_dst, alone)


def _graph_objective(
    m: Model,
    plan: Plan,
    free: list[int],
    task: IndexSet,
    finish: LinExpr,
    objective: str,
    alone: np.ndarray | None,
) -> LinExpr:
    """Declare ``C_g >= C_t`` per graph and return the response or max-slowdown objective."""
    instance = plan.instance
    flat = instance.flat
    graph_of = flat.graph[free]
    graphs = sorted(set(graph_of.tolist()))
    lower = []
    for g in graphs:
        group = flat.graph_tasks[g]
        placed = group[plan.node[group] >= 0]
        lower.append(float(plan.finish[placed].max()) if len(placed) else 0.0)
    index = pd.Index(graphs, name="graph")
    done = m.continuous("graph_finish", m.index("graph", graphs), lower=pd.Series(lower, index))
    m.subject_to("graph_finish_def", done.at(graph_of, over=task) >= finish)
    arrival = np.array([instance.graphs[g].arrival for g in graphs])
    if objective == "response":
        return (done - arrival).sum()
    assert alone is not None
    scale = np.asarray(alone, dtype=float)[graphs]
    worst = m.continuous("max_slowdown")
    m.subject_to("slowdown", done / scale - worst <= arrival / scale)
    return worst


def _earliest_start(
    plan: Plan, free: set[int], release: np.ndarray, speeds: np.ndarray
) -> np.ndarray:
    """``est_t``: release, or the earliest finish of a parent chain on the fastest node."""
    from gaplab.models.task_graph.planning import topological_order

    flat = plan.instance.flat
    fastest = float(speeds.max())
    est = release.copy()
    for t in topological_order(plan.instance):
        if t not in free:
            continue
        for p, _ in flat.preds[t]:
            ready = plan.finish[p] if p not in free else est[p] + flat.cost[p] / fastest
            est[t] = max(est[t], ready)
    return est


def _tail(instance: Instance, speeds: np.ndarray) -> np.ndarray:
    """Shortest possible time from ``C_t`` to the end: the longest chain of descendants, each on
    the fastest node, with no transfer time. ``C_max >= C_t + tail_t`` is a valid cut."""
    from gaplab.models.task_graph.planning import topological_order

    flat = instance.flat
    fastest = float(speeds.max())
    tail = np.zeros(flat.size)
    for t in reversed(topological_order(instance)):
        tail[t] = max((flat.cost[c] / fastest + tail[c] for c, _ in flat.succs[t]), default=0.0)
    return tail


def _precedence(
    m: Model,
    plan: Plan,
    free_set: set[int],
    x: Variable,
    start: Variable,
    finish: object,
    inv: np.ndarray,
    num_nodes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Declare the precedence rows; return the endpoints of the edges between free tasks."""
    flat = plan.instance.flat
    dst_free = np.isin(flat.edge_dst, list(free_set))
    src_free = np.isin(flat.edge_src, list(free_set))
    both = np.flatnonzero(dst_free & src_free)
    from_fixed = np.flatnonzero(dst_free & ~src_free)
    if (src_free & ~dst_free).any():
        raise ValueError("a free task has a fixed successor; re-plan windows must be closed")

    if len(both):
        arc = pd.Index(range(len(both)), name="arc")
        src = pd.Series(flat.edge_src[both], index=arc)
        dst = pd.Series(flat.edge_dst[both], index=arc)
        data = flat.edge_data[both]
        links = [(u, v) for u in range(num_nodes) for v in range(num_nodes) if u != v]
        transfer = np.zeros(len(both))
        if links and (data > 0).any():
            link = m.index("link", links)
            lu = np.array([u for u, _ in links])
            lv = np.array([v for _, v in links])
            x_src = x.at(src, dim="task").at(lu, dim="node", over=link)
            x_dst = x.at(dst, dim="task").at(lv, dim="node", over=link)
            z = m.continuous("z", m.index("arc", arc), link, upper=1.0)
            m.subject_to("link_used", z >= x_src + x_dst - 1)
            delay = data[:, None] * inv[lu, lv][None, :]
            transfer = (z * delay).sum("link")
        m.subject_to("precedence", start.at(dst) >= finish.at(src) + transfer)  # type: ignore[attr-defined]

    if len(from_fixed):
        farc = pd.Index(range(len(from_fixed)), name="fixed_arc")
        parent = flat.edge_src[from_fixed]
        dst = pd.Series(flat.edge_dst[from_fixed], index=farc)
        delay = flat.edge_data[from_fixed][:, None] * inv[plan.node[parent]]
        inputs = (x.at(dst, dim="task") * delay).sum("node")
        m.subject_to("precedence_fixed", start.at(dst) - inputs >= plan.finish[parent])
    return flat.edge_src[both].astype(np.int64), flat.edge_dst[both].astype(np.int64)


def _disjunctions(
    m: Model,
    instance: Instance,
    free: list[int],
    x: Variable,
    start: Variable,
    finish: object,
    est: np.ndarray,
    lft: np.ndarray,
) -> None:
    candidates = np.array(unordered_pairs(instance, free), dtype=np.int64).reshape(-1, 2)
    # m12 bounds C_first - S_second and m21 bounds C_second - S_first. When either is <= 0
    # the two tasks can never overlap, so the pair needs no disjunction.
    m12 = lft[candidates[:, 0]] - est[candidates[:, 1]]
    m21 = lft[candidates[:, 1]] - est[candidates[:, 0]]
    keep = (m12 > 0) & (m21 > 0)
    if not keep.any():
        return
    candidates, m12, m21 = candidates[keep], m12[keep], m21[keep]
    pairs = [(int(a), int(b)) for a, b in candidates]
    pair = m.index("pair", pairs)
    first = candidates[:, 0]
    second = candidates[:, 1]
    order = m.binary("order", pair)
    s1, s2 = start.at(first, over=pair), start.at(second, over=pair)
    c1 = finish.at(first, over=pair)  # type: ignore[attr-defined]
    c2 = finish.at(second, over=pair)  # type: ignore[attr-defined]
    both = x.at(first, dim="task", over=pair) + x.at(second, dim="task", over=pair)
    col12, col21 = m12[:, None], m21[:, None]
    m.subject_to("first_then_second", s2 - c1 - both * col12 - order * m12 >= -3 * col12)
    m.subject_to("second_then_first", s1 - c2 - both * col21 + order * m21 >= -2 * col21)


def _fixed_intervals(
    m: Model,
    plan: Plan,
    free: list[int],
    relevant: np.ndarray,
    x: Variable,
    start: Variable,
    finish: object,
    est: np.ndarray,
    lft: np.ndarray,
) -> None:
    # A row is needed only when t could end after S_f and start before C_f.
    rows = [
        (t, int(f))
        for t in free
        for f in relevant
        if lft[t] > plan.start[f] and plan.finish[f] > est[t]
    ]
    if not rows:
        return
    meet = m.index("meet", rows)
    task_of = np.array([t for t, _ in rows])
    fixed_of = np.array([f for _, f in rows])
    on_node = np.zeros((len(rows), plan.num_nodes))
    on_node[np.arange(len(rows)), plan.node[fixed_of]] = 1.0
    x_same = (x.at(task_of, dim="task", over=meet) * on_node).sum("node")
    before = m.binary("before", meet)
    s = start.at(task_of, over=meet)
    c = finish.at(task_of, over=meet)  # type: ignore[attr-defined]
    m_before = lft[task_of] - plan.start[fixed_of]
    m_after = plan.finish[fixed_of] - est[task_of]
    m.subject_to(
        "fixed_before",
        c + x_same * m_before + before * m_before <= plan.start[fixed_of] + 2 * m_before,
    )
    m.subject_to(
        "fixed_after",
        s - x_same * m_after + before * m_after >= plan.finish[fixed_of] - m_after,
    )
