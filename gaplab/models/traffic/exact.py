"""Exact solves of the traffic program: feasibility first, then the convex program.

Three routes reach the optimum:

- :func:`solve_direct` writes the program in cvxpy by hand (``mu * inv_pos(mu - x) - 1`` per
  queue) and solves it with Clarabel. It needs nothing from gaplab's backends, so it also
  serves as a cross-check of them.
- :func:`solve_exact` builds the program with :mod:`gaplab.modeling` and hands it to a gaplab
  backend: ``cvxpy:CLARABEL`` takes the M/M/1 terms natively, ``highs`` through tangent cuts
  (the Result then reports ``approximation_gap``).

Every route first solves the transportation LP and raises
:class:`~gaplab.models.traffic.feasibility.DemandDoesNotFitError` when the demand cannot fit,
and interior-point solutions are refined by :func:`~gaplab.models.traffic.polish.polish`.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import scipy.sparse as sp

from gaplab.models.traffic.build import build, flows_from_values
from gaplab.models.traffic.certificate import lower_bound
from gaplab.models.traffic.delay import Allocation, objective
from gaplab.models.traffic.feasibility import check_feasible
from gaplab.models.traffic.instance import Instance
from gaplab.models.traffic.polish import polish
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination

logger = logging.getLogger(__name__)

CLARABEL_SETTINGS = {
    "tol_gap_abs": 1e-10,
    "tol_gap_rel": 1e-10,
    "tol_feas": 1e-10,
    "max_iter": 400,
}
"""Clarabel tolerances of the direct program, tighter than the defaults (1e-8)."""


def solve_direct(
    instance: Instance, options: SolveOptions | None = None, *, refine: bool = True
) -> tuple[Result, Allocation | None]:
    """Solve the convex program written directly in cvxpy, with Clarabel.

    Parameters
    ----------
    instance
        The instance to solve.
    options
        ``time_limit`` and ``verbose`` are passed on; ``solver_options`` override
        :data:`CLARABEL_SETTINGS`.
    refine
        Apply the Newton polish to Clarabel's point.

    Returns
    -------
    The Result (backend ``cvxpy-direct:CLARABEL``, without label maps) and the Allocation, or
    ``None`` when Clarabel returned no point.
    """
    import cvxpy as cp

    options = options or SolveOptions()
    check_feasible(instance)
    started = time.perf_counter()
    rows, cols = np.nonzero(instance.links)
    k = rows.size
    n, m = instance.num_sources, instance.num_nodes
    # F is unchanged when flows and capacities are divided by one scale and propagation delays
    # multiplied by it. Solving in units of the largest node capacity keeps Clarabel's numbers
    # near one.
    scale = float(instance.node_capacity.max())
    mu = instance.access_capacity[rows, cols] / scale
    mu_node = instance.node_capacity / scale
    to_source = sp.csr_matrix((np.ones(k), (rows, np.arange(k))), shape=(n, k))
    to_node = sp.csr_matrix((np.ones(k), (cols, np.arange(k))), shape=(m, k))

    y = cp.Variable(k, nonneg=True)
    load = to_node @ y
    total = (
        cp.sum(cp.multiply(mu, cp.inv_pos(mu - y)))
        - k
        + cp.sum(cp.multiply(mu_node, cp.inv_pos(mu_node - load)))
        - m
    )
    if instance.has_propagation:
        total = total + (scale * instance.propagation[rows, cols]) @ y
    problem = cp.Problem(cp.Minimize(total), [to_source @ y == instance.rates / scale])
    built = time.perf_counter()

    settings: dict[str, object] = dict(CLARABEL_SETTINGS)
    if options.time_limit is not None:
        settings["time_limit"] = float(options.time_limit)
    settings.update(options.solver_options)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            problem.solve(solver=cp.CLARABEL, verbose=options.verbose, **settings)
        for warning in caught:
            logger.info("cvxpy on %s: %s", instance.name, warning.message)
        status = str(problem.status)
    except cp.error.SolverError as error:
        status = f"solver_error: {error}"
    solved = time.perf_counter()

    result = Result(
        model_name=f"traffic-{instance.name}",
        backend="cvxpy-direct:CLARABEL",
        termination=_termination(status),
        solution_status=SolutionStatus.NO_SOLUTION,
        build_seconds=built - started,
        solve_seconds=solved - built,
        solver_version=cp.__version__,
        raw_status=status,
    )
    if y.value is None:
        return result, None
    x = np.zeros((n, m))
    x[rows, cols] = scale * np.clip(np.asarray(y.value, dtype=float), 0.0, None)
    if refine:
        x = polish(instance, x)
    result.objective = objective(instance, x)
    # Clarabel's dual value is a bound only up to its tolerances; the convexity bound of the
    # returned split is exact. It also certifies points Clarabel calls inaccurate.
    result.bound = lower_bound(instance, x)
    gap = result.gap
    if result.termination == Termination.LOCALLY_SOLVED and gap is not None and gap <= 1e-9:
        result.termination = Termination.OPTIMAL
    result.solution_status = SolutionStatus.FEASIBLE_POINT
    return result, Allocation(x, "exact:cvxpy-direct", {"raw_status": status})


def _termination(status: str) -> Termination:
    return {
        "optimal": Termination.OPTIMAL,
        "optimal_inaccurate": Termination.LOCALLY_SOLVED,
        "infeasible": Termination.INFEASIBLE,
        "unbounded": Termination.UNBOUNDED,
        "user_limit": Termination.TIME_LIMIT,
    }.get(status, Termination.ERROR if status.startswith("solver_error") else Termination.OTHER)


def solve_exact(
    instance: Instance, backend: str = "cvxpy:CLARABEL", options: SolveOptions | None = None
) -> tuple[Result, Allocation | None]:
    """Build the program with gaplab.modeling and solve it with ``backend``.

    ``cvxpy:<SOLVER>`` backends take the M/M/1 terms natively. Their solution is polished and
    written back into the Result, whose ``objective`` and ``bound`` then describe the polished
    point (the bound is its convexity bound). ``highs``
    and other LP backends use tangent cuts, so the Result's ``approximation_gap`` bounds how far
    the returned point may be from the optimum.
    """
    options = options or SolveOptions()
    check_feasible(instance)
    declared = build(instance)
    result = declared.model.solve(backend, **_option_fields(options))
    values = result.value(declared.flow)
    if values is None:
        return result, None
    x = flows_from_values(instance, np.asarray(values, dtype=float))
    if backend.startswith("cvxpy") and result.x is not None and result.compiled is not None:
        # Store the polished point in the Result, so that its values, objective and bound
        # describe the same split. The convexity bound of that point is a valid dual bound.
        x = polish(instance, x)
        block = result.compiled.variable_block("flow")
        result.x = result.x.copy()
        result.x[block.start : block.stop] = x.ravel()
        result.objective = objective(instance, x)
        bound = lower_bound(instance, x)
        if np.isfinite(bound):
            result.bound = bound
    info: dict[str, object] = {"backend": backend}
    if result.approximation_gap is not None:
        info["approximation_gap"] = float(result.approximation_gap)
    return result, Allocation(x, f"exact:{backend}", info)


def _option_fields(options: SolveOptions) -> dict[str, object]:
    return {
        "time_limit": options.time_limit,
        "mip_rel_gap": options.mip_rel_gap,
        "threads": options.threads,
        "verbose": options.verbose,
        "seed": options.seed,
        "convex_tolerance": options.convex_tolerance,
        "solver_options": dict(options.solver_options),
    }
