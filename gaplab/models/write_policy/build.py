"""Exact hindsight MILPs built with gaplab.modeling, and their interpretation as action logs.

WRITE-only knapsack (x_t = 1 when step t is stored)::

    max  sum_t u_t x_t   s.t.  sum_t c_t x_t <= B,  x binary

MERGE-aware model, with y_tp = 1 when step t is stored as a delta of cost e_tp against the base
p, for every pair p < t with equal api and a non-empty delta::

    max  sum_t u_t (x_t + sum_p y_tp)
    s.t. sum_t c_t x_t + sum_(t,p) e_tp y_tp <= B
         x_t + sum_p y_tp <= 1      for every step t   (a base, a delta, or dropped)
         y_tp <= x_p                for every pair      (the base is kept; no chains)
         x, y binary
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gaplab.modeling import IndexSet, LinExpr, Model
from gaplab.models.write_policy.actions import Solution, plan_solution
from gaplab.models.write_policy.exact import write_only_optimum
from gaplab.models.write_policy.instance import Instance
from gaplab.models.write_policy.metrics import f1_score, replay
from gaplab.solvers import solve
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination

logger = logging.getLogger(__name__)


def build_write_only(instance: Instance) -> Model:
    """Declare the WRITE-only knapsack over the steps of ``instance``."""
    m = Model("write-policy-write-only")
    step = m.index("step", range(instance.num_steps))
    x = m.binary("write", step)
    m.subject_to("budget", (x * instance.costs).sum() <= instance.budget_bytes)
    m.maximize((x * instance.values).sum())
    return m


def build_merge_aware(
    instance: Instance, step_value: np.ndarray | None = None, offset: float = 0.0
) -> Model:
    """Declare the MERGE-aware MILP over the steps and every legal pair (t, p) of the episode.

    The objective is ``offset + sum_t step_value[t] * (x_t + sum_p y_tp)``; ``step_value``
    defaults to the utilities ``u_t``.
    """
    value = instance.values if step_value is None else np.asarray(step_value, dtype=float)
    m = Model("write-policy-merge")
    step = m.index("step", range(instance.num_steps))
    x = m.binary("write", step)
    pairs = instance.merge_pairs
    budget = (x * instance.costs).sum()
    utility = (x * value).sum() + offset
    if len(pairs) == 0:
        m.subject_to("budget", budget <= instance.budget_bytes)
        m.maximize(utility)
        return m

    labels = pd.MultiIndex.from_arrays([pairs.t, pairs.parent], names=["t", "p"])
    pair = m.index("pair", labels)
    y = m.binary("merge", pair)
    m.subject_to("budget", budget + (y * pairs.cost).sum() <= instance.budget_bytes)

    # Sum y over the pairs of each child step. A step may have several parents, so the pairs
    # are split into slots (the k-th pair of each child) and each slot is reindexed onto the
    # step set, where children without a k-th pair get an empty row.
    rank = _rank_within(pairs.t)
    per_step: LinExpr = x
    for k in range(int(rank.max()) + 1):
        members = np.flatnonzero(rank == k)
        children = IndexSet("step", pairs.t[members])
        picked = y.at(labels[members], over=children).reindex(step)
        per_step = per_step + picked
    m.subject_to("one_role", per_step <= 1)
    m.subject_to("base_kept", y <= x.at(pairs.parent, over=pair))
    m.maximize(utility + (y * value[pairs.t]).sum())
    return m


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Position of every entry among the entries with the same value (input sorted by value)."""
    rank = np.zeros(len(groups), dtype=np.int64)
    for i in range(1, len(groups)):
        rank[i] = rank[i - 1] + 1 if groups[i] == groups[i - 1] else 0
    return rank


