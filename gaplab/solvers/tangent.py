"""Outer approximation of separable convex terms by tangent cuts, for LP and MILP backends.

Each weighted element ``w_e * f(u_e)`` of a convex term, with ``u_e = A_e @ x + b_e``, gets an
epigraph column ``t_e`` and the objective takes ``w_e * t_e`` in its place. Since ``f`` is
convex, every tangent ``t_e >= f(p) + f'(p) * (u_e - p)`` is valid, so the cut model (the
master) is a relaxation and its optimum bounds the true optimum. The master starts with
tangents spread over each argument's range. Each round then adds the tangent at the current
point of every element whose ``t_e`` falls short of ``f(u_e)``. The rounds stop when the true
objective at the master's point and the master's bound differ by at most ``convex_tolerance``,
relative.
Piecewise-linear terms are exact from the first round: each of their pieces is a cut.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gaplab.modeling.compiled import Block, CompiledModel
from gaplab.modeling.convex import ConvexTerm
from gaplab.solvers._convex_domain import argument_ranges, check_domains
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination

if TYPE_CHECKING:
    from gaplab.solvers.base import Backend

logger = logging.getLogger(__name__)

MM1_LOAD_CAP = 1.0 - 1e-6
"""Largest load the master allows an M/M/1 term, as a fraction of its capacity.

The term is infinite at capacity, so the master needs a finite cap. A model whose best point
loads a queue above this fraction is solved as if that load were not allowed."""

EXP_ARGUMENT_CAP = 50.0
"""Largest argument the master allows an ``exp`` term (e^50 is about 5e21).

