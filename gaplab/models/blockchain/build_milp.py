"""Exact models and bounds of problem (ii), ``block-build``: choose and schedule for reward.

- :func:`build_continuous` (MILP-C): v_i selects, x_ic places on a core, start and end in
  [0, B]; conflicting selected pairs get disjoint intervals in either order (y), and pairs on
  the same core (z, w) too. The order is free, unlike problem (i).
- :func:`build_rounds` (MILP-H) for unit times: x_ir = 1 when i runs in round r; at most one
  round per transaction, at most p per round, no conflicting pair in one round.
- :func:`build_lp_bound`: the tighter bound, an LP over v alone with the aggregate knapsack row
  sum t v <= p B, a clique row sum_{K} t v <= B for every key's writer set K, and the pair
  rows t_i v_i + t_j v_j <= B of the conflict graph.

The plain LP relaxation is the plain MILP with its integrality dropped; for p >= 2 it does not
depend on p (design note, section 3.1), which is why the tighter bound exists.

Strengthened MILPs add: symmetry cuts on identical cores, the rows of the tighter bound, v_i = 0
when t_i > B, and the best heuristic reward (H2 or RG) as a lower bound on the objective. The
same heuristic schedule is their MIP start (``SolveOptions.warm_start``).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from gaplab.heuristics import blockchain as heuristics
from gaplab.modeling import CompiledModel, LinExpr, Model
from gaplab.models.blockchain._milp import (
    TIME_SCALE,
    add_pair_disjunction,
    checked_start,
    column_values,
    non_conflicting_pairs,
    option_fields,
    pick,
    proved_by_bound,
    relabel_cores,
    usable,
)
from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.schedule import Schedule, from_rounds, left_shift
from gaplab.solvers import solve
from gaplab.solvers.result import Result, SolveOptions

logger = logging.getLogger(__name__)


def _scale(instance: BlockInstance) -> float:
    return 1.0 if instance.unit else TIME_SCALE


def _writer_cliques(instance: BlockInstance) -> list[np.ndarray]:
    """Writer sets of two or more transactions: pairwise conflicting, so cliques of G."""
    return [a.writers for a in instance.graph.keys if a.writers.size >= 2]


def _clique_rows(m: Model, v: LinExpr, cliques: list[np.ndarray], coef: np.ndarray) -> LinExpr:
    """sum_{i in K} coef_i v_i for every clique K, as one expression over the cliques."""
    members = np.concatenate(cliques)
    owner = np.repeat(np.arange(len(cliques)), [c.size for c in cliques])
    rows = pick(v, members, m.index("clique_member", range(members.size))) * coef[members]
    clique = m.index("clique", range(len(cliques)))
    return rows.sum_into(clique, by=clique.index[owner])


# ---------------------------------------------------------------------- MILP-C


def build_continuous(
    instance: BlockInstance, *, strengthened: bool, lower: float | None = None
) -> Model:
    """MILP-C of problem (ii); times in kgas (heterogeneous) or rounds, reward in gwei.

    ``lower`` is a known reward (the heuristic's), used by the strengthened form as a cut.
    """
    assert instance.budget is not None
    n, p = instance.n, instance.cores
    scale = _scale(instance)
    budget = float(instance.budget) / scale
    t = instance.times / scale
    graph = instance.graph
    m = Model("block-build-continuous" + ("" if strengthened else "-plain"))
    tx = m.index("tx", list(instance.ids))
    core = m.index("core", range(p))

    fits = (instance.times <= float(instance.budget)).astype(float)
    if strengthened:
        v = m.integer("v", tx, lower=0.0, upper=fits)
        x_upper = (np.arange(p)[None, :] <= np.arange(n)[:, None]) * fits[:, None]
        x = m.integer("x", tx, core, lower=0.0, upper=x_upper.astype(float))
    else:
        v = m.binary("v", tx)
        x = m.binary("x", tx, core)
    s = m.continuous("start", tx, upper=budget)
    e = m.continuous("end", tx, upper=budget)

    m.subject_to("one_core", x.sum("core") - v == 0)
    m.subject_to("duration", e - s - v * t == 0)
    m.subject_to("start_if_selected", s - v * budget <= 0)
    m.subject_to("end_if_selected", e - v * budget <= 0)

    # Conflicting pairs: disjoint intervals, either order.
    edge = m.index("edge", range(graph.num_edges))
    ci, cj = graph.src, graph.dst
    y_c = m.binary("y_conflict", edge)
    e_i, e_j = pick(e, ci, edge), pick(e, cj, edge)
    s_i, s_j = pick(s, ci, edge), pick(s, cj, edge)
    m.subject_to("conflict_i_first", e_i - s_j + y_c * budget <= budget)
    m.subject_to("conflict_j_first", e_j - s_i - y_c * budget <= 0)

    # Non-conflicting pairs: disjoint only when on the same core.
    pi, pj = _core_pairs(instance, strengthened)
    add_pair_disjunction(m, x, s, e, pi, pj, core, budget, budget)

    reward = (v * instance.rewards).sum()
    if strengthened:
        _add_bound_rows(m, instance, v, t, budget)
        load = (x * np.broadcast_to(t[:, None], (n, p))).sum("tx")
        m.subject_to("core_load", load <= budget)
        if lower is not None and lower > 0:
            m.subject_to("heuristic_floor", reward >= lower)
    m.maximize(reward)
    return m


def _core_pairs(instance: BlockInstance, strengthened: bool) -> tuple[np.ndarray, np.ndarray]:
    """Non-conflicting pairs that get same-core rows in MILP-C."""
    assert instance.budget is not None
    pi, pj = non_conflicting_pairs(instance.graph)
    if strengthened:
        # Two that cannot share a core within B never need the same-core rows.
        scale = _scale(instance)
        t = instance.times / scale
        both_fit = t[pi] + t[pj] <= float(instance.budget) / scale + 1e-9
        pi, pj = pi[both_fit], pj[both_fit]
    return pi, pj


def continuous_start(instance: BlockInstance, schedule: Schedule) -> dict[str, np.ndarray]:
    """Column values of the strengthened MILP-C at ``schedule``, by variable block."""
    n, p = instance.n, instance.cores
    scale = _scale(instance)
    selected = schedule.selected
    core = relabel_cores(schedule.core)
    # Unselected transactions sit at s = e = 0 in the model.
    start = np.where(selected, schedule.start, 0.0)
    end = np.where(selected, schedule.start + instance.times, 0.0)
    x = np.zeros((n, p))
    chosen = np.flatnonzero(selected)
    x[chosen, core[chosen]] = 1.0
    graph = instance.graph
    pi, pj = _core_pairs(instance, strengthened=True)
    same = selected[pi] & selected[pj] & (core[pi] == core[pj])
    w = np.zeros((pi.size, p))
    w[np.flatnonzero(same), core[pi[same]]] = 1.0
    # y = 1 means i ends before j starts; with s = e = 0 this also suits unselected ones.
    return {
        "v": selected.astype(float),
        "x": x.ravel(),
        "start": start / scale,
        "end": end / scale,
        "y_conflict": (end[graph.src] <= start[graph.dst]).astype(float),
        "y": (end[pi] <= start[pj]).astype(float),
        "z": same.astype(float),
        "w": w.ravel(),
    }


def _add_bound_rows(
    m: Model, instance: BlockInstance, v: LinExpr, t: np.ndarray, budget: float
) -> None:
    """Aggregate knapsack and writer-clique rows (valid for both formulations)."""
    m.subject_to("aggregate_work", (v * t).sum() <= instance.cores * budget)
    cliques = _writer_cliques(instance)
    if cliques:
        m.subject_to("key_clique", _clique_rows(m, v, cliques, t) <= budget)


def _interpret_continuous(instance: BlockInstance, result: Result, method: str) -> Schedule | None:
    if not usable(result):
        return None
    v = column_values(result, "v") > 0.5
    x = column_values(result, "x").reshape(instance.n, instance.cores)
    start = column_values(result, "start")
    core = np.where(v, x.argmax(axis=1), -1)
    chosen = np.flatnonzero(v)
    sequence = chosen[np.lexsort((chosen, start[chosen]))]
    return left_shift(instance, core, sequence, free_order=True, method=method)


# ---------------------------------------------------------------------- MILP-H


def build_rounds(
    instance: BlockInstance, *, strengthened: bool, lower: float | None = None
) -> Model:
    """MILP-H of problem (ii) for unit times over R = budget rounds."""
    p, rounds = instance.cores, instance.rounds
    graph = instance.graph
    m = Model("block-build-rounds" + ("" if strengthened else "-plain"))
    tx = m.index("tx", list(instance.ids))
    rnd = m.index("round", range(1, rounds + 1))
    x = m.binary("x", tx, rnd)
    m.subject_to("at_most_once", x.sum("round") <= 1)
    m.subject_to("capacity", x.sum("tx") <= p)

    src, dst = graph.src, graph.dst
    if strengthened:
        # Writer cliques replace the edges they cover: sum_{i in K} x_ir <= 1 per round.
        cliques = _writer_cliques(instance)
        covered = np.zeros(graph.num_edges, dtype=bool)
        for members in cliques:
            inside = np.isin(src, members) & np.isin(dst, members)
            covered |= inside
        src, dst = src[~covered], dst[~covered]
        if cliques:
            members = np.concatenate(cliques)
            owner = np.repeat(np.arange(len(cliques)), [c.size for c in cliques])
            entries = (members[:, None] * rounds + np.arange(rounds)[None, :]).ravel()
            groups = (owner[:, None] * rounds + np.arange(rounds)[None, :]).ravel()
            picked = pick(x, entries, m.index("clique_entry", range(entries.size)))
            clique_round = m.index("clique_round", range(len(cliques) * rounds))
            summed = picked.sum_into(clique_round, by=clique_round.index[groups])
            m.subject_to("key_clique", summed <= 1)
    edge = m.index("edge", range(src.size))
    r_all = np.arange(rounds)[None, :]
    xi = pick(x, src[:, None] * rounds + r_all, edge, rnd)
    xj = pick(x, dst[:, None] * rounds + r_all, edge, rnd)
    m.subject_to("no_conflict", xi + xj <= 1)

    reward = (x.sum("round") * instance.rewards).sum()
    if strengthened:
        step = m.index("round_step", range(rounds - 1))
        per_round = x.sum("tx")
        m.subject_to(
            "symmetry",
            pick(per_round, np.arange(rounds - 1), step)
            - pick(per_round, np.arange(1, rounds), step)
            >= 0,
        )
        if lower is not None and lower > 0:
            m.subject_to("heuristic_floor", reward >= lower)
    m.maximize(reward)
    return m


def rounds_start(instance: BlockInstance, schedule: Schedule) -> dict[str, np.ndarray] | None:
    """Column values of the strengthened MILP-H at a unit-time ``schedule``, by variable block.

    Rounds are interchangeable in problem (ii), so they are renumbered by decreasing size to
    meet the symmetry cut. Returns ``None`` when a start is not a whole round within R.
    """
    rounds = np.where(schedule.selected, schedule.start + 1, 0.0)
    whole = np.round(rounds)
    if not np.allclose(rounds, whole) or whole.max(initial=0) > instance.rounds:
        return None
    rounds = whole.astype(np.int64)
    counts = np.bincount(rounds, minlength=instance.rounds + 1)[1:]
    order = np.argsort(-counts, kind="stable")  # order[k] = old round (from 0) of new round k
    renumber = np.zeros(instance.rounds + 1, dtype=np.int64)
    renumber[order + 1] = np.arange(1, instance.rounds + 1)
    new_rounds = renumber[rounds]  # 0 stays 0, not selected
    r_of = np.arange(1, instance.rounds + 1)
    return {"x": (new_rounds[:, None] == r_of[None, :]).astype(float).ravel()}


def _interpret_rounds(instance: BlockInstance, result: Result, method: str) -> Schedule | None:
    if not usable(result):
        return None
    x = column_values(result, "x").reshape(instance.n, instance.rounds)
    rounds = np.where(x.max(axis=1) > 0.5, x.argmax(axis=1) + 1, 0)
    return from_rounds(rounds, method)


# ---------------------------------------------------------------------- bounds


def build_lp_bound(instance: BlockInstance) -> Model:
    """The tighter LP bound over v: knapsack, writer cliques and conflict pairs."""
    assert instance.budget is not None
    scale = _scale(instance)
    budget = float(instance.budget) / scale
    t = instance.times / scale
    graph = instance.graph
    m = Model("block-build-bound")
    tx = m.index("tx", list(instance.ids))
    fits = (instance.times <= float(instance.budget)).astype(float)
    v = m.continuous("v", tx, upper=fits)
    _add_bound_rows(m, instance, v, t, budget)
    if not instance.unit or budget < 2:
        edge = m.index("edge", range(graph.num_edges))
        pair_load = (
            pick(v, graph.src, edge) * t[graph.src] + pick(v, graph.dst, edge) * t[graph.dst]
        )
        m.subject_to("conflict_pair", pair_load <= budget)
    m.maximize((v * instance.rewards).sum())
    return m


def relax(model: Model) -> CompiledModel:
    """The compiled model with every integrality dropped: its LP relaxation."""
    compiled = model.compile()
    return dataclasses.replace(
        compiled,
        name=compiled.name + "-lp",
        integrality=np.zeros_like(compiled.integrality),
    )


# ---------------------------------------------------------------------- solve


def solve_build(
    instance: BlockInstance,
    backend: str,
    options: SolveOptions,
    *,
    strengthened: bool = True,
    formulation: str = "auto",
) -> tuple[Result, Schedule | None]:
    """Build, solve and interpret problem (ii); ``formulation`` is auto, continuous or rounds.

    The strengthened forms hand the best heuristic schedule to the backend as a MIP start
    (HiGHS uses it, other backends ignore it). They also require a reward at least the
    heuristic's, so any point the solver returns is at least as good. When the heuristic reward
    meets the tighter LP bound, no MILP is solved: the Result is optimal, carries the heuristic
    point and states this in ``raw_status``. The schedule returned is always the solver's (or
    that proved point), so it is ``None`` when the solver found none.
    """
    if formulation == "auto":
        formulation = "rounds" if instance.unit else "continuous"
    if formulation == "rounds" and not instance.unit:
        raise ValueError("the rounds formulation needs unit times (a homogeneous workload)")
    method = f"milp-{formulation}" + ("" if strengthened else "-plain")
    builder = build_rounds if formulation == "rounds" else build_continuous
    if not strengthened:
        compiled = builder(instance, strengthened=False).compile()
        return _solve_and_interpret(instance, compiled, backend, options, None, formulation, method)

    heuristic = warm_start(instance)
    lower = heuristic.reward(instance)
    compiled = builder(instance, strengthened=True, lower=lower).compile()
    if formulation == "rounds":
        values = rounds_start(instance, heuristic)
    else:
        values = continuous_start(instance, heuristic)
    start = None if values is None else checked_start(compiled, values)
    if start is not None:
        bound = solve_lp_bound(instance, backend, options).objective
        if bound is not None and lower >= bound * (1 - 1e-9):
            reason = f"the {heuristic.method} reward meets the LP bound (solved with {backend})"
            note = f"{heuristic.method} schedule, optimal because it meets the LP bound"
            result = proved_by_bound(compiled, start, lower, bound, backend, reason)
            return result, _tag(heuristic, method, note)
    return _solve_and_interpret(instance, compiled, backend, options, start, formulation, method)


def _solve_and_interpret(
    instance: BlockInstance,
    compiled: CompiledModel,
    backend: str,
    options: SolveOptions,
    start: np.ndarray | None,
    formulation: str,
    method: str,
) -> tuple[Result, Schedule | None]:
    result = solve(compiled, backend, **option_fields(options, start))
    if formulation == "rounds":
        return result, _interpret_rounds(instance, result, method)
    return result, _interpret_continuous(instance, result, method)


def solve_lp_relaxation(
    instance: BlockInstance, backend: str, options: SolveOptions
) -> tuple[Result, None]:
    """The plain LP relaxation of the plain MILP; its objective is an upper bound."""
    builder = build_rounds if instance.unit else build_continuous
    compiled = relax(builder(instance, strengthened=False))
    return solve(compiled, backend, **option_fields(options)), None


def solve_lp_bound(instance: BlockInstance, backend: str, options: SolveOptions) -> Result:
    """Solve the tighter LP bound."""
    return solve(build_lp_bound(instance).compile(), backend, **option_fields(options))


def warm_start(instance: BlockInstance) -> Schedule:
    """The best schedule among H2 (both forms) and RG (both orders): the strengthened start."""
    candidates = [heuristics.h2(instance), heuristics.h2_time(instance)]
    candidates += [heuristics.reward_greedy(instance), heuristics.reward_greedy_tip(instance)]
    return max(candidates, key=lambda schedule: schedule.reward(instance))


def _tag(schedule: Schedule, method: str, note: str) -> Schedule:
    return Schedule(schedule.core, schedule.start, method, info={"note": note})
