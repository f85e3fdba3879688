"""The backend contract: what a backend accepts, how it solves, and how results come back."""

from __future__ import annotations

import logging
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from gaplab.modeling.compiled import CompiledModel
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination

logger = logging.getLogger(__name__)

FEASIBILITY_TOLERANCE = 1e-5
"""Largest violation, relative to max(1, largest finite bound), accepted from a solver's point."""


class Capability(StrEnum):
    """What a backend can take."""

    LP = "lp"
    """Continuous linear programs."""
    MILP = "milp"
    """Integer and binary variables."""
    CONVEX = "convex"
    """Separable convex objective terms in native form."""
    DUALS = "duals"
    """Row duals of linear programs."""


class UnsupportedModelError(ValueError):
    """The backend lacks a capability the model needs."""


class BackendUnavailableError(RuntimeError):
    """The backend's library or solver is not installed."""


@dataclass(frozen=True)
class Availability:
    available: bool
    detail: str
    """Version when available; what to install when not."""


class Backend(ABC):
    """A solver backend: accepts a CompiledModel, solves it, maps the answer back.

    Subclasses set ``family``, ``solver`` and ``capabilities`` and implement
    :meth:`check_available` and :meth:`_solve`. :meth:`solve` adds what every backend shares:
    capability checks, the tangent-cut path for convex terms on LP and MILP solvers, fault
    containment, and the violation check of the returned point.
    """

    family: str = ""
    solver: str = ""
    capabilities: frozenset[Capability] = frozenset()

    @property
    def name(self) -> str:
        return self.family if not self.solver else f"{self.family}:{self.solver}"

    @abstractmethod
    def check_available(self) -> Availability:
        """Whether the library and solver can be used here, with a version or install hint."""

    @abstractmethod
    def _solve(self, model: CompiledModel, options: SolveOptions) -> Result:
        """Solve a model without convex terms, or with them natively if CONVEX is declared."""

    def missing_capabilities(self, model: CompiledModel) -> list[Capability]:
        needed = [Capability.LP]
        if model.is_mip:
            needed.append(Capability.MILP)
        # Convex terms need no capability of their own: LP and MILP backends take them
        # through tangent cuts.
        return [c for c in needed if c not in self.capabilities]

    def solve(self, model: CompiledModel, options: SolveOptions | None = None) -> Result:
        """Solve ``model``; solver faults come back as a Result with termination ``error``."""
        from gaplab.solvers.registry import backends_with

        options = options or SolveOptions()
        missing = self.missing_capabilities(model)
        if missing:
            names = ", ".join(m.value for m in missing)
            able = ", ".join(backends_with(*missing)) or "none installed"
            raise UnsupportedModelError(
                f"backend {self.name!r} cannot take model {model.name!r}: it lacks {names}. "
                f"Backends that can: {able}"
            )
        availability = self.check_available()
        if not availability.available:
            raise BackendUnavailableError(
                f"backend {self.name!r} is not available: {availability.detail}"
            )
        if model.has_convex:
            # Invalid convex data is the caller's error, so it is raised, not contained.
            from gaplab.solvers._convex_domain import check_domains

            check_domains(model)

        started = time.perf_counter()
        try:
            if model.has_convex and Capability.CONVEX not in self.capabilities:
                from gaplab.solvers.tangent import solve_with_cuts

                result = solve_with_cuts(self, model, options)
            else:
                result = self._solve(model, options)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as error:  # solver libraries raise anything; contain it here
            logger.exception("backend %s failed on model %s", self.name, model.name)
            result = Result(
                model_name=model.name,
                backend=self.name,
                termination=Termination.ERROR,
                solution_status=SolutionStatus.NO_SOLUTION,
                solve_seconds=time.perf_counter() - started,
                message=f"{type(error).__name__}: {error}",
                log_tail="".join(traceback.format_exception(error)[-3:]),
            )
        result.compiled = model
        return finish_result(result, model)


def finish_result(result: Result, model: CompiledModel) -> Result:
    """Recompute ``max_violation`` and the true objective at the returned point."""
    if result.x is None:
        result.objective = None
        result.solution_status = SolutionStatus.NO_SOLUTION
        return result
    x = np.asarray(result.x, dtype=float)
    if x.shape != (model.num_cols,) or not np.all(np.isfinite(x)):
        result.x = None
        result.row_duals = None
        result.solution_status = SolutionStatus.NO_SOLUTION
        result.objective = None
        result.message = (result.message + " " if result.message else "") + (
            "the solver returned a point of the wrong size or with non-finite entries"
        )
        return result
    result.x = x + 0.0  # turns -0.0 from the solver into 0.0
    result.max_violation = model.max_violation(x)
    result.objective = model.objective_value(x)
    scale = max(1.0, _largest_finite_bound(model))
    if result.max_violation > FEASIBILITY_TOLERANCE * scale:
        if result.solution_status == SolutionStatus.FEASIBLE_POINT:
            logger.warning(
                "%s returned a point that violates model %s by %.3g; marking it infeasible",
                result.backend,
                model.name,
                result.max_violation,
            )
        result.solution_status = SolutionStatus.INFEASIBLE_POINT
    return result


def _largest_finite_bound(model: CompiledModel) -> float:
    largest = 0.0
    for array in (model.row_lower, model.row_upper, model.col_lower, model.col_upper):
        finite = array[np.isfinite(array)]
        if finite.size:
            largest = max(largest, float(np.max(np.abs(finite))))
    return largest
