"""The PuLP backend: ``pulp:cbc`` (the CBC that PuLP bundles) and ``pulp:highs`` (highspy).

The model is built row by row from the CSR arrays, each row one ``LpAffineExpression`` made
from a list of (variable, coefficient) pairs, which is the quickest path PuLP 3 offers. A
ranged row becomes two PuLP constraints because PuLP has no ranged constraint.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.modeling.compiled import CompiledModel
from gaplab.solvers._backend_util import (
    bundled_cbc_path,
    capture_stdout,
    cbc_log_bound,
    check_cbc_log,
    check_highs_options,
    solution_status_for,
    split_rows,
    tail,
)
from gaplab.solvers.base import Availability, Backend, Capability
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination

logger = logging.getLogger(__name__)

SOLVERS = ("cbc", "highs")
"""Solver names of ``pulp:<solver>``; the first is the default."""


class PulpBackend(Backend):
    """PuLP 3 with the CBC executable it bundles, or with HiGHS through highspy."""

    family = "pulp"
    capabilities = frozenset({Capability.LP, Capability.MILP, Capability.DUALS})

    def __init__(self, solver: str) -> None:
        if solver not in SOLVERS:
            from gaplab.solvers.registry import UnknownBackendError

            raise UnknownBackendError(
                f"unknown PuLP solver {solver!r}; expected one of {', '.join(SOLVERS)} "
                "(for example pulp:cbc)"
            )
        self.solver = solver

    def check_available(self) -> Availability:
        try:
            import pulp
        except ImportError:
            return Availability(False, "pip install pulp")
        if self.solver == "cbc":
            if _cbc_path() is None:
                return Availability(
                    False, "PuLP's bundled CBC is missing: pip install --force-reinstall pulp"
                )
            return Availability(True, f"pulp {pulp.__version__} with its bundled CBC")
        try:
            import highspy  # noqa: F401
        except ImportError:
            return Availability(False, "pip install highspy")
        return Availability(True, f"pulp {pulp.__version__} with highspy")

    def _solve(self, model: CompiledModel, options: SolveOptions) -> Result:
        started = time.perf_counter()
        problem, variables, rows = build_problem(model)
        build_seconds = time.perf_counter() - started

        started = time.perf_counter()
        if self.solver == "cbc":
            result = self._run_cbc(model, problem, options)
        else:
            result = self._run_highs(model, problem, options)
        result.build_seconds = build_seconds
        result.solve_seconds = time.perf_counter() - started
        if options.verbose:
            for line in result.log_tail.splitlines():
                logger.info("pulp:%s: %s", self.solver, line)

        if result.solution_status != SolutionStatus.NO_SOLUTION:
            values = [v.varValue for v in variables]
            if any(value is None for value in values):
                result.solution_status = SolutionStatus.NO_SOLUTION
            else:
                result.x = np.array(values, dtype=float)
                if not model.is_mip and result.termination == Termination.OPTIMAL:
                    result.row_duals = _row_duals(model, rows, self.solver)
        if result.termination == Termination.OPTIMAL and result.bound is None:
            result.bound = model.linear_objective(result.x) if result.x is not None else None
        return result

    def _run_cbc(self, model: CompiledModel, problem: Any, options: SolveOptions) -> Result:
        import pulp

        extra = [f"{key} {value}" for key, value in options.solver_options.items()]
        if options.seed is not None:
            extra.append(f"randomCbcSeed {int(options.seed)}")
        with tempfile.TemporaryDirectory(prefix="gaplab-cbc-") as folder:
            log_path = Path(folder) / "cbc.log"
            command = pulp.COIN_CMD(
                path=_cbc_path(),
                mip=True,
                msg=False,
                timeLimit=options.time_limit,
                gapRel=options.mip_rel_gap,
                threads=options.threads,
                options=extra,
                logPath=str(log_path),
            )
            problem.solve(command)
            log = log_path.read_text(encoding="utf-8", errors="replace")
        check_cbc_log(log)

        termination, raw = _cbc_termination(problem, log)
        has_point = problem.sol_status in (
            pulp.LpSolutionOptimal,
            pulp.LpSolutionIntegerFeasible,
        )
        if termination in (Termination.INFEASIBLE, Termination.UNBOUNDED):
            has_point = False
        result = Result(
            model_name=model.name,
            backend=self.name,
            termination=termination,
            solution_status=solution_status_for(termination, has_point),
            solver_version=_cbc_version(log),
            raw_status=raw,
            log_tail=tail(log),
        )
        result.bound = _cbc_bound(model, log)
        return result

    def _run_highs(self, model: CompiledModel, problem: Any, options: SolveOptions) -> Result:
        import highspy
        import pulp

        from gaplab.solvers.highs import _status_map

        check_highs_options(options.solver_options)
        params = dict(options.solver_options)
        params["log_to_console"] = True
        if options.seed is not None:
            params["random_seed"] = int(options.seed)
        command = pulp.HiGHS(
            mip=True,
            msg=True,
            timeLimit=options.time_limit,
            gapRel=options.mip_rel_gap,
            threads=options.threads,
            **params,
        )
        with capture_stdout() as output:
            problem.solve(command)

        # PuLP maps a HiGHS time limit to "Optimal", so the status is read from highspy itself.
        highs = problem.solverModel
        model_status = highs.getModelStatus()
        termination = _status_map().get(model_status, Termination.OTHER)
        info = highs.getInfo()
        has_point = info.primal_solution_status == 2
        result = Result(
            model_name=model.name,
            backend=self.name,
            termination=termination,
            solution_status=solution_status_for(termination, has_point),
            solver_version=f"{highs.versionMajor()}.{highs.versionMinor()}.{highs.versionPatch()}",
            raw_status=highs.modelStatusToString(model_status),
            log_tail=tail(output.text),
        )
        if model.is_mip:
            bound = float(info.mip_dual_bound)
            # PuLP hands HiGHS the negated objective of a maximization.
            if model.sense == "max":
                bound = -bound
            result.bound = bound + float(model.offset) if np.isfinite(bound) else None
        del highspy
        return result


def build_problem(model: CompiledModel) -> tuple[Any, list[Any], list[tuple[int, Any]]]:
    """Build a ``pulp.LpProblem`` from the compiled arrays.

    Returns
    -------
    problem, variables, rows
        The problem, one ``LpVariable`` per column, and (row index, constraint) pairs in the
        order they were added. A ranged row appears twice.
    """
    import pulp

    sense = pulp.LpMaximize if model.sense == "max" else pulp.LpMinimize
    problem = pulp.LpProblem(_safe_name(model.name), sense)

    lower = [None if not np.isfinite(v) else float(v) for v in model.col_lower]
    upper = [None if not np.isfinite(v) else float(v) for v in model.col_upper]
    kinds = np.where(model.integrality.astype(bool), pulp.LpInteger, pulp.LpContinuous)
    # PuLP 3 deprecates the LpVariable constructor in favour of add_variable, which PuLP 2 lacks.
    new_variable = getattr(problem, "add_variable", pulp.LpVariable)
    variables = [new_variable(f"x{j}", lower[j], upper[j], kinds[j]) for j in range(model.num_cols)]
    with warnings.catch_warnings():
        # Variables that appear in no row and no objective term would otherwise be dropped.
        warnings.simplefilter("ignore", DeprecationWarning)
        problem.addVariables(variables)

    A = model.A
    indptr = A.indptr
    columns = A.indices.tolist()
    coefficients = A.data.tolist()
    split = split_rows(model)
    side = np.zeros(model.num_rows, dtype=np.int8)  # 0 free, 1 lower, 2 upper, 3 both, 4 equal
    side[split.lower] |= 1
    side[split.upper] |= 2
    side[split.equal] = 4
    rows: list[tuple[int, Any]] = []
    for i in np.flatnonzero(side).tolist():
        start, stop = indptr[i], indptr[i + 1]
        expr = pulp.LpAffineExpression(
            zip([variables[j] for j in columns[start:stop]], coefficients[start:stop], strict=True)
        )
        if side[i] == 4:
            constraint = pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}", model.row_lower[i])
            problem.addConstraint(constraint)
            rows.append((i, constraint))
            continue
        if side[i] & 1:
            constraint = pulp.LpConstraint(
                expr, pulp.LpConstraintGE, f"r{i}_lo", model.row_lower[i]
            )
            problem.addConstraint(constraint)
            rows.append((i, constraint))
        if side[i] & 2:
            constraint = pulp.LpConstraint(
                expr, pulp.LpConstraintLE, f"r{i}_up", model.row_upper[i]
            )
            problem.addConstraint(constraint)
            rows.append((i, constraint))

    nonzero = np.flatnonzero(model.objective)
    problem.setObjective(
        pulp.LpAffineExpression(
            zip([variables[j] for j in nonzero], model.objective[nonzero].tolist(), strict=True),
            constant=float(model.offset),
        )
    )
    return problem, variables, rows


def _row_duals(model: CompiledModel, rows: list[tuple[int, Any]], solver: str) -> np.ndarray | None:
    duals = np.zeros(model.num_rows)
    for i, constraint in rows:
        if constraint.pi is None:
            return None
        duals[i] += float(constraint.pi)
    # PuLP hands HiGHS the negated objective of a maximization, so its duals are negated too.
    # CBC's duals already match HiGHS' sign convention (checked on a small maximization).
    if model.sense == "max" and solver == "highs":
        duals = -duals
    return duals


def _cbc_termination(problem: Any, log: str) -> tuple[Termination, str]:
    import pulp

    match = re.search(r"^Result - (.+)$", log, flags=re.MULTILINE)
    raw = match.group(1).strip() if match else pulp.LpStatus.get(problem.status, "")
    lowered = log.lower()
    if "stopped on time" in lowered:
        return Termination.TIME_LIMIT, raw
    if "stopped on iterations" in lowered or "stopped on node" in lowered:
        return Termination.ITERATION_LIMIT, raw
    if problem.status == pulp.LpStatusOptimal and problem.sol_status == pulp.LpSolutionOptimal:
        return Termination.OPTIMAL, raw
    if problem.status == pulp.LpStatusInfeasible:
        return Termination.INFEASIBLE, raw
    if problem.status == pulp.LpStatusUnbounded:
        # CBC calls a MILP "unbounded" when its LP relaxation is, which leaves infeasibility open.
        if model_is_mip(problem):
            return Termination.INFEASIBLE_OR_UNBOUNDED, raw
        return Termination.UNBOUNDED, raw
    return Termination.OTHER, raw


def model_is_mip(problem: Any) -> bool:
    """Return whether a PuLP problem has integer variables."""
    return bool(problem.isMIP())


def _cbc_bound(model: CompiledModel, log: str) -> float | None:
    if not model.is_mip:
        return None
    bound = cbc_log_bound(log)
    if bound is None:
        # The caller takes the objective as the bound of an optimal solve.
        return None
    # PuLP leaves the objective constant out of the MPS file it hands CBC.
    return bound + float(model.offset)


def _cbc_version(log: str) -> str:
    match = re.search(r"^Version:\s*(\S+)", log, flags=re.MULTILINE)
    return f"CBC {match.group(1)}" if match else "CBC"


def _cbc_path() -> str | None:
    import shutil

    return shutil.which("cbc") or bundled_cbc_path()


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"


def register() -> None:
    """Register the ``pulp`` family with the backend registry."""
    from gaplab.solvers.registry import register_family

    register_family("pulp", PulpBackend, SOLVERS)
