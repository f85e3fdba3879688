"""The direct HiGHS backend: the compiled arrays go to highspy in one ``passModel`` call."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.modeling.compiled import CompiledModel
from gaplab.solvers._highs_util import new_highs
from gaplab.solvers.base import Availability, Backend, Capability
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 30


def _status_map() -> dict[Any, Termination]:
    import highspy

    status = highspy.HighsModelStatus
    return {
        status.kOptimal: Termination.OPTIMAL,
        status.kModelEmpty: Termination.OPTIMAL,
        status.kInfeasible: Termination.INFEASIBLE,
        status.kUnbounded: Termination.UNBOUNDED,
        status.kUnboundedOrInfeasible: Termination.INFEASIBLE_OR_UNBOUNDED,
        status.kTimeLimit: Termination.TIME_LIMIT,
        status.kIterationLimit: Termination.ITERATION_LIMIT,
        status.kSolutionLimit: Termination.SOLUTION_LIMIT,
        status.kObjectiveBound: Termination.OBJECTIVE_LIMIT,
        status.kObjectiveTarget: Termination.OBJECTIVE_LIMIT,
        status.kInterrupt: Termination.INTERRUPTED,
        status.kLoadError: Termination.ERROR,
        status.kModelError: Termination.ERROR,
        status.kPresolveError: Termination.ERROR,
        status.kSolveError: Termination.ERROR,
        status.kPostsolveError: Termination.ERROR,
        status.kMemoryLimit: Termination.ERROR,
    }


def load_into_highs(model: CompiledModel, solver: Any) -> None:
    """Hand the whole model to ``solver`` in one call, row-wise from the CSR arrays."""
    import highspy

    A = model.A
    status = solver.passModel(
        model.num_cols,
        model.num_rows,
        A.nnz,
        2,  # MatrixFormat.kRowwise: the CSR arrays are passed as they are
        -1 if model.sense == "max" else 1,
        float(model.offset),
        model.objective,
        model.col_lower,
        model.col_upper,
        model.row_lower,
        model.row_upper,
        A.indptr.astype(np.int32, copy=False),
        A.indices.astype(np.int32, copy=False),
        A.data,
        model.integrality.astype(np.int32),
    )
    if status == highspy.HighsStatus.kError:
        raise ValueError(f"HiGHS rejected model {model.name!r} when it was passed in")


class HighsBackend(Backend):
    """highspy, the Python interface shipped with HiGHS."""

    family = "highs"
    solver = ""
    capabilities = frozenset({Capability.LP, Capability.MILP, Capability.DUALS})

    def check_available(self) -> Availability:
        try:
            import highspy  # noqa: F401
        except ImportError:
            return Availability(False, "pip install highspy")
        from gaplab.solvers._highs_util import highs_version

        return Availability(True, highs_version())

    def _solve(self, model: CompiledModel, options: SolveOptions) -> Result:
        import highspy

        started = time.perf_counter()
        solver = new_highs()
        load_into_highs(model, solver)
        build_seconds = time.perf_counter() - started

        log_fd, log_path = tempfile.mkstemp(prefix="gaplab-highs-", suffix=".log")
        os.close(log_fd)
        try:
            self._apply_options(solver, options, log_path)
            started = time.perf_counter()
            solver.run()
            solve_seconds = time.perf_counter() - started
            log_tail = _tail(Path(log_path), LOG_TAIL_LINES)
        finally:
            Path(log_path).unlink(missing_ok=True)
        if options.verbose:
            for line in log_tail.splitlines():
                logger.info("highs: %s", line)

        model_status = solver.getModelStatus()
        termination = _status_map().get(model_status, Termination.OTHER)
        info = solver.getInfo()
        has_point = info.primal_solution_status == 2 or (
            model_status == highspy.HighsModelStatus.kModelEmpty
        )
        if termination in (Termination.UNBOUNDED, Termination.INFEASIBLE_OR_UNBOUNDED):
            # HiGHS may keep a feasible point of an unbounded LP; its objective means nothing,
            # and the other backends return none, so drop it.
            has_point = False
        result = Result(
            model_name=model.name,
            backend=self.name,
            termination=termination,
            solution_status=SolutionStatus.FEASIBLE_POINT
            if has_point
            else SolutionStatus.NO_SOLUTION,
            build_seconds=build_seconds,
            solve_seconds=solve_seconds,
            solver_version=_version(solver),
            raw_status=solver.modelStatusToString(model_status),
            log_tail=log_tail,
        )
        if termination == Termination.ERROR:
            result.message = f"HiGHS stopped with {result.raw_status}"

        if has_point:
            solution = solver.getSolution()
            result.x = np.array(solution.col_value, dtype=float)
            if model.num_cols == 0:
                result.x = np.zeros(0)
            result.objective = float(info.objective_function_value)
            if not model.is_mip and info.dual_solution_status == 2:
                result.row_duals = np.array(solution.row_dual, dtype=float)
        result.bound = _bound(model, termination, info, result.objective)

        if termination == Termination.INFEASIBLE and not model.is_mip:
            # For a MILP HiGHS can only explain an infeasible LP relaxation, at the price of
            # extra LP solves, so MILPs get it on request: explain_infeasibility(model).
            result.iis = explain_infeasibility(model, solver)
        return result

    @staticmethod
    def _apply_options(solver: Any, options: SolveOptions, log_path: str) -> None:
        solver.setOptionValue("output_flag", True)
        solver.setOptionValue("log_to_console", False)
        solver.setOptionValue("log_file", log_path)
        solver.setOptionValue("threads", int(options.threads))
        if options.time_limit is not None:
            solver.setOptionValue("time_limit", float(options.time_limit))
        if options.mip_rel_gap is not None:
            solver.setOptionValue("mip_rel_gap", float(options.mip_rel_gap))
        if options.seed is not None:
            solver.setOptionValue("random_seed", int(options.seed))
        if options.warm_start is not None:
            start = np.asarray(options.warm_start, dtype=float)
            if start.shape != (solver.getNumCol(),):
                raise ValueError(
                    f"warm_start has {start.size} values but the model has "
                    f"{solver.getNumCol()} columns"
                )
            columns = np.arange(start.size, dtype=np.int32)
            solver.setSolution(start.size, columns, start)
        for key, value in options.solver_options.items():
            status = solver.setOptionValue(key, value)
            if status.name == "kError":
                raise ValueError(f"HiGHS rejected option {key}={value!r}")


def _bound(
    model: CompiledModel, termination: Termination, info: Any, objective: float | None
) -> float | None:
    if model.is_mip:
        bound = float(info.mip_dual_bound)
        if np.isfinite(bound):
            return bound
        return None
    if termination == Termination.OPTIMAL:
        return objective
    return None


def _version(solver: Any) -> str:
    return f"{solver.versionMajor()}.{solver.versionMinor()}.{solver.versionPatch()}"


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


IIS_STRATEGIES = (6, 2, 0)
"""HiGHS ``iis_strategy`` values tried in turn: from the LP with the irreducibility pass
(kIisStrategyFromLp | kIisStrategyIrreducible), from the LP alone, then the light strategy,
which only finds a single row in conflict with bounds."""


def explain_infeasibility(model: CompiledModel, solver: Any | None = None) -> dict[str, list[Any]]:
    """Return an irreducible infeasible subset as constraint family (or variable bound) labels.

    Rows appear under their family name; column bounds under ``bounds of <block>``. An empty
    dict means HiGHS found no subset, which it says in the log.
    """
    import highspy

    if solver is None:
        solver = new_highs()
        load_into_highs(model, solver)
    unused = {
        highspy.IisBoundStatus.kIisBoundStatusDropped,
        highspy.IisBoundStatus.kIisBoundStatusNull,
        highspy.IisBoundStatus.kIisBoundStatusFree,
    }
    for strategy in IIS_STRATEGIES:
        solver.setOptionValue("iis_strategy", strategy)
        status, iis = solver.getIis()
        if status == highspy.HighsStatus.kError or not iis.valid_:
            continue
        found: dict[str, list[Any]] = {}
        for row in iis.row_index_:
            try:
                family, label = model.row_label(int(row))
            except IndexError:  # a model without constraint families, such as one built by hand
                family, label = "rows", int(row)
            found.setdefault(family, []).append(_plain(label))
        for column, bound in zip(iis.col_index_, iis.col_bound_, strict=False):
            if bound in unused:
                continue
            try:
                block, label = model.column_label(int(column))
            except IndexError:
                block, label = "columns", int(column)
            found.setdefault(f"bounds of {block}", []).append(_plain(label))
        if found:
            return found
    logger.info("HiGHS found no irreducible infeasible subset for %s", model.name)
    return {}


def _plain(label: Any) -> Any:
    if isinstance(label, np.generic):
        return label.item()
    if isinstance(label, tuple):
        return tuple(_plain(v) for v in label)
    return label
