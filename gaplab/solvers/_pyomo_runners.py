"""Run a built pyomo model through one of pyomo 6's solver interfaces and report the outcome.

Pyomo has three generations of solver interfaces. The newest (``pyomo.contrib.solver``)
runs HiGHS, SCIP and Gurobi through their Python packages, and APPSI runs HiGHS. The oldest
(``SolverFactory`` with an executable) runs CBC and GLPK through files. Each runner loads the
primal values into the model's variables and returns an :class:`Outcome`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaplab.solvers._backend_util import (
    bundled_cbc_path,
    capture_stdout,
    cbc_log_bound,
    check_cbc_log,
    check_highs_options,
    tail,
)
from gaplab.solvers.result import SolveOptions, Termination

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """Status, bound, duals and log reported by a pyomo solver interface, before the Result."""

    termination: Termination
    has_point: bool
    raw_status: str
    version: str
    log: str
    bound: float | None = None
    duals: Any = None
    """Mapping from ``ConstraintData`` to its dual, for LPs solved to optimality."""
    message: str = ""


# ---------------------------------------------------------------- pyomo.contrib.solver

# NOTE: pyomo 6.10's scip_direct did not finish handing a 200,000-column assignment model to
# SCIP within 8 minutes on a 2-core machine (16,000 columns took about 2 s), so pyomo:scip
# suits small models only. cvxpy:SCIP hands the same model over in under a second.
_CONTRIB_NAMES = {"highs": "highs", "scip": "scip_direct", "gurobi": "gurobi_direct"}
_CONTRIB_INSTALL = {
    "highs": "pip install highspy",
    "scip": "pip install pyscipopt",
    "gurobi": "pip install gurobipy (and a Gurobi licence for models past its size limit)",
}


def _contrib_termination(condition: Any) -> Termination:
    from pyomo.contrib.solver.common.results import TerminationCondition as TC

    return {
        TC.convergenceCriteriaSatisfied: Termination.OPTIMAL,
        TC.emptyModel: Termination.OPTIMAL,
        TC.maxTimeLimit: Termination.TIME_LIMIT,
        TC.iterationLimit: Termination.ITERATION_LIMIT,
        TC.objectiveLimit: Termination.OBJECTIVE_LIMIT,
        TC.minStepLength: Termination.NUMERICAL_ERROR,
        TC.unbounded: Termination.UNBOUNDED,
        TC.provenInfeasible: Termination.INFEASIBLE,
        TC.locallyInfeasible: Termination.INFEASIBLE,
        TC.infeasibleOrUnbounded: Termination.INFEASIBLE_OR_UNBOUNDED,
        TC.error: Termination.ERROR,
        TC.interrupted: Termination.INTERRUPTED,
        TC.licensingProblems: Termination.ERROR,
    }.get(condition, Termination.OTHER)


def _contrib_solver(solver: str) -> Any:
    import pyomo.environ  # noqa: F401  (registers the solver plugins)
    from pyomo.contrib.solver.common.factory import SolverFactory

    return SolverFactory.get_class(_CONTRIB_NAMES[solver])()


def _run_contrib(solver: str) -> Callable[..., Outcome]:
    def run(block: Any, model: Any, options: SolveOptions, want_duals: bool) -> Outcome:
        from pyomo.contrib.solver.common.results import SolutionStatus as SS

        if solver == "highs":
            check_highs_options(options.solver_options)
        opt = _contrib_solver(solver)
        stream = io.StringIO()
        kwargs: dict[str, Any] = {
            "tee": [stream],
            "load_solutions": False,
            "raise_exception_on_nonoptimal_result": False,
            "threads": int(options.threads),
            "solver_options": dict(options.solver_options),
        }
        if options.time_limit is not None:
            kwargs["time_limit"] = float(options.time_limit)
        if options.mip_rel_gap is not None:
            kwargs["rel_gap"] = float(options.mip_rel_gap)
        if options.seed is not None and solver == "highs":
            kwargs["solver_options"].setdefault("random_seed", int(options.seed))
        with capture_stdout() as output:
            results = opt.solve(block, **kwargs)

        termination = _contrib_termination(results.termination_condition)
        has_point = results.solution_status in (SS.feasible, SS.optimal)
        if has_point:
            results.solution_loader.load_vars()
        duals = None
        if want_duals and has_point and termination == Termination.OPTIMAL:
            try:
                duals = results.solution_loader.get_duals()
            except (RuntimeError, NotImplementedError) as error:
                logger.info("pyomo:%s returned no duals: %s", solver, error)
        bound = results.objective_bound
        bound_value = (
            float(bound) if bound is not None and abs(float(bound)) < float("inf") else None
        )
        version = ".".join(str(part) for part in opt.version())
        return Outcome(
            termination=termination,
            has_point=has_point,
            raw_status=f"{results.termination_condition.name}, {results.solution_status.name}",
            version=f"{_CONTRIB_NAMES[solver]} {version}",
            log=tail(output.text + stream.getvalue()),
            bound=bound_value,
            duals=duals,
        )

    return run


# ---------------------------------------------------------------- APPSI


def _run_appsi(block: Any, model: Any, options: SolveOptions, want_duals: bool) -> Outcome:
    from pyomo.contrib.appsi.base import TerminationCondition as TC
    from pyomo.contrib.appsi.solvers import Highs

    check_highs_options(options.solver_options)
    opt = Highs()
    opt.config.load_solution = False
    opt.config.stream_solver = False
    if options.time_limit is not None:
        opt.config.time_limit = float(options.time_limit)
    if options.mip_rel_gap is not None:
        opt.config.mip_gap = float(options.mip_rel_gap)
    opt.highs_options["threads"] = int(options.threads)
    if options.seed is not None:
        opt.highs_options["random_seed"] = int(options.seed)
    opt.highs_options.update(options.solver_options)
    with tempfile.TemporaryDirectory(prefix="gaplab-appsi-") as folder:
        opt.config.logfile = str(Path(folder) / "highs.log")
        with capture_stdout() as output:
            results = opt.solve(block)
        log = Path(opt.config.logfile).read_text(encoding="utf-8", errors="replace")

    termination = {
        TC.optimal: Termination.OPTIMAL,
        TC.maxTimeLimit: Termination.TIME_LIMIT,
        TC.maxIterations: Termination.ITERATION_LIMIT,
        TC.objectiveLimit: Termination.OBJECTIVE_LIMIT,
        TC.minStepLength: Termination.NUMERICAL_ERROR,
        TC.unbounded: Termination.UNBOUNDED,
        TC.infeasible: Termination.INFEASIBLE,
        TC.infeasibleOrUnbounded: Termination.INFEASIBLE_OR_UNBOUNDED,
        TC.error: Termination.ERROR,
        TC.interrupted: Termination.INTERRUPTED,
        TC.licensingProblems: Termination.ERROR,
    }.get(results.termination_condition, Termination.OTHER)
    has_point = results.best_feasible_objective is not None
    if has_point:
        results.solution_loader.load_vars()
    duals = None
    if want_duals and has_point and termination == Termination.OPTIMAL:
        duals = results.solution_loader.get_duals()
    bound = results.best_objective_bound
    bound_value = float(bound) if bound is not None and abs(float(bound)) < float("inf") else None
    version = ".".join(str(part) for part in opt.version())
    return Outcome(
        termination=termination,
        has_point=has_point,
        raw_status=results.termination_condition.name,
        version=f"appsi_highs {version}",
        log=tail(output.text + log),
        bound=bound_value,
        duals=duals,
    )


# ---------------------------------------------------------------- executables through files


def _executable(solver: str) -> str | None:
    if solver == "cbc":
        return shutil.which("cbc") or bundled_cbc_path()
    return shutil.which("glpsol")


def _legacy_options(solver: str, options: SolveOptions) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if solver == "cbc":
        settings["threads"] = int(options.threads)
        if options.time_limit is not None:
            settings["sec"] = float(options.time_limit)
            # CBC counts CPU seconds by default, but gaplab's limits are wall seconds.
            settings["timeMode"] = "elapsed"
        if options.mip_rel_gap is not None:
            settings["ratio"] = float(options.mip_rel_gap)
        if options.seed is not None:
            settings["randomCbcSeed"] = int(options.seed)
    else:
        if options.time_limit is not None:
            # glpsol takes whole seconds.
            settings["tmlim"] = max(1, int(round(options.time_limit)))
        if options.mip_rel_gap is not None:
            settings["mipgap"] = float(options.mip_rel_gap)
    settings.update(options.solver_options)
    return settings


def _run_legacy(solver: str) -> Callable[..., Outcome]:
    def run(block: Any, model: Any, options: SolveOptions, want_duals: bool) -> Outcome:
        import pyomo.environ as pyo
        from pyomo.opt import SolutionStatus as SS
        from pyomo.opt import TerminationCondition as TC

        opt = pyo.SolverFactory(solver, executable=_executable(solver))
        for key, value in _legacy_options(solver, options).items():
            opt.options[key] = value
        if want_duals:
            block.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        with tempfile.TemporaryDirectory(prefix=f"gaplab-{solver}-") as folder:
            log_path = Path(folder) / "solver.log"
            results = opt.solve(block, load_solutions=False, tee=False, logfile=str(log_path))
            log = (
                log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
            )
        if solver == "cbc":
            check_cbc_log(log)

        condition = results.solver.termination_condition
        termination = {
            TC.optimal: Termination.OPTIMAL,
            TC.globallyOptimal: Termination.OPTIMAL,
            TC.locallyOptimal: Termination.LOCALLY_SOLVED,
            TC.maxTimeLimit: Termination.TIME_LIMIT,
            TC.maxIterations: Termination.ITERATION_LIMIT,
            TC.maxEvaluations: Termination.ITERATION_LIMIT,
            TC.minStepLength: Termination.NUMERICAL_ERROR,
            TC.infeasible: Termination.INFEASIBLE,
            TC.unbounded: Termination.UNBOUNDED,
            TC.infeasibleOrUnbounded: Termination.INFEASIBLE_OR_UNBOUNDED,
            TC.userInterrupt: Termination.INTERRUPTED,
            TC.resourceInterrupt: Termination.INTERRUPTED,
            TC.error: Termination.ERROR,
            TC.solverFailure: Termination.ERROR,
            TC.internalSolverError: Termination.ERROR,
            TC.licensingProblems: Termination.ERROR,
        }.get(condition, Termination.OTHER)
        if "stopped on time" in log.lower():
            # pyomo calls a CBC time limit without an integer point "intermediateNonInteger".
            termination = Termination.TIME_LIMIT
        usable = (SS.optimal, SS.feasible, SS.stoppedByLimit, SS.bestSoFar, SS.globallyOptimal)
        has_point = len(results.solution) > 0 and results.solution(0).status in usable
        if has_point:
            # pyomo warns when it loads a point after a limit; the Result reports that instead.
            with _quiet("pyomo.core"):
                block.solutions.load_from(results)
        duals = block.dual if want_duals and has_point else None
        # NOTE: pyomo 6.10 gives CBC's bound of a maximization the wrong sign in
        # results.problem, so the bound is read from the log (pyomo's file keeps the constant).
        bound_value = cbc_log_bound(log) if solver == "cbc" else _glpk_bound(results, model)
        version = ".".join(str(part) for part in (opt.version() or ()))
        return Outcome(
            termination=termination,
            has_point=has_point,
            raw_status=f"{condition}, {results.solver.status}",
            version=f"{solver} {version}".strip(),
            log=tail(log),
            bound=bound_value if model.is_mip else None,
            duals=duals,
        )

    return run


def _glpk_bound(results: Any, model: Any) -> float | None:
    problem = results.problem
    bound = problem.lower_bound if model.sense == "min" else problem.upper_bound
    try:
        value = float(bound)
    except (TypeError, ValueError):
        return None
    return value if abs(value) < float("inf") else None


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    quieted = logging.getLogger(name)
    level = quieted.level
    quieted.setLevel(logging.ERROR)
    try:
        yield
    finally:
        quieted.setLevel(level)


RUNNERS: dict[str, Callable[..., Outcome]] = {
    "highs": _run_contrib("highs"),
    "appsi_highs": _run_appsi,
    "scip": _run_contrib("scip"),
    "gurobi": _run_contrib("gurobi"),
    "cbc": _run_legacy("cbc"),
    "glpk": _run_legacy("glpk"),
}
"""One runner per solver name of ``pyomo:<solver>``; the first is the default."""


def availability_of(solver: str) -> tuple[bool, str]:
    """Whether pyomo can run ``solver`` here, with its version or what to install."""
    if solver in _CONTRIB_NAMES:
        try:
            opt = _contrib_solver(solver)
            available = bool(opt.available())
        except Exception as error:  # pyomo raises assorted errors for missing packages
            logger.debug("pyomo:%s is unavailable: %s", solver, error)
            available = False
        if not available:
            return False, _CONTRIB_INSTALL[solver]
        return True, f"{_CONTRIB_NAMES[solver]} {'.'.join(str(p) for p in opt.version())}"
    if solver == "appsi_highs":
        from pyomo.contrib.appsi.solvers import Highs

        if not Highs().available():
            return False, "pip install highspy"
        return True, "appsi_highs"
    path = _executable(solver)
    if path is None:
        hint = {
            "cbc": "install the cbc executable (apt-get install coinor-cbc) or pip install pulp",
            "glpk": "install the glpsol executable (apt-get install glpk-utils)",
        }
        return False, hint[solver]
    return True, f"{solver} executable at {path}"
