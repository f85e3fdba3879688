"""Solve options and the Result that every backend returns."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from gaplab.modeling.compiled import CompiledModel


class Termination(StrEnum):
    """Reason the solver stopped, in MathOptInterface's vocabulary."""

    OPTIMAL = "optimal"
    """A globally optimal point was found, within the requested gap."""
    LOCALLY_SOLVED = "locally_solved"
    """A point satisfying local optimality conditions was found."""
    INFEASIBLE = "infeasible"
    """The solver proved that no feasible point exists."""
    UNBOUNDED = "unbounded"
    """The solver proved that the objective is unbounded on the feasible set."""
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    """The solver proved one of the two but did not say which."""
    TIME_LIMIT = "time_limit"
    """The wall-clock limit ran out before optimality was proved."""
    ITERATION_LIMIT = "iteration_limit"
    """An iteration or node limit ran out before optimality was proved."""
    OBJECTIVE_LIMIT = "objective_limit"
    """The objective passed a user-supplied limit."""
    SOLUTION_LIMIT = "solution_limit"
    """The solver found the requested number of solutions."""
    INTERRUPTED = "interrupted"
    """The solve was stopped by a signal or a callback."""
    NUMERICAL_ERROR = "numerical_error"
    """The solver stopped because of numerical difficulties."""
    ERROR = "error"
    """The solver or its library failed; the message is in ``Result.message``."""
    OTHER = "other"
    """Any reason the backend could not map."""


class SolutionStatus(StrEnum):
    """Kind of primal point the solver returned."""

    FEASIBLE_POINT = "feasible_point"
    """A point that satisfies the model within the solver's tolerances."""
    INFEASIBLE_POINT = "infeasible_point"
    """A point was returned but it violates the model."""
    NO_SOLUTION = "no_solution"
    """No point was returned; values are ``None``."""
    UNKNOWN = "unknown"
    """A point was returned but the solver did not say whether it is feasible."""


SUCCESS = frozenset({Termination.OPTIMAL, Termination.LOCALLY_SOLVED})
LIMITS = frozenset(
    {
        Termination.TIME_LIMIT,
        Termination.ITERATION_LIMIT,
        Termination.OBJECTIVE_LIMIT,
        Termination.SOLUTION_LIMIT,
        Termination.INTERRUPTED,
    }
)


@dataclass(frozen=True)
class SolveOptions:
    """Options with the same meaning on every backend.

    Parameters
    ----------
    time_limit
        Wall-clock limit in seconds, or ``None`` for no limit.
    mip_rel_gap
        Relative MIP gap at which the solver may stop, or ``None`` for the solver's default.
    threads
        Solver threads. The default of 1 keeps parallel sweeps from oversubscribing cores.
    verbose
        Stream the solver log to the ``gaplab.solvers`` logger at INFO level.
    seed
        Random seed handed to the solver, or ``None`` for the solver's default.
    convex_tolerance
        Target for the outer approximation of convex terms on LP and MILP backends: cuts are
        added until the true objective and the bound differ by at most this, relative.
    warm_start
        A starting point with one value per column (see
        :meth:`gaplab.modeling.CompiledModel.column_vector`), handed to MIP solvers that take
        one. Backends without MIP starts ignore it.
    solver_options
        Passed to the solver unchanged, after gaplab's own options.
    """

    time_limit: float | None = None
    mip_rel_gap: float | None = None
    threads: int = 1
    verbose: bool = False
    seed: int | None = None
    convex_tolerance: float = 1e-6
    warm_start: np.ndarray | None = field(default=None, repr=False)
    solver_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time_limit is not None and not (self.time_limit > 0):
            raise ValueError(
                f"time_limit must be a positive number of seconds, got {self.time_limit!r}"
            )
        if self.mip_rel_gap is not None and not (self.mip_rel_gap >= 0):
            raise ValueError(f"mip_rel_gap must be zero or positive, got {self.mip_rel_gap!r}")
        if int(self.threads) != self.threads or self.threads < 1:
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")
        if self.warm_start is not None:
            start = np.asarray(self.warm_start, dtype=float)
            if start.ndim != 1 or not np.all(np.isfinite(start)):
                raise ValueError(
                    "warm_start must be a one-dimensional array of finite column values, got "
                    f"shape {start.shape}"
                )
        if not (self.convex_tolerance > 0):
            raise ValueError(f"convex_tolerance must be positive, got {self.convex_tolerance!r}")


class SolveError(RuntimeError):
    """Raised by :meth:`Result.raise_for_status`; ``result`` is the whole Result."""

    def __init__(self, result: Result) -> None:
        self.result = result
        detail = f": {result.message}" if result.message else ""
        super().__init__(
            f"solve of {result.model_name!r} with {result.backend!r} ended with termination "
            f"{result.termination.value!r} and solution status "
            f"{result.solution_status.value!r}{detail}"
        )


