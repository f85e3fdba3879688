"""The cvxpy backend: ``cvxpy:HIGHS``, ``cvxpy:CLARABEL``, ``cvxpy:SCS`` and ``cvxpy:SCIP``.

Columns become two vector variables, one continuous and one ``integer=True``, and every row
family is one vectorized constraint ``A @ x <= u`` with the scipy sparse matrix. Convex terms
go in as DCP atoms (see :mod:`gaplab.solvers._cvxpy_convex`) on the solvers that take cones;
HiGHS and SCIP take them through tangent cuts like the other LP and MILP backends.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaplab.modeling.compiled import CompiledModel
from gaplab.solvers._backend_util import capture_stdout, solution_status_for, split_rows, tail
from gaplab.solvers._cvxpy_convex import convex_objective
from gaplab.solvers.base import Availability, Backend, Capability
from gaplab.solvers.result import Result, SolveOptions, Termination

logger = logging.getLogger(__name__)

_LP = frozenset({Capability.LP, Capability.DUALS})
SOLVER_CAPABILITIES: dict[str, frozenset[Capability]] = {
    "HIGHS": _LP | {Capability.MILP},
    "CLARABEL": _LP | {Capability.CONVEX},
    "SCS": _LP | {Capability.CONVEX},
    # NOTE: cvxpy's SCIP interface takes second-order cones but no exponential cone, so the
    # convex terms go through tangent cuts there.
    # NOTE: SCIP's LP duals through cvxpy disagreed with HiGHS on rows of adlittle where the
    # dual is unique, so cvxpy:SCIP does not report duals.
    "SCIP": frozenset({Capability.LP, Capability.MILP}),
}
"""Capabilities of each cvxpy solver; the first solver is the default of ``cvxpy``."""

SOLVERS = tuple(SOLVER_CAPABILITIES)

INSTALL_HINTS = {
    "HIGHS": "pip install highspy",
    "CLARABEL": "pip install clarabel",
    "SCS": "pip install scs",
    "SCIP": "pip install pyscipopt",
}

_STATUS = {
    "optimal": Termination.OPTIMAL,
    "infeasible": Termination.INFEASIBLE,
    "unbounded": Termination.UNBOUNDED,
    "infeasible_or_unbounded": Termination.INFEASIBLE_OR_UNBOUNDED,
    "user_limit": Termination.TIME_LIMIT,
    "solver_error": Termination.ERROR,
    # Inaccurate solutions keep their point but are never called optimal.
    "optimal_inaccurate": Termination.NUMERICAL_ERROR,
    "infeasible_inaccurate": Termination.NUMERICAL_ERROR,
    "unbounded_inaccurate": Termination.NUMERICAL_ERROR,
}


@dataclass
class CvxpyModel:
    """A cvxpy problem built from a CompiledModel, and the maps from its solution back to arrays."""

    problem: Any
    continuous: Any
    integer: Any
    continuous_columns: np.ndarray
    integer_columns: np.ndarray
    row_constraints: list[tuple[np.ndarray, Any, float]]
    """(row indices, cvxpy constraint, sign) triples; ``sign * dual_value`` is gaplab's dual."""

    def values(self, num_cols: int) -> np.ndarray | None:
        x = np.empty(num_cols)
        for variable, columns in (
            (self.continuous, self.continuous_columns),
            (self.integer, self.integer_columns),
        ):
            if columns.size == 0:
                continue
            if variable.value is None:
                return None
            x[columns] = np.asarray(variable.value, dtype=float).reshape(-1)
        return x


