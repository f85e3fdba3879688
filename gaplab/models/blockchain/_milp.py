"""Helpers shared by the blockchain MILPs: row picking, reachability, heuristic starts."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gaplab.modeling import CompiledModel, IndexSet, LinExpr, Model
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


START_TOLERANCE = 1e-6
"""Largest row or bound violation (in model units) at which a heuristic point is still used."""


def relabel_cores(core: np.ndarray) -> np.ndarray:
    """Rename cores in order of first use by position, keeping -1 (not selected).

    Transaction k then uses a core numbered at most k, as the symmetry cut x_ic = 0 for c > i
    of the strengthened models requires. Cores are identical, so the schedule is unchanged.
    """
    core = np.asarray(core, dtype=np.int64)
    out = np.full(core.size, -1, dtype=np.int64)
    names: dict[int, int] = {}
    for i, c in enumerate(core.tolist()):
        if c >= 0:
            out[i] = names.setdefault(c, len(names))
    return out


def checked_start(compiled: CompiledModel, values: dict[str, Any]) -> np.ndarray | None:
    """Assemble the column vector of a heuristic point; ``None`` when it violates the model.

    A violation means the point was assembled wrongly. It is logged, and the solve then runs
    without a start instead of handing the solver an infeasible one.
    """
    x = compiled.column_vector(values)
    violation = compiled.max_violation(x)
    if violation > START_TOLERANCE:
        logger.warning(
            "heuristic start of %s violates the model by %.3g; solving without it",
            compiled.name,
            violation,
        )
        return None
    return x


def proved_by_bound(
    compiled: CompiledModel, x: np.ndarray, value: float, bound: float, backend: str, reason: str
) -> Result:
    """A Result for a heuristic point whose value meets a proven bound, so no MILP was solved.

    The point ``x`` is a feasible point of ``compiled`` (checked by :func:`checked_start`), so
    the Result reports termination optimal with a feasible point. Its ``raw_status`` states
    that the bound, not the solver, proved optimality. ``backend`` is the backend the caller
    requested.
    """
    return Result(
        model_name=compiled.name,
        backend=backend,
        termination=Termination.OPTIMAL,
        solution_status=SolutionStatus.FEASIBLE_POINT,
        objective=value,
        bound=bound,
        raw_status=f"proved by bound, no MILP solve: {reason}",
        x=x,
        max_violation=compiled.max_violation(x),
        compiled=compiled,
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


def add_pair_disjunction(
    m: Model,
    x: LinExpr,
    s: LinExpr,
    e: LinExpr,
    pi: np.ndarray,
    pj: np.ndarray,
    core: IndexSet,
    big_ij: Any,
    big_ji: Any,
) -> None:
    """Keep each non-conflicting pair (pi, pj) disjoint in time when it shares a core.

    w[pair, c] is 1 when both run on core c, z sums it, and y orders the pair:
    e_i <= s_j + M_ij (1 - y) + M_ij (1 - z) and e_j <= s_i + M_ji y + M_ji (1 - z).
    ``big_ij`` and ``big_ji`` are scalars or one value per pair.
    """
    p = len(core)
    pair = m.index("pair", range(pi.size))
    y = m.binary("y", pair)
    z = m.binary("z", pair)
    w = m.binary("w", pair, core)
    cores = np.arange(p)[None, :]
    xi = pick(x, pi[:, None] * p + cores, pair, core)
    xj = pick(x, pj[:, None] * p + cores, pair, core)
    m.subject_to("w_le_xi", w - xi <= 0)
    m.subject_to("w_le_xj", w - xj <= 0)
    m.subject_to("w_ge_both", w - xi - xj >= -1)
    m.subject_to("same_core", z - w.sum("core") == 0)
    ei, ej = pick(e, pi, pair), pick(e, pj, pair)
    si, sj = pick(s, pi, pair), pick(s, pj, pair)
    m.subject_to("i_before_j", ei - sj + y * big_ij + z * big_ij <= 2 * big_ij)
    m.subject_to("j_before_i", ej - si - y * big_ji + z * big_ji <= big_ji)


def option_fields(options: SolveOptions, start: np.ndarray | None = None) -> dict[str, Any]:
    """Convert ``options`` to keyword arguments of :func:`gaplab.solvers.solve`.

    ``start`` replaces ``options.warm_start`` because a start only fits the model it was built
    for.
    """
    return {
        "time_limit": options.time_limit,
        "mip_rel_gap": options.mip_rel_gap,
        "threads": options.threads,
        "verbose": options.verbose,
        "seed": options.seed,
        "warm_start": start,
        "solver_options": dict(options.solver_options),
    }
