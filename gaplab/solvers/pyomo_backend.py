"""The pyomo backend: ``pyomo:highs``, ``pyomo:appsi_highs``, ``pyomo:scip``, ``pyomo:gurobi``,
``pyomo:cbc`` and ``pyomo:glpk``.

The model is a ``ConcreteModel`` with one indexed ``Var`` and one indexed ``Constraint``. The
constraint rule returns a ``LinearExpression`` built straight from a CSR row, which skips
pyomo's operator overloading and is the quickest way to build a general model in pyomo 6.
The solver interfaces that run it are in :mod:`gaplab.solvers._pyomo_runners`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from gaplab.modeling.compiled import CompiledModel
from gaplab.solvers._backend_util import solution_status_for
from gaplab.solvers._pyomo_runners import RUNNERS, Outcome, availability_of
from gaplab.solvers.base import Availability, Backend, Capability
from gaplab.solvers.result import Result, SolveOptions, Termination

logger = logging.getLogger(__name__)

SOLVERS = tuple(RUNNERS)
"""Solver names of ``pyomo:<solver>``; the first is the default."""


SOLVERS_WITHOUT_DUALS = frozenset({"scip"})
"""Pyomo solver interfaces that return no row duals (scip_direct gives none for LPs)."""


class PyomoBackend(Backend):
    """Pyomo 6 with one of the solver interfaces it ships."""

    family = "pyomo"
    capabilities = frozenset({Capability.LP, Capability.MILP, Capability.DUALS})

    def __init__(self, solver: str) -> None:
        if solver not in RUNNERS:
            from gaplab.solvers.registry import UnknownBackendError

            raise UnknownBackendError(
                f"unknown pyomo solver {solver!r}; expected one of {', '.join(SOLVERS)} "
                "(for example pyomo:highs)"
            )
        self.solver = solver
        if solver in SOLVERS_WITHOUT_DUALS:
            self.capabilities = frozenset({Capability.LP, Capability.MILP})

    def check_available(self) -> Availability:
        try:
            import pyomo.version
        except ImportError:
            return Availability(False, "pip install pyomo")
        available, detail = availability_of(self.solver)
        if not available:
            return Availability(False, detail)
        return Availability(True, f"pyomo {pyomo.version.version}, {detail}")

    def _solve(self, model: CompiledModel, options: SolveOptions) -> Result:
        started = time.perf_counter()
        block, variables, constraints = build_model(model)
        build_seconds = time.perf_counter() - started

        started = time.perf_counter()
        outcome: Outcome = RUNNERS[self.solver](block, model, options, not model.is_mip)
        solve_seconds = time.perf_counter() - started
        if options.verbose:
            for line in outcome.log.splitlines():
                logger.info("pyomo:%s: %s", self.solver, line)

        termination = outcome.termination
        x = None
        if outcome.has_point:
            values = [v.value for v in variables]
            if all(value is not None for value in values):
                x = np.array(values, dtype=float)
        if termination in (Termination.INFEASIBLE, Termination.UNBOUNDED):
            x = None
        result = Result(
            model_name=model.name,
            backend=self.name,
            termination=termination,
            solution_status=solution_status_for(termination, x is not None),
            build_seconds=build_seconds,
            solve_seconds=solve_seconds,
            solver_version=outcome.version,
            raw_status=outcome.raw_status,
            message=outcome.message,
            log_tail=outcome.log,
            x=x,
            bound=outcome.bound,
        )
        if x is not None and termination == Termination.OPTIMAL:
            if not model.is_mip:
                result.bound = model.objective_value(x)
                if outcome.duals is not None:
                    result.row_duals = _row_duals(model, constraints, outcome.duals)
            elif result.bound is None:
                result.bound = model.objective_value(x)
        return result


def build_model(model: CompiledModel) -> tuple[Any, list[Any], dict[int, Any]]:
    """Build a pyomo ``ConcreteModel`` from the compiled arrays.

    Returns
    -------
    block, variables, constraints
        The model, one ``VarData`` per column in column order, and the ``ConstraintData`` of
        each row that has a finite bound, keyed by row index. Rows without one are left out.
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    block = pyo.ConcreteModel(name=model.name)
    block.x = pyo.Var(range(model.num_cols), dense=True)
    variables = list(block.x.values())
    for j in np.flatnonzero(model.integrality).tolist():
        variables[j].domain = pyo.Integers
    lower = [None if not np.isfinite(v) else float(v) for v in model.col_lower]
    upper = [None if not np.isfinite(v) else float(v) for v in model.col_upper]
    for variable, lo, up in zip(variables, lower, upper, strict=True):
        variable.setlb(lo)
        variable.setub(up)

    A = model.A
    indptr = A.indptr.tolist()
    columns = A.indices.tolist()
    coefficients = A.data.tolist()
    row_lower = [None if not np.isfinite(v) else float(v) for v in model.row_lower]
    row_upper = [None if not np.isfinite(v) else float(v) for v in model.row_upper]
    bounded = [
        i for i in range(model.num_rows) if row_lower[i] is not None or row_upper[i] is not None
    ]

    def row_rule(_: Any, i: int) -> Any:
        start, stop = indptr[i], indptr[i + 1]
        expr = LinearExpression(
            constant=0.0,
            linear_coefs=coefficients[start:stop],
            linear_vars=[variables[j] for j in columns[start:stop]],
        )
        lo, up = row_lower[i], row_upper[i]
        if lo is not None and lo == up:
            return expr == lo
        return (lo, expr, up)

    block.rows = pyo.Constraint(bounded, rule=row_rule)

    nonzero = np.flatnonzero(model.objective).tolist()
    objective = LinearExpression(
        constant=float(model.offset),
        linear_coefs=model.objective[nonzero].tolist(),
        linear_vars=[variables[j] for j in nonzero],
    )
    sense = pyo.maximize if model.sense == "max" else pyo.minimize
    block.objective = pyo.Objective(expr=objective, sense=sense)
    constraints = {i: block.rows[i] for i in bounded}
    return block, variables, constraints


def _row_duals(
    model: CompiledModel, constraints: dict[int, Any], duals: dict[Any, float]
) -> np.ndarray | None:
    values = np.zeros(model.num_rows)
    for i, constraint in constraints.items():
        dual = duals.get(constraint)
        if dual is None:
            return None
        values[i] = float(dual)
    return values


def register() -> None:
    """Register the ``pyomo`` family with the backend registry."""
    from gaplab.solvers.registry import register_family

    register_family("pyomo", PyomoBackend, SOLVERS)