NOTE: a model whose optimum needs a larger argument is solved as if it were not allowed."""

BOX_FACTOR = 1e3
"""An argument without finite bounds is boxed to this many times the model's scale, and the box
grows by ``BOX_GROWTH`` whenever the returned point touches it."""

BOX_GROWTH = 100.0
MAX_BOX = 1e12
"""A point still on a box of this half-width means the model is unbounded."""

MAX_ROUNDS = 200
"""Rounds of cuts before the approximation stops with ``iteration_limit``."""

_MM1_FRACTIONS = np.array([0.0, 0.5, 0.8, 0.9, 0.95, 0.99])
_SPREAD_FRACTIONS = np.linspace(0.0, 1.0, 5)

__all__ = ["check_domains", "solve_with_cuts"]


@dataclass
class _Elements:
    """Every weighted element of the model's convex terms, stacked."""

    terms: list[tuple[ConvexTerm, np.ndarray]]
    """Each term with the indices of its kept elements inside the term."""
    A: sp.csr_matrix
    b: np.ndarray
    weight: np.ndarray
    lower: np.ndarray
    """Lower limit of each argument in the master (domain, bounds or box)."""
    upper: np.ndarray
    boxed_lower: np.ndarray
    """Whether ``lower`` is an artificial box side, not a limit of the model."""
    boxed_upper: np.ndarray

    @property
    def size(self) -> int:
        return int(self.b.size)

    def evaluate(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-element ``f(u)`` and ``f'(u)``."""
        values = np.empty_like(u)
        slopes = np.empty_like(u)
        start = 0
        for term, kept in self.terms:
            stop = start + kept.size
            full = np.zeros(term.size)
            full[kept] = u[start:stop]
            values[start:stop] = term.evaluate(full)[kept]
            slopes[start:stop] = term.derivative(full)[kept]
            start = stop
        return values, slopes


@dataclass
class _Cuts:
    element: list[np.ndarray] = dataclasses.field(default_factory=list)
    slope: list[np.ndarray] = dataclasses.field(default_factory=list)
    rhs: list[np.ndarray] = dataclasses.field(default_factory=list)
    """Right-hand side of ``t_e - slope * A_e x >= rhs``."""
    points: dict[int, list[float]] = dataclasses.field(default_factory=dict)
    """Tangent points so far, by element, so that no tangent is added twice."""

    def add(
        self, element: np.ndarray, slope: np.ndarray, intercept: np.ndarray, b: np.ndarray
    ) -> None:
        """Add ``t_e >= slope * u_e + intercept`` for each listed element."""
        self.element.append(element)
        self.slope.append(slope)
        self.rhs.append(intercept + slope * b[element])

    def is_new(self, element: int, point: float) -> bool:
        """Record ``point`` for ``element`` and return true, unless a tangent touches there."""
        known = self.points.setdefault(element, [])
        tolerance = 1e-9 * max(1.0, abs(point))
        if any(abs(point - other) <= tolerance for other in known):
            return False
        known.append(point)
        return True

    def count(self) -> int:
        return sum(e.size for e in self.element)


def solve_with_cuts(backend: Backend, model: CompiledModel, options: SolveOptions) -> Result:
    """Solve ``model``, whose objective has convex terms, with an LP or MILP ``backend``.

    Parameters
    ----------
    backend
        A backend whose ``_solve`` takes linear models.
    model
        The model with its convex terms.
    options
        ``convex_tolerance`` is the relative gap between the true objective at the returned
        point and the bound at which the cuts stop; ``time_limit`` covers all rounds.

    Returns
    -------
    Result
        The point with the best true objective found, the best bound of the cut models, and
        ``approximation_gap``, the absolute difference of the two. Row duals of an LP come
        from the cut model that produced the point.

    Notes
    -----
    The duals converge more slowly than the objective: on three M/M/1 queues solved to a
    relative gap of 1e-6, the dual of the shared arrival row was 4e-4 below the true one.
    """
    check_domains(model)
    started = time.perf_counter()
    elements = _stack_elements(model)
    cuts = _initial_cuts(elements)
    sub_options = options
    if options.mip_rel_gap is None and model.is_mip:
        sub_options = dataclasses.replace(options, mip_rel_gap=options.convex_tolerance / 10)

    best_x: np.ndarray | None = None
    best_true = np.inf if model.sense == "min" else -np.inf
    best_bound: float | None = None
    best_duals: np.ndarray | None = None
    last: Result | None = None
    build_seconds = 0.0
    solve_seconds = 0.0
    termination = Termination.ITERATION_LIMIT
    message = ""
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        remaining = None
        if options.time_limit is not None:
            remaining = options.time_limit - (time.perf_counter() - started)
            if remaining <= 0:
                termination = Termination.TIME_LIMIT
                break
        master = _master(model, elements, cuts)
        last = backend._solve(master, dataclasses.replace(sub_options, time_limit=remaining))
        build_seconds += last.build_seconds
        solve_seconds += last.solve_seconds
        if last.x is None:
            termination = last.termination
            break

        x = np.asarray(last.x[: model.num_cols], dtype=float)
        t = np.asarray(last.x[model.num_cols :], dtype=float)
        true_value = model.objective_value(x)
        if _better(model.sense, true_value, best_true):
            best_true, best_x = true_value, x
            best_duals = None if last.row_duals is None else last.row_duals[: model.num_rows]
        if last.bound is not None and (
            best_bound is None or _better(model.sense, best_bound, last.bound)
        ):
            best_bound = float(last.bound)
        if last.termination != Termination.OPTIMAL:
            termination = last.termination
            break

        u = np.asarray(elements.A @ x + elements.b, dtype=float)
        on_box = _on_box(elements, u)
        gap = _relative_gap(best_true, best_bound)
        if gap is not None and gap <= options.convex_tolerance and not on_box.any():
            termination = Termination.OPTIMAL
            break
        if on_box.any():
            if not _grow_box(elements, on_box):
                termination = Termination.UNBOUNDED
                message = "a convex term's argument grows without limit: the model is unbounded"
                best_x = None
                break
            best_bound = None  # bounds under the old box are not bounds of the model
        # Shortfalls this small could not move the gap past the tolerance even added up.
        threshold = 1e-2 * options.convex_tolerance * max(1.0, abs(best_true)) / elements.size
        added = _add_violated_cuts(elements, cuts, u, t, threshold)
        if added == 0 and not on_box.any():
            termination = Termination.NUMERICAL_ERROR
            message = (
                f"the tangent cuts stalled at a relative gap of {gap:.3g}, above the "
                f"convex_tolerance of {options.convex_tolerance:g}: the solver's own "
                "tolerances (feasibility, MIP gap) keep the cut model from closing it. Loosen "
                "convex_tolerance or tighten the solver's tolerances"
            )
            break

    logger.info(
        "tangent cuts for %s on %s: %d rounds, %d cuts, termination %s",
        model.name,
        backend.name,
        rounds,
        cuts.count(),
        termination.value,
    )
    return _result(
        backend,
        model,
        last,
        termination,
        message,
        best_x,
        best_bound,
        best_duals,
        build_seconds,
        solve_seconds,
        rounds,
        cuts.count(),
    )


def _result(
    backend: Backend,
    model: CompiledModel,
    last: Result | None,
    termination: Termination,
    message: str,
    x: np.ndarray | None,
    bound: float | None,
    duals: np.ndarray | None,
    build_seconds: float,
    solve_seconds: float,
    rounds: int,
    cut_count: int,
) -> Result:
    if termination in (Termination.INFEASIBLE, Termination.UNBOUNDED):
        x = None
    has_point = x is not None
    result = Result(
        model_name=model.name,
        backend=backend.name,
        termination=termination,
        solution_status=SolutionStatus.FEASIBLE_POINT if has_point else SolutionStatus.NO_SOLUTION,
        bound=bound,
        build_seconds=build_seconds,
        solve_seconds=solve_seconds,
        solver_version=last.solver_version if last else "",
        raw_status=last.raw_status if last else "",
        message=message or (last.message if last else ""),
        log_tail=(last.log_tail if last else "")
        + f"\ntangent cuts: {rounds} rounds, {cut_count} cuts",
        x=x,
        row_duals=duals if has_point and not model.is_mip else None,
        iis=last.iis if last and termination == Termination.INFEASIBLE else None,
    )
    if x is not None and bound is not None:
        result.approximation_gap = abs(model.objective_value(x) - bound)
    return result


def _better(sense: str, candidate: float, incumbent: float) -> bool:
    return candidate < incumbent if sense == "min" else candidate > incumbent


def _relative_gap(true_value: float, bound: float | None) -> float | None:
    if bound is None or not np.isfinite(true_value):
        return None
    return abs(true_value - bound) / max(1.0, abs(true_value))


def _stack_elements(model: CompiledModel) -> _Elements:
    """Collect the elements with a nonzero weight and the master's limits on their arguments."""
    terms = []
    matrices, offsets, weights, lowers, uppers = [], [], [], [], []
    ranges = argument_ranges(model)
    for term, (range_lower, range_upper) in zip(model.convex, ranges, strict=True):
        kept = np.flatnonzero(term.weight != 0)
        if kept.size == 0:
            continue
        terms.append((term, kept))
        matrices.append(term.A[kept])
        offsets.append(term.b[kept])
        weights.append(term.weight[kept])
        domain_lower, domain_upper = term.domain_bounds()
        if term.kind == "mm1":
            domain_upper = domain_upper * MM1_LOAD_CAP
        if term.kind == "exp":
            domain_upper = np.minimum(domain_upper, EXP_ARGUMENT_CAP)
        lowers.append(np.maximum(domain_lower, range_lower)[kept])
        uppers.append(np.minimum(domain_upper, range_upper)[kept])

    num_cols = model.num_cols
    A = sp.vstack(matrices, format="csr") if matrices else sp.csr_matrix((0, num_cols))
    lower = np.concatenate(lowers) if lowers else np.zeros(0)
    upper = np.concatenate(uppers) if uppers else np.zeros(0)
    b = np.concatenate(offsets) if offsets else np.zeros(0)
    finite = np.concatenate([lower[np.isfinite(lower)], upper[np.isfinite(upper)], b, [1.0]])
    half_width = BOX_FACTOR * float(np.max(np.abs(finite)))
    boxed_lower = ~np.isfinite(lower)
    boxed_upper = ~np.isfinite(upper)
    lower = np.where(boxed_lower, -half_width, lower)
    upper = np.where(boxed_upper, half_width, upper)
    return _Elements(
        terms,
        A,
        b,
        np.concatenate(weights) if weights else np.zeros(0),
        lower,
        upper,
        boxed_lower,
        boxed_upper,
    )


def _initial_cuts(elements: _Elements) -> _Cuts:
    """Tangents spread over each argument's range, and every piece of piecewise-linear terms."""
    cuts = _Cuts()
    start = 0
    for term, kept in elements.terms:
        stop = start + kept.size
        index = np.arange(start, stop)
        if term.kind == "pwl":
            slopes = term.params["slopes"][kept]
            intercepts = term.params["intercepts"][kept]
            for piece in range(slopes.shape[1]):
                cuts.add(index, slopes[:, piece], intercepts[:, piece], elements.b)
        else:
            fractions = _MM1_FRACTIONS if term.kind == "mm1" else _SPREAD_FRACTIONS
            lower, upper = elements.lower[index], elements.upper[index]
            if term.kind == "exp":
                # Tangents far right of the optimum add nothing but huge coefficients.
                upper = np.minimum(upper, np.maximum(lower, 0.0) + 10.0)
            for fraction in fractions:
                points = lower + fraction * (upper - lower)
                _add_tangents(elements, cuts, index, points)
        start = stop
    return cuts


def _add_tangents(elements: _Elements, cuts: _Cuts, index: np.ndarray, points: np.ndarray) -> None:
    u = np.zeros(elements.size)
    u[index] = points
    values, slopes = elements.evaluate(u)
    intercepts = values[index] - slopes[index] * points
    cuts.add(index, slopes[index], intercepts, elements.b)


def _add_violated_cuts(
    elements: _Elements, cuts: _Cuts, u: np.ndarray, t: np.ndarray, threshold: float
) -> int:
    """Add the tangent at ``u_e`` for every element whose weighted shortfall
    ``|w_e| * (f(u_e) - t_e)`` exceeds ``threshold``, unless that tangent is already there."""
    points = np.clip(u, elements.lower, elements.upper)
    values, _ = elements.evaluate(points)
    shortfall = np.abs(elements.weight) * (values - t)
    candidates = np.flatnonzero(shortfall > threshold)
    violated = np.array(
        [e for e in candidates.tolist() if cuts.is_new(e, float(points[e]))], dtype=int
    )
    if violated.size:
        _add_tangents(elements, cuts, violated, points[violated])
    return int(violated.size)


def _on_box(elements: _Elements, u: np.ndarray) -> np.ndarray:
    """Elements whose argument lies on an artificial box side."""
    width = np.maximum(1.0, np.abs(elements.upper - elements.lower))
    tolerance = 1e-7 * width
    low = elements.boxed_lower & (u <= elements.lower + tolerance)
    high = elements.boxed_upper & (u >= elements.upper - tolerance)
    return low | high


def _grow_box(elements: _Elements, on_box: np.ndarray) -> bool:
    """Widen the box sides that ``on_box`` touches; false when they are already at the limit."""
    grown = False
    for side, boxed, sign in (
        (elements.lower, elements.boxed_lower, -1.0),
        (elements.upper, elements.boxed_upper, 1.0),
    ):
        touched = on_box & boxed
        if not touched.any():
            continue
        current = np.abs(side[touched])
        if np.all(current >= MAX_BOX):
            continue
        side[touched] = sign * np.minimum(current * BOX_GROWTH, MAX_BOX)
        grown = True
    return grown


def _master(model: CompiledModel, elements: _Elements, cuts: _Cuts) -> CompiledModel:
    """Build the linear master: epigraph columns, argument limits and the cuts so far."""
    n, count = model.num_cols, elements.size
    identity = sp.identity(count, format="csr")
    element = np.concatenate(cuts.element) if cuts.element else np.zeros(0, dtype=int)
    slope = np.concatenate(cuts.slope) if cuts.slope else np.zeros(0)
    rhs = np.concatenate(cuts.rhs) if cuts.rhs else np.zeros(0)
    cut_x = sp.diags(-slope) @ elements.A[element]
    cut_t = identity[element]

    A = sp.vstack(
        [
            sp.hstack([model.A, sp.csr_matrix((model.num_rows, count))]),
            sp.hstack([elements.A, sp.csr_matrix((count, count))]),
            sp.hstack([cut_x, cut_t]),
        ],
        format="csr",
    )
    row_lower = np.concatenate([model.row_lower, elements.lower - elements.b, rhs])
    row_upper = np.concatenate(
        [model.row_upper, elements.upper - elements.b, np.full(rhs.size, np.inf)]
    )
    return CompiledModel(
        name=f"{model.name}-cuts",
        sense=model.sense,
        A=A,
        row_lower=row_lower,
        row_upper=row_upper,
        col_lower=np.concatenate([model.col_lower, np.full(count, -np.inf)]),
        col_upper=np.concatenate([model.col_upper, np.full(count, np.inf)]),
        integrality=np.concatenate([model.integrality, np.zeros(count, dtype=np.int8)]),
        objective=np.concatenate([model.objective, elements.weight]),
        offset=model.offset,
        variables=_blocks(model.variables, n, [("convex_epigraph", count)], "continuous"),
        constraints=_blocks(
            model.constraints,
            model.num_rows,
            [("convex_argument_limits", count), ("tangent_cuts", rhs.size)],
            "linear",
        ),
    )


def _blocks(
    original: tuple[Block, ...], size: int, added: list[tuple[str, int]], kind: str
) -> tuple[Block, ...]:
    """Append the master's blocks to the model's, so that labels and the IIS still work."""
    covered = sum(block.size for block in original) == size
    blocks = list(original) if covered else [Block("model", 0, size, pd.RangeIndex(size), kind)]
    start = size
    for name, count in added:
        blocks.append(Block(name, start, start + count, pd.RangeIndex(count), kind))
        start += count
    return tuple(blocks)