class CvxpyBackend(Backend):
    """cvxpy 1.x with one of the solvers it interfaces."""

    family = "cvxpy"

    def __init__(self, solver: str) -> None:
        name = solver.upper()
        if name not in SOLVER_CAPABILITIES:
            from gaplab.solvers.registry import UnknownBackendError

            raise UnknownBackendError(
                f"unknown cvxpy solver {solver!r}; expected one of {', '.join(SOLVERS)} "
                "(for example cvxpy:CLARABEL)"
            )
        self.solver = name
        self.capabilities = SOLVER_CAPABILITIES[name]

    def check_available(self) -> Availability:
        try:
            import cvxpy
        except ImportError:
            return Availability(False, "pip install cvxpy")
        if self.solver not in cvxpy.installed_solvers():
            return Availability(False, INSTALL_HINTS[self.solver])
        return Availability(True, f"cvxpy {cvxpy.__version__}")

    def _solve(self, model: CompiledModel, options: SolveOptions) -> Result:
        import cvxpy

        started = time.perf_counter()
        built = build_problem(model, with_convex=Capability.CONVEX in self.capabilities)
        build_seconds = time.perf_counter() - started

        kwargs = self._solver_kwargs(options)
        started = time.perf_counter()
        raw = ""
        error_message = ""
        with capture_stdout() as output, warnings.catch_warnings(), _quiet_cvxpy_logger():
            # cvxpy warns about inaccurate solutions, which the status mapping below reports.
            warnings.simplefilter("ignore", UserWarning)
            try:
                built.problem.solve(solver=self.solver, verbose=True, **kwargs)
                raw = str(built.problem.status)
            except cvxpy.error.SolverError as error:
                raw = "solver_error"
                error_message = f"cvxpy reported a solver error: {error}"
        solve_seconds = time.perf_counter() - started
        # cvxpy compiles the problem to the solver's arrays inside solve(); that is hand-over.
        compile_seconds = getattr(built.problem, "compilation_time", None)
        if isinstance(compile_seconds, float) and 0 <= compile_seconds <= solve_seconds:
            build_seconds += compile_seconds
            solve_seconds -= compile_seconds
        log_tail = tail(output.text)
        if options.verbose:
            for line in log_tail.splitlines():
                logger.info("cvxpy:%s: %s", self.solver, line)

        termination = _STATUS.get(raw, Termination.OTHER)
        x = built.values(model.num_cols) if termination != Termination.ERROR else None
        stats = _highs_info(built.problem) if self.solver == "HIGHS" else None
        if stats is not None and stats.primal_solution_status != 2:
            # cvxpy fills in values after a HiGHS time limit even when HiGHS found no point.
            x = None
        if self.solver == "SCIP":
            termination, x = _scip_outcome(built.problem, termination, x, options, solve_seconds)
            if termination == Termination.TIME_LIMIT:
                error_message = ""
        if termination in (Termination.INFEASIBLE, Termination.UNBOUNDED):
            x = None
        result = Result(
            model_name=model.name,
            backend=self.name,
            termination=termination,
            solution_status=solution_status_for(termination, x is not None),
            build_seconds=build_seconds,
            solve_seconds=solve_seconds,
            solver_version=_solver_version(self.solver),
            raw_status=raw,
            message=error_message,
            log_tail=log_tail,
            x=x,
        )
        if raw == "optimal_inaccurate":
            result.message = "the solver reported an inaccurate optimum"

        if x is not None and termination == Termination.OPTIMAL:
            if not model.is_mip:
                result.bound = model.objective_value(x)
                if Capability.DUALS in self.capabilities:
                    result.row_duals = _row_duals(model, built)
            elif stats is not None:
                result.bound = _highs_bound(model, x, stats)
            else:
                result.bound = model.objective_value(x)
        elif x is not None and stats is not None and model.is_mip:
            result.bound = _highs_bound(model, x, stats)
        return result

    def _solver_kwargs(self, options: SolveOptions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        limit = options.time_limit
        if self.solver == "HIGHS":
            kwargs["threads"] = int(options.threads)
            if limit is not None:
                kwargs["time_limit"] = float(limit)
            if options.mip_rel_gap is not None:
                kwargs["mip_rel_gap"] = float(options.mip_rel_gap)
            if options.seed is not None:
                kwargs["random_seed"] = int(options.seed)
        elif self.solver == "CLARABEL":
            if limit is not None:
                kwargs["time_limit"] = float(limit)
        elif self.solver == "SCS":
            if limit is not None:
                kwargs["time_limit_secs"] = float(limit)
            if options.seed is not None:
                kwargs["seed"] = int(options.seed)
        elif self.solver == "SCIP":
            params: dict[str, Any] = {"parallel/maxnthreads": int(options.threads)}
            if limit is not None:
                params["limits/time"] = float(limit)
            if options.mip_rel_gap is not None:
                params["limits/gap"] = float(options.mip_rel_gap)
            if options.seed is not None:
                params["randomization/randomseedshift"] = int(options.seed)
            kwargs["scip_params"] = params
        kwargs.update(options.solver_options)
        return kwargs


def build_problem(model: CompiledModel, *, with_convex: bool = True) -> CvxpyModel:
    """Build a ``cvxpy.Problem`` from the compiled arrays.

    Parameters
    ----------
    model
        The compiled model.
    with_convex
        Add the model's convex terms as DCP atoms; when false they are left out, for solvers
        that receive them as tangent cuts instead.
    """
    import cvxpy as cp

    integral = model.integrality.astype(bool)
    integer_columns = np.flatnonzero(integral)
    continuous_columns = np.flatnonzero(~integral)
    continuous = _variable(model, continuous_columns, integer=False)
    integer = _variable(model, integer_columns, integer=True)

    def times(matrix: Any) -> Any:
        """``matrix @ x`` over both variable vectors; ``matrix`` is scipy sparse."""
        # A model with one kind of column needs no column slicing, which copies the matrix.
        if integer_columns.size == 0:
            return matrix @ continuous
        if continuous_columns.size == 0:
            return matrix @ integer
        csc = matrix.tocsc()
        parts = []
        if continuous_columns.size:
            parts.append(csc[:, continuous_columns] @ continuous)
        if integer_columns.size:
            parts.append(csc[:, integer_columns] @ integer)
        if not parts:
            return cp.Constant(np.zeros(matrix.shape[0]))
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    split = split_rows(model)
    constraints = []
    row_constraints: list[tuple[np.ndarray, Any, float]] = []
    # cvxpy's dual of ``expr <= b`` or ``expr == b`` is the multiplier y in ``f + y (expr - b)``
    # (y >= 0 for inequalities), so the objective falls by y per unit of b. For ``expr >= b``
    # it rises by y. The sign turns each into d objective / d bound.
    for rows, bounds, sense in (
        (split.equal, model.row_lower, "=="),
        (split.lower, model.row_lower, ">="),
        (split.upper, model.row_upper, "<="),
    ):
        if rows.size == 0:
            continue
        activity = times(model.A[rows])
        if sense == "==":
            constraint = activity == bounds[rows]
            sign = -1.0
        elif sense == ">=":
            constraint = activity >= bounds[rows]
            sign = 1.0
        else:
            constraint = activity <= bounds[rows]
            sign = -1.0
        constraints.append(constraint)
        row_constraints.append((rows, constraint, sign))

    c = model.objective
    objective = float(model.offset)
    if continuous_columns.size:
        objective = objective + c[continuous_columns] @ continuous
    if integer_columns.size:
        objective = objective + c[integer_columns] @ integer
    if with_convex and model.convex:
        convex_value, domain = convex_objective(model, times)
        objective = objective + convex_value
        constraints.extend(domain)
    goal = cp.Maximize(objective) if model.sense == "max" else cp.Minimize(objective)
    problem = cp.Problem(goal, constraints)
    return CvxpyModel(
        problem,
        continuous,
        integer,
        continuous_columns,
        integer_columns,
        row_constraints,
    )


@contextlib.contextmanager
def _quiet_cvxpy_logger() -> Iterator[None]:
    """Keep cvxpy's own progress lines out of the log; ``verbose`` still turns on the solver's."""
    cvxpy_logger = logging.getLogger("__cvxpy__")
    level = cvxpy_logger.level
    cvxpy_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        cvxpy_logger.setLevel(level)


def _variable(model: CompiledModel, columns: np.ndarray, *, integer: bool) -> Any:
    import cvxpy as cp

    if columns.size == 0:
        return None
    return cp.Variable(
        columns.size,
        integer=integer,
        bounds=[model.col_lower[columns], model.col_upper[columns]],
    )


def _row_duals(model: CompiledModel, built: CvxpyModel) -> np.ndarray | None:
    duals = np.zeros(model.num_rows)
    for rows, constraint, sign in built.row_constraints:
        value = constraint.dual_value
        if value is None:
            return None
        # A ranged row has a lower and an upper part, and at most one of them is active.
        duals[rows] += sign * np.asarray(value, dtype=float).reshape(-1)
    if model.sense == "max":
        duals = -duals
    return duals


_SCIP_STATUS = {
    "optimal": Termination.OPTIMAL,
    "gaplimit": Termination.OPTIMAL,
    "timelimit": Termination.TIME_LIMIT,
    "nodelimit": Termination.ITERATION_LIMIT,
    "totalnodelimit": Termination.ITERATION_LIMIT,
    "stallnodelimit": Termination.ITERATION_LIMIT,
    "sollimit": Termination.SOLUTION_LIMIT,
    "bestsollimit": Termination.SOLUTION_LIMIT,
    "infeasible": Termination.INFEASIBLE,
    "unbounded": Termination.UNBOUNDED,
    "inforunbd": Termination.INFEASIBLE_OR_UNBOUNDED,
    "userinterrupt": Termination.INTERRUPTED,
    "memlimit": Termination.ERROR,
}


def _scip_outcome(
    problem: Any,
    termination: Termination,
    x: np.ndarray | None,
    options: SolveOptions,
    solve_seconds: float,
) -> tuple[Termination, np.ndarray | None]:
    """Read SCIP's own status, because cvxpy reports a SCIP time limit as an inaccurate optimum
    when there is an incumbent and as a solver error when there is none."""
    stats = getattr(getattr(problem, "solver_stats", None), "extra_stats", None)
    if isinstance(stats, dict) and "scip_status" in stats:
        termination = _SCIP_STATUS.get(str(stats["scip_status"]), termination)
        scip_model = stats.get("model")
        if scip_model is not None and scip_model.getNSols() == 0:
            x = None
        return termination, x
    limit = options.time_limit
    if termination == Termination.ERROR and limit is not None and solve_seconds >= 0.95 * limit:
        # NOTE: cvxpy 1.9 keeps no SCIP status after a solver error, so a run that used up
        # its time limit is taken to have stopped on it.
        return Termination.TIME_LIMIT, None
    return termination, x


def _highs_info(problem: Any) -> Any:
    stats = getattr(problem, "solver_stats", None)
    info = getattr(stats, "extra_stats", None)
    return info if hasattr(info, "primal_solution_status") else None


def _highs_bound(model: CompiledModel, x: np.ndarray, info: Any) -> float | None:
    """Dual bound in gaplab's objective, from the gap HiGHS reports in its own objective."""
    internal_gap = float(info.objective_function_value) - float(info.mip_dual_bound)
    if not np.isfinite(internal_gap):
        return None
    # cvxpy hands HiGHS a minimization in any case, so the internal gap is never negative.
    internal_gap = abs(internal_gap)
    value = model.objective_value(x)
    return value - internal_gap if model.sense == "min" else value + internal_gap


def _solver_version(solver: str) -> str:
    from importlib import metadata

    import cvxpy

    package = {"HIGHS": "highspy", "CLARABEL": "clarabel", "SCS": "scs", "SCIP": "pyscipopt"}
    try:
        version = metadata.version(package[solver])
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{solver} {version} (cvxpy {cvxpy.__version__})"


def register() -> None:
    """Register the ``cvxpy`` family with the backend registry."""
    from gaplab.solvers.registry import register_family

    register_family("cvxpy", CvxpyBackend, SOLVERS)
