"""Helpers shared by the blockchain MILPs: row picking, reachability, results without a solve."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from gaplab.modeling import IndexSet, LinExpr, Model
from gaplab.models.blockchain.graph import ConflictGraph
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination

logger = logging.getLogger(__name__)

TIME_SCALE = 1000.0
"""Heterogeneous runtimes enter the MILPs in kgas, so big-M values stay near 1e4, not 1e7."""


def pick(variable: LinExpr, rows: np.ndarray, *over: IndexSet) -> LinExpr:
    """Rows ``rows`` (flat positions of a variable block, row-major) as an expression over the
    sets ``over``; a 2-D ``rows`` array matches two sets."""
    rows = np.asarray(rows, dtype=np.int64).ravel()
    return LinExpr(variable.model, tuple(over), variable.coef[rows], variable.const[rows])


def reachability(graph: ConflictGraph) -> np.ndarray:
    """Boolean matrix: entry (i, j) is True when j is reachable from i along conflict arcs."""
    n = graph.n
    reach = np.zeros((n, n), dtype=bool)
    for i in range(n - 1, -1, -1):
        succ = graph.succ(i)
        if succ.size:
            reach[i, succ] = True
            reach[i] |= reach[succ].any(axis=0)
    return reach


def incomparable_pairs(graph: ConflictGraph) -> tuple[np.ndarray, np.ndarray]:
    """Pairs i < j with neither reachable from the other in the block-order DAG."""
    reach = reachability(graph)
    upper = np.triu(~reach, k=1)
    a, b = np.nonzero(upper)
    return a.astype(np.int64), b.astype(np.int64)


def non_conflicting_pairs(graph: ConflictGraph) -> tuple[np.ndarray, np.ndarray]:
    """Pairs i < j that do not conflict (the set P_N of the note)."""
    n = graph.n
    a, b = np.triu_indices(n, k=1)
    keep = ~graph.conflicting(a, b)
    return a[keep].astype(np.int64), b[keep].astype(np.int64)


def transitive_reduction(graph: ConflictGraph) -> tuple[np.ndarray, np.ndarray]:
    """Arcs i -> j not implied by a longer path; they keep the same reachability."""
    reach = reachability(graph)
    keep = np.ones(graph.num_edges, dtype=bool)
    for i in range(graph.n):
        lo, hi = graph.succ_ptr[i], graph.succ_ptr[i + 1]
        if hi - lo < 2:
            continue
        succ = graph.dst[lo:hi]
        via = reach[succ].any(axis=0)
        keep[lo:hi] = ~via[succ]
    return graph.src[keep], graph.dst[keep]


def result_without_solve(model: Model, value: float, bound: float, reason: str) -> Result:
    """A Result for a model whose optimum is proved by a bound, so no solver was called."""
    return Result(
        model_name=model.name,
        backend="none",
        termination=Termination.OPTIMAL,
        solution_status=SolutionStatus.NO_SOLUTION,
        objective=value,
        bound=bound,
        raw_status="proved by bounds",
        message=reason,
    )


def usable(result: Result) -> bool:
    """True when the solve returned a point that satisfies the model within tolerance."""
    if result.x is None:
        return False
    if result.solution_status != SolutionStatus.FEASIBLE_POINT:
        logger.warning(
            "%s returned a point with status %s (max violation %s); it is not used",
            result.model_name,
            result.solution_status.value,
            result.max_violation,
        )
        return False
    return True


def column_values(result: Result, block: str) -> np.ndarray:
    """Values of one variable block as a flat array (row-major over its sets)."""
    value = result.value(block)
    if value is None:
        raise ValueError(f"the solve returned no point, so {block!r} has no values")
    if isinstance(value, float):
        return np.array([value])
    return value.to_numpy(dtype=float)


def group_sum(expr: LinExpr, owner: np.ndarray, over: IndexSet) -> LinExpr:
    """Sum the rows of a one-dimensional ``expr`` by ``owner`` (one group index per row)."""
    groups = len(over)
    matrix = sp.csr_matrix(
        (np.ones(owner.size), (owner, np.arange(owner.size))), shape=(groups, owner.size)
    )
    return LinExpr(expr.model, (over,), (matrix @ expr.coef).tocsr(), matrix @ expr.const)


def option_fields(options: SolveOptions) -> dict[str, Any]:
    """The fields of ``options`` as keyword arguments of :func:`gaplab.solvers.solve`."""
    return {
        "time_limit": options.time_limit,
        "mip_rel_gap": options.mip_rel_gap,
        "threads": options.threads,
        "verbose": options.verbose,
        "seed": options.seed,
        "solver_options": dict(options.solver_options),
    }
