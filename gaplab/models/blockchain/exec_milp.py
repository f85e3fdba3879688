"""Exact models of problem (i), ``block-exec``: minimum makespan of an ordered block on p cores.

Two formulations, each in a plain form (as in the authors' artifact) and a strengthened one:

- :func:`build_continuous` (MILP-C): continuous start and end times, a core per transaction,
  conflict arcs e_i <= s_j, and for pairs that may share a core a same-core indicator z and an
  order y with big-M disjunctions.
- :func:`build_rounds` (MILP-H): unit times, x_ir = 1 when transaction i runs in round r,
  y_r = 1 when round r is used; minimize the rounds used.

Strengthened forms (design choices of the note, section 8):

- only pairs incomparable in the block-order DAG get y, z, w (a reachable pair is ordered by
  the arcs already); pairs whose time windows cannot overlap are dropped too;
- symmetry cuts on identical cores: transaction k (from 0) may only use cores 0..k;
- the best heuristic schedule (H1 or Sol) as upper bound: M <= C_heur, every end time within
  its window, big-M values per pair from the windows, and the round horizon R = its rounds;
- valid lower-bound cuts: M >= max(CP, Wk/p, key chain), M >= the load of every core, and
  M >= e_i + (bottom level of i - t_i), i.e. a transaction's remaining chain must still fit.

The same heuristic schedule is the MIP start (``SolveOptions.warm_start``) of the strengthened
forms; when it meets the lower bound, no solve is needed (see :func:`solve_exec`).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from gaplab.heuristics import blockchain as heuristics
from gaplab.modeling import Model
from gaplab.models.blockchain._milp import (
    TIME_SCALE,
    add_pair_disjunction,
    checked_start,
    column_values,
    incomparable_pairs,
    non_conflicting_pairs,
    option_fields,
    pick,
    proved_by_bound,
    relabel_cores,
    transitive_reduction,
    usable,
)
from gaplab.models.blockchain.graph import bounds
from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.schedule import Schedule, from_rounds, left_shift
from gaplab.solvers import solve
from gaplab.solvers.result import Result, SolveOptions

logger = logging.getLogger(__name__)

PLAIN_ROUND_SLACK = 5
"""slackR of the artifact: the plain round horizon is max(ceil(n/p), L) + 5."""


def _scale(instance: BlockInstance) -> float:
    return 1.0 if instance.unit else TIME_SCALE


# ---------------------------------------------------------------------- MILP-C


def build_continuous(
    instance: BlockInstance, *, strengthened: bool, upper: float | None = None
) -> Model:
    """MILP-C of problem (i). Times are in kgas (heterogeneous) or rounds; the objective is the
    makespan M in the instance's units (gas or rounds), so bounds compare directly.

    ``upper`` is a known makespan (the heuristic's, in instance units); the strengthened form
    needs it for its windows and big-M values, the plain form uses H = sum t.
    """
    n, p = instance.n, instance.cores
    scale = _scale(instance)
    graph = instance.graph
    t = instance.times / scale
    b = bounds(instance)
    m = Model("block-exec-continuous" + ("" if strengthened else "-plain"))
    tx = m.index("tx", list(instance.ids))
    core = m.index("core", range(p))

    if strengthened:
        if upper is None:
            raise ValueError("the strengthened MILP-C needs upper=, a known makespan")
        horizon = upper / scale
        s_lo, e_hi, tail = _windows(instance, horizon)
        pi, pj = _overlapping_pairs(instance, s_lo, e_hi)
        big_ij = e_hi[pi] - s_lo[pj]  # slack needed by "i before j" when it is switched off
        big_ji = e_hi[pj] - s_lo[pi]
        x_upper = (np.arange(p)[None, :] <= np.arange(n)[:, None]).astype(float)
        x = m.integer("x", tx, core, lower=0.0, upper=x_upper)
        s = m.continuous("start", tx, lower=s_lo, upper=np.maximum(s_lo, e_hi - t))
        e = m.continuous("end", tx, lower=s_lo + t, upper=np.maximum(s_lo + t, e_hi))
        lower = b.makespan_lower / scale
        makespan = m.continuous("makespan", lower=lower, upper=max(lower, horizon))
    else:
        horizon = float(t.sum())
        pi, pj = non_conflicting_pairs(graph)
        big_ij = big_ji = np.full(pi.size, horizon)
        x = m.binary("x", tx, core)
        s = m.continuous("start", tx)
        e = m.continuous("end", tx)
        makespan = m.continuous("makespan")

    m.subject_to("one_core", x.sum("core") == 1)
    m.subject_to("duration", e - s == t)
    arc = m.index("arc", range(graph.num_edges))
    m.subject_to("conflict_order", pick(e, graph.src, arc) - pick(s, graph.dst, arc) <= 0)
    m.subject_to("makespan_def", e - makespan <= 0)

    add_pair_disjunction(m, x, s, e, pi, pj, core, big_ij, big_ji)

    if strengthened:
        load = (x * np.broadcast_to(t[:, None], (n, p))).sum("tx")
        m.subject_to("core_load", load - makespan <= 0)
        m.subject_to("remaining_chain", e - makespan <= -tail)
    m.minimize(makespan * scale)
    return m


def _windows(instance: BlockInstance, horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Earliest start, latest end and remaining chain of each transaction, in model units.

    ``horizon`` is a known makespan in model units; ``tail`` is the work that must follow i.
    """
    t = instance.times / _scale(instance)
    graph = instance.graph
    head = graph.top_level(t) - t  # earliest start with unlimited cores
    tail = graph.bottom_level(t) - t
    return head, horizon - tail, tail


def _overlapping_pairs(
    instance: BlockInstance, s_lo: np.ndarray, e_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Incomparable pairs whose windows overlap; the others are ordered already."""
    pi, pj = incomparable_pairs(instance.graph)
    overlap = (s_lo[pj] < e_hi[pi]) & (s_lo[pi] < e_hi[pj])
    return pi[overlap], pj[overlap]


def continuous_start(instance: BlockInstance, schedule: Schedule) -> dict[str, np.ndarray]:
    """Column values of the strengthened MILP-C at ``schedule``, by variable block.

    The model must have been built with ``upper=schedule.makespan(instance)``, so that the
    schedule lies inside every window.
    """
    n, p = instance.n, instance.cores
    scale = _scale(instance)
    core = relabel_cores(schedule.core)
    start = schedule.start
    end = schedule.end(instance)
    x = np.zeros((n, p))
    x[np.arange(n), core] = 1.0
    s_lo, e_hi, _ = _windows(instance, schedule.makespan(instance) / scale)
    pi, pj = _overlapping_pairs(instance, s_lo, e_hi)
    same = core[pi] == core[pj]
    w = np.zeros((pi.size, p))
    w[np.flatnonzero(same), core[pi[same]]] = 1.0
    # y = 1 means i before j; it only binds on one core, where the intervals are disjoint.
    return {
        "x": x.ravel(),
        "start": start / scale,
        "end": end / scale,
        "makespan": np.array([schedule.makespan(instance) / scale]),
        "y": (end[pi] <= start[pj]).astype(float),
        "z": same.astype(float),
        "w": w.ravel(),
    }


def _interpret_continuous(instance: BlockInstance, result: Result, method: str) -> Schedule | None:
    if not usable(result):
        return None
    x = column_values(result, "x").reshape(instance.n, instance.cores)
    start = column_values(result, "start")
    core = x.argmax(axis=1)
    sequence = np.lexsort((np.arange(instance.n), start))
    return left_shift(instance, core, sequence, free_order=False, method=method)


# ---------------------------------------------------------------------- MILP-H


def build_rounds(instance: BlockInstance, *, strengthened: bool, upper: int | None = None) -> Model:
    """MILP-H of problem (i) for unit times; the objective counts the rounds used.

    The cumulative precedence rows sum_{tau <= r} x_j,tau <= sum_{tau <= r-1} x_i,tau are
    written through X_ir = sum_{tau <= r} x_i,tau (one auxiliary column per x), which has the
    same LP relaxation and keeps the matrix at two terms per row instead of growing like R^2.
    """
    n, p = instance.n, instance.cores
    graph = instance.graph
    b = bounds(instance)
    lower = int(b.makespan_lower)
    ones = np.ones(n)
    head = graph.top_level(ones).astype(np.int64)  # earliest round of i, from 1
    tail = graph.bottom_level(ones).astype(np.int64)  # rounds from i to the end, i included
    if strengthened:
        if upper is None:
            raise ValueError("the strengthened MILP-H needs upper=, a known round count")
        horizon = int(upper)
        src, dst = transitive_reduction(graph)
    else:
        horizon = max(math.ceil(n / p), b.chain_nodes) + PLAIN_ROUND_SLACK
        src, dst = graph.src, graph.dst

    m = Model("block-exec-rounds" + ("" if strengthened else "-plain"))
    tx = m.index("tx", list(instance.ids))
    rnd = m.index("round", range(1, horizon + 1))
    r_of = np.arange(1, horizon + 1)
    if strengthened:
        window = (r_of[None, :] >= head[:, None]) & (r_of[None, :] <= horizon - tail[:, None] + 1)
        x = m.integer("x", tx, rnd, lower=0.0, upper=window.astype(float))
        used_lower = (r_of <= lower).astype(float)
        y = m.integer("used", rnd, lower=used_lower, upper=1.0)
    else:
        x = m.binary("x", tx, rnd)
        y = m.binary("used", rnd)
    cum = m.continuous("done_by", tx, rnd, upper=1.0)

    m.subject_to("one_round", x.sum("round") == 1)
    m.subject_to("capacity", x.sum("tx") - y * p <= 0)
    # X_i1 = x_i1 and X_ir = X_i,r-1 + x_ir.
    flat = np.arange(n * horizon).reshape(n, horizon)
    m.subject_to("cumulative_first", pick(cum, flat[:, 0], tx) - pick(x, flat[:, 0], tx) == 0)
    cell = m.index("cell", range(n * (horizon - 1)))
    here, before = flat[:, 1:].ravel(), flat[:, :-1].ravel()
    m.subject_to(
        "cumulative",
        pick(cum, here, cell) - pick(cum, before, cell) - pick(x, here, cell) == 0,
    )

    # Arc i -> j: X_j1 = 0 and X_jr <= X_i,r-1. In the strengthened form only the rounds where
    # both sides can vary get a row (elsewhere X_jr = 0 or X_i,r-1 = 1 already).
    arcs_k, rounds_r = np.nonzero(np.ones((src.size, horizon - 1), dtype=bool))
    rounds_r = rounds_r + 1  # 0-based column of X_jr, from the second round on
    if strengthened and src.size:
        r = rounds_r + 1
        keep = (head[dst][arcs_k] <= r) & (r - 1 <= horizon - tail[src][arcs_k])
        arcs_k, rounds_r = arcs_k[keep], rounds_r[keep]
        first_arcs = np.flatnonzero(head[dst] <= 1)
    else:
        first_arcs = np.arange(src.size)
    starters = m.index("arc_first", range(first_arcs.size))
    m.subject_to("precedence_first", pick(cum, flat[dst[first_arcs], 0], starters) <= 0)
    arc_round = m.index("arc_round", range(arcs_k.size))
    later = pick(cum, flat[dst[arcs_k], rounds_r], arc_round)
    earlier = pick(cum, flat[src[arcs_k], rounds_r - 1], arc_round)
    m.subject_to("precedence", later - earlier <= 0)

    step = m.index("round_step", range(horizon - 1))
    m.subject_to(
        "no_gaps",
        pick(y, np.arange(1, horizon), step) - pick(y, np.arange(horizon - 1), step) <= 0,
    )
    m.minimize(y.sum())
    return m


def rounds_start(instance: BlockInstance, schedule: Schedule) -> dict[str, np.ndarray] | None:
    """Column values of the strengthened MILP-H at a unit-time ``schedule``, by variable block.

    The model must have been built with ``upper`` equal to the schedule's round count. Returns
    ``None`` when a start time is not a whole round.
    """
    rounds = schedule.start + 1
    if not np.allclose(rounds, np.round(rounds)):
        return None
    rounds = np.round(rounds).astype(np.int64)
    horizon = int(rounds.max(initial=0))
    r_of = np.arange(1, horizon + 1)
    return {
        "x": (rounds[:, None] == r_of[None, :]).astype(float).ravel(),
        "used": np.ones(horizon),
        "done_by": (rounds[:, None] <= r_of[None, :]).astype(float).ravel(),
    }


def _interpret_rounds(instance: BlockInstance, result: Result, method: str) -> Schedule | None:
    if not usable(result):
        return None
    horizon = column_values(result, "used").size
    x = column_values(result, "x").reshape(instance.n, horizon)
    rounds = x.argmax(axis=1) + 1
    # Renumber the used rounds 1, 2, ... in order; precedence only needs the order kept.
    used = np.unique(rounds)
    compact = np.searchsorted(used, rounds) + 1
    return from_rounds(compact, method)


# ---------------------------------------------------------------------- solve


def solve_exec(
    instance: BlockInstance,
    backend: str,
    options: SolveOptions,
    *,
    strengthened: bool = True,
    formulation: str = "auto",
) -> tuple[Result, Schedule | None]:
    """Build, solve and interpret problem (i); ``formulation`` is auto, continuous or rounds.

    ``auto`` picks MILP-H for a homogeneous workload and MILP-C otherwise. The strengthened
    forms hand the best heuristic schedule to the backend as a MIP start (HiGHS uses it, other
    backends ignore it) and bound the makespan by it, so any point the solver returns is at
    least as good. When that schedule meets the lower bound max(CP, Wk/p, key chain), no MILP
    is solved: the Result is optimal, carries the heuristic point and states this in
    ``raw_status``. The schedule returned is always the solver's (or that proved point), never
    a heuristic substituted for a missing solver point, so it is ``None`` when the solver found
    none.
    """
    if formulation == "auto":
        formulation = "rounds" if instance.unit else "continuous"
    if formulation == "rounds" and not instance.unit:
        raise ValueError("the rounds formulation needs unit times (a homogeneous workload)")
    method = f"milp-{formulation}" + ("" if strengthened else "-plain")

    start: np.ndarray | None = None
    if strengthened:
        heuristic = warm_start(instance)
        upper = heuristic.makespan(instance)
        lower = bounds(instance).makespan_lower
        values: dict[str, np.ndarray] | None
        if formulation == "rounds":
            model = build_rounds(instance, strengthened=True, upper=int(round(upper)))
            values = rounds_start(instance, heuristic)
        else:
            model = build_continuous(instance, strengthened=True, upper=upper)
            values = continuous_start(instance, heuristic)
        compiled = model.compile()
        start = None if values is None else checked_start(compiled, values)
        if start is not None and upper <= lower + 1e-9 * max(1.0, upper):
            reason = (
                f"the {heuristic.method} schedule meets the lower bound max(CP, Wk/p, key chain)"
            )
            result = proved_by_bound(compiled, start, upper, lower, backend, reason)
            note = f"{heuristic.method} schedule, optimal because it meets the lower bound"
            return result, _tag(heuristic, method, note)
    elif formulation == "rounds":
        compiled = build_rounds(instance, strengthened=False).compile()
    else:
        compiled = build_continuous(instance, strengthened=False).compile()

    result = solve(compiled, backend, **option_fields(options, start))
    if formulation == "rounds":
        return result, _interpret_rounds(instance, result, method)
    return result, _interpret_continuous(instance, result, method)


def warm_start(instance: BlockInstance) -> Schedule:
    """The shortest schedule among H1 (both forms) and Sol: the strengthened model's start."""
    candidates = [heuristics.h1(instance), heuristics.h1_time(instance)]
    candidates += [heuristics.sol_batches(instance)]
    return min(candidates, key=lambda schedule: schedule.makespan(instance))


def _tag(schedule: Schedule, method: str, note: str) -> Schedule:
    return Schedule(schedule.core, schedule.start, method, info={"note": note})