@dataclass
class Result:
    """Everything a backend reports about one solve, keyed by the model's labels.

    ``termination`` gives the reason the solver stopped and ``solution_status`` the kind of point
    it returned. The two are independent, because a time limit may come with or without an
    incumbent. Values and duals are ``None`` when there is no point, never zeros.
    """

    model_name: str
    backend: str
    termination: Termination
    solution_status: SolutionStatus
    objective: float | None = None
    """Objective at the returned point, including the offset and the true convex terms."""
    bound: float | None = None
    """Dual bound: no feasible point is better than this."""
    build_seconds: float = 0.0
    """Time to hand the compiled arrays to the solver library."""
    solve_seconds: float = 0.0
    """Time spent in the solver call."""
    solver_version: str = ""
    raw_status: str = ""
    """The solver's own status text, unmapped."""
    message: str = ""
    """Error text when ``termination`` is ``error``; otherwise empty."""
    log_tail: str = ""
    """The last lines of the solver log."""
    x: np.ndarray | None = None
    """Primal values by column, or ``None``."""
    row_duals: np.ndarray | None = None
    """Duals of the linear rows (LP only), or ``None``."""
    max_violation: float | None = None
    """Largest violation of a bound, row or integrality at ``x``, recomputed by gaplab."""
    approximation_gap: float | None = None
    """True objective at ``x`` minus the bound of the tangent-cut model, when one was used."""
    iis: dict[str, list[Any]] | None = None
    """Irreducible infeasible subset: constraint family name to the labels of its rows."""
    compiled: CompiledModel | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ derived values

    @property
    def gap(self) -> float | None:
        """Relative gap ``|objective - bound| / |objective|``, as MIP solvers report it.

        Zero when the two agree to 1e-9; ``None`` without both values.
        """
        if self.objective is None or self.bound is None:
            return None
        if not (math.isfinite(self.objective) and math.isfinite(self.bound)):
            return None
        difference = abs(self.objective - self.bound)
        if difference <= 1e-9:
            return 0.0
        return difference / max(abs(self.objective), 1e-9)

    @property
    def has_values(self) -> bool:
        return self.x is not None

    @property
    def is_optimal(self) -> bool:
        return (
            self.termination in SUCCESS
            and self.has_values
            and self.solution_status == SolutionStatus.FEASIBLE_POINT
        )

    def value(self, variable: Any) -> pd.Series | float | None:
        """Return the values of one variable block as a Series keyed by its labels.

        ``variable`` is a block name or a :class:`~gaplab.modeling.Variable`. A block without
        index sets returns a float. Returns ``None`` when the solve produced no point.
        """
        if self.x is None:
            return None
        block = self._compiled().variable_block(variable)
        values = self.x[block.start : block.stop]
        if block.scalar:
            return float(values[0])
        return pd.Series(values, index=block.labels, name=block.name)

    @property
    def values(self) -> dict[str, pd.Series | float] | None:
        """Values of every variable block by name, or ``None`` when there is no point."""
        if self.x is None:
            return None
        out: dict[str, pd.Series | float] = {}
        for block in self._compiled().variables:
            value = self.value(block.name)
            assert value is not None
            out[block.name] = value
        return out

    def dual(self, family: Any) -> pd.Series | float | None:
        """Return the duals of one constraint family keyed by its labels, or ``None``.

        Sign convention: the dual is the rate of change of the optimal objective per unit
        increase of the row's bound (the same sign as HiGHS' row duals for minimization).
        """
        if self.row_duals is None:
            return None
        block = self._compiled().constraint_block(family)
        values = self.row_duals[block.start : block.stop]
        if block.scalar:
            return float(values[0])
        return pd.Series(values, index=block.labels, name=block.name)

    def raise_for_status(self) -> Result:
        """Raise :class:`SolveError` unless the solve proved optimality with a point."""
        if not self.is_optimal:
            raise SolveError(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Summary fields as plain JSON-ready values."""
        return {
            "model": self.model_name,
            "backend": self.backend,
            "termination": self.termination.value,
            "solution_status": self.solution_status.value,
            "objective": _finite_or_none(self.objective),
            "bound": _finite_or_none(self.bound),
            "gap": _finite_or_none(self.gap),
            "approximation_gap": _finite_or_none(self.approximation_gap),
            "max_violation": _finite_or_none(self.max_violation),
            "build_seconds": self.build_seconds,
            "solve_seconds": self.solve_seconds,
            "solver_version": self.solver_version,
            "raw_status": self.raw_status,
            "message": self.message,
        }

    def _compiled(self) -> CompiledModel:
        if self.compiled is None:
            raise ValueError("this Result carries no CompiledModel, so it has no label maps")
        return self.compiled

    # ------------------------------------------------------------------ display

    def _summary_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("model", self.model_name),
            ("backend", f"{self.backend} {self.solver_version}".strip()),
            ("termination", self.termination.value),
            ("solution status", self.solution_status.value),
            ("objective", _fmt(self.objective)),
            ("bound", _fmt(self.bound)),
            ("gap", _fmt(self.gap)),
            ("max violation", _fmt(self.max_violation)),
            ("build / solve s", f"{self.build_seconds:.3f} / {self.solve_seconds:.3f}"),
        ]
        if self.approximation_gap is not None:
            rows.append(("approximation gap", _fmt(self.approximation_gap)))
        if self.raw_status:
            rows.append(("raw status", self.raw_status))
        if self.message:
            rows.append(("message", self.message))
        if self.iis:
            rows.append(("iis", ", ".join(f"{k}{v}" for k, v in self.iis.items())))
        return rows

    def __repr__(self) -> str:
        rows = self._summary_rows()
        width = max(len(name) for name, _ in rows)
        body = "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)
        return f"Result(\n{body}\n)"

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in self._summary_rows()
        )
        return f"<table><caption>gaplab Result</caption>{cells}</table>"


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _fmt(value: float | None) -> str:
    if value is None:
        return "missing"
    return f"{value:.10g}"