def interpret(instance: Instance, result: Result, method: str) -> Solution | None:
    """Turn a MILP point into an action log that writes (or merges) each chosen step."""
    if result.x is None:
        return None
    chosen = result.value("write")
    assert isinstance(chosen, pd.Series)
    bases = [int(t) for t in chosen.index[chosen.to_numpy() > 0.5]]
    merges: list[tuple[int, int]] = []
    if len(instance.merge_pairs) and "merge" in (result.values or {}):
        y = result.value("merge")
        assert isinstance(y, pd.Series)
        merges = [(int(t), int(p)) for t, p in y.index[y.to_numpy() > 0.5]]
    return plan_solution(method, bases, merges)


def solve_write_only_milp(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, Solution | None]:
    """Solve the WRITE-only knapsack as a MILP on ``backend``."""
    model = build_write_only(instance)
    result = solve(model.compile(), backend, **_option_fields(options))
    return result, interpret(instance, result, "exact:write-only-milp")


def solve_merge_milp(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, Solution | None]:
    """Solve the MERGE-aware MILP on ``backend``."""
    model = build_merge_aware(instance)
    result = solve(model.compile(), backend, **_option_fields(options))
    return result, interpret(instance, result, "exact:merge-milp")


def solve_knapsack_dp(
    instance: Instance, backend: str = "dp", options: SolveOptions | None = None
) -> tuple[Result, Solution]:
    """Solve the WRITE-only knapsack by dynamic programming; ``backend`` and ``options`` are
    accepted for the exact-variant signature and ignored."""
    started = time.perf_counter()
    optimum = write_only_optimum(instance)
    seconds = time.perf_counter() - started
    result = Result(
        model_name="write-policy-write-only",
        backend="dp",
        termination=Termination.OPTIMAL,
        solution_status=SolutionStatus.FEASIBLE_POINT,
        objective=optimum.value,
        bound=optimum.value,
        solve_seconds=seconds,
        raw_status="dynamic programming over the budget in bytes",
    )
    return result, plan_solution("exact:knapsack-dp", list(optimum.steps), [])


@dataclass(frozen=True)
class MergeF1Optimum:
    """The F1-optimal final memory when MERGE is allowed (deltas and their bases count in W)."""

    f1: float
    solution: Solution
    iterations: int


def f1_optimum_merge(
    instance: Instance, backend: str = "highs", options: SolveOptions | None = None
) -> MergeF1Optimum:
    """Maximize F1 = 2 |W cap R| / (|W| + |R|) over final memories with MERGE, by Dinkelbach.

    Each iteration solves the MERGE-aware MILP with step weights ``2 [t in R] - lam`` and
    offset ``-lam |R|``, then sets ``lam`` to the F1 of its solution, until the optimum of that
    MILP is zero. Every MILP must be solved to optimality (``mip_rel_gap`` 0).

    Raises
    ------
    SolveError
        When a MILP ends without a proven optimum.
    """
    opts = options or SolveOptions(time_limit=60)
    fields = {**_option_fields(opts), "mip_rel_gap": 0.0}
    critical = instance.critical_mask.astype(float)
    size_r = float(critical.sum())
    lam = 0.0
    solution = plan_solution("exact:f1-merge", [], [])
    for iteration in range(1, 51):
        model = build_merge_aware(instance, 2.0 * critical - lam, -lam * size_r)
        result = solve(model.compile(), backend, **fields).raise_for_status()
        found = interpret(instance, result, "exact:f1-merge")
        assert found is not None and result.objective is not None
        solution = found
        retained = replay(instance, solution).retained
        value = f1_score(instance, retained)
        if result.objective <= 1e-9 or value <= lam + 1e-12:
            return MergeF1Optimum(max(value, lam), solution, iteration)
        lam = value
    logger.warning("Dinkelbach for the F1 optimum stopped after 50 iterations at F1 %.6f", lam)
    return MergeF1Optimum(lam, solution, 50)


def _option_fields(options: SolveOptions) -> dict[str, object]:
    return {
        "time_limit": options.time_limit,
        "mip_rel_gap": options.mip_rel_gap,
        "threads": options.threads,
        "verbose": options.verbose,
        "seed": options.seed,
        "solver_options": dict(options.solver_options),
    }
