"""The exact per-layer 0-1 program, its LP relaxation, brute force for small layers, and the
mapping back to an Assignment.

With ``x_e = 1`` running expert ``e`` on the GPU::

    min  z
    s.t. z >= gpu_base + sum_e x_e g_e          GPU stream: copies and kernels serialized
         z >= sum_e (1 - x_e) p_e               CPU pool
         sum_e x_e (1 - c_e) <= B               only with a staging-slot limit
         x_e in {0, 1}

Times are in milliseconds, so ``z`` equals :func:`~gaplab.models.moe_assign.validate.evaluate`.
This is two-machine unrelated makespan (R2||Cmax), NP-hard, but small per layer.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from gaplab.modeling import Model
from gaplab.models.moe_assign.bounds import BRUTE_FORCE_MAX_EXPERTS, brute_force
from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.validate import MS_PER_S, Assignment
from gaplab.solvers import Result, SolutionStatus, SolveOptions, Termination, solve

logger = logging.getLogger(__name__)


def build(instance: Instance, *, relax: bool = False) -> Model:
    """Declare the assignment program of ``instance``; ``relax`` makes ``x`` continuous."""
    m = Model("moe-assign-lp" if relax else "moe-assign")
    expert = m.index("expert", instance.experts.tolist())
    x = m.continuous("x", expert, upper=1.0) if relax else m.binary("x", expert)
    z = m.continuous("z")
    g = np.asarray(instance.gpu_cost) * MS_PER_S
    p = np.asarray(instance.cpu_cost) * MS_PER_S
    base = float(instance.gpu_base_s) * MS_PER_S
    if instance.copy_overlap:
        copy = np.where(instance.cached, 0.0, np.asarray(instance.transfer_s)) * MS_PER_S
        kernels = g - copy
        m.subject_to("gpu_copies", (x * copy).sum() <= z)
        m.subject_to("gpu_kernels", (x * kernels).sum() + base <= z)
        uncached = [int(e) for e in instance.experts[instance.uncached]]
        if uncached:
            # One row per uncached expert e: if e runs on the GPU, the kernels start no
            # earlier than its copy ends, so their total plus t_trans_e bounds z.
            first = m.index("uncached", uncached)
            latency = copy[instance.uncached]
            kernel_sum = (x * kernels).sum() + base
            chosen = x.at(uncached, over=first)
            m.subject_to("gpu_first_copy", kernel_sum + chosen * latency <= z)
    else:
        m.subject_to("gpu_time", (x * g).sum() + base <= z)
    m.subject_to("cpu_time", float(p.sum()) - (x * p).sum() <= z)
    if instance.slot_limit is not None:
        m.subject_to(
            "slots", (x * instance.uncached.astype(float)).sum() <= float(instance.slot_limit)
        )
    m.minimize(z)
    return m


def interpret(instance: Instance, result: Result, method: str = "milp") -> Assignment | None:
    """Read the 0-1 decisions of a MILP Result; ``None`` when the solve returned no point."""
    values = result.value("x")
    if values is None:
        return None
    x = np.asarray(values, dtype=float) > 0.5
    return Assignment.of(instance, x, method)


def solve_milp(
    instance: Instance, backend: str = "highs", options: SolveOptions | None = None
) -> tuple[Result, Assignment | None]:
    """Solve the 0-1 program exactly (up to the options' gap and time limit)."""
    options = options or SolveOptions()
    compiled = build(instance).compile()
    result = solve(compiled, backend, **_option_fields(options, backend))
    result.compiled = result.compiled or compiled
    solution = interpret(instance, result, "milp")
    if result.termination.value != "optimal":
        logger.info(
            "MILP of %s stopped with %s; objective %s, bound %s",
            instance.name,
            result.termination.value,
            result.objective,
            result.bound,
        )
    return result, solution


def solve_lp_relaxation(
    instance: Instance, backend: str = "highs", options: SolveOptions | None = None
) -> Result:
    """Solve the LP relaxation, with ``x`` continuous in [0, 1].

    The Result's objective is the LP value ``z_LP`` in milliseconds, a lower bound on the
    optimal layer time, and it is also stored as the Result's bound. Its ``x`` values may be
    fractional; :func:`gaplab.heuristics.moe_assign.lp_round` rounds them to a schedule.
    """
    options = options or SolveOptions()
    compiled = build(instance, relax=True).compile()
    result = solve(compiled, backend, **_option_fields(options, backend))
    result.compiled = result.compiled or compiled
    if result.objective is not None and result.termination.value == "optimal":
        result.bound = result.objective
    return result


BRUTE_FORCE_BACKEND = "brute-force"
"""Backend name reported by :func:`solve_brute_force`, which calls no solver."""


def solve_brute_force(
    instance: Instance, backend: str = "highs", options: SolveOptions | None = None
) -> tuple[Result, Assignment | None]:
    """Enumerate every schedule of a small layer (exact variant ``brute-force``).

    Applies up to :data:`~gaplab.models.moe_assign.bounds.BRUTE_FORCE_MAX_EXPERTS` experts.
    Larger layers get a Result with termination ``other``, no point and a message naming
    the ``milp`` variant, so a comparison run records the variant as not applied instead of
    failing. ``backend`` and ``options`` are ignored, because no solver runs.

    NOTE: the time limit is not enforced. A layer of 22 experts took about 1 s on one core.
    """
    del backend, options
    compiled = build(instance).compile()
    if instance.n > BRUTE_FORCE_MAX_EXPERTS:
        message = (
            f"brute force enumerates at most {BRUTE_FORCE_MAX_EXPERTS} experts and layer "
            f"{instance.name!r} has {instance.n}, so use the milp variant"
        )
        return (
            Result(
                model_name=compiled.name,
                backend=BRUTE_FORCE_BACKEND,
                termination=Termination.OTHER,
                solution_status=SolutionStatus.NO_SOLUTION,
                raw_status="not applied: too many experts",
                message=message,
                compiled=compiled,
            ),
            None,
        )
    started = time.perf_counter()
    seconds, assignment = brute_force(instance)
    elapsed = time.perf_counter() - started
    milliseconds = seconds * MS_PER_S
    x = compiled.column_vector({"x": assignment.on_gpu.astype(float), "z": milliseconds})
    result = Result(
        model_name=compiled.name,
        backend=BRUTE_FORCE_BACKEND,
        termination=Termination.OPTIMAL,
        solution_status=SolutionStatus.FEASIBLE_POINT,
        objective=milliseconds,
        bound=milliseconds,
        solve_seconds=elapsed,
        raw_status=f"enumerated 2**{instance.n} schedules",
        x=x,
        max_violation=compiled.max_violation(x),
        compiled=compiled,
    )
    return result, Assignment.of(instance, assignment.on_gpu, "brute-force")


EXACT_REL_GAP = 1e-9
"""Relative MIP gap used when the caller sets none, so that "exact" means exact."""

EXACT_ABS_GAP = 1e-9
"""Absolute MIP gap in milliseconds handed to HiGHS by default, tighter than HiGHS' 1e-6."""

HIGHS_SOLVERS = ("highs", "appsi_highs")
"""Solver parts of the backend names (``highs``, ``pyomo:appsi_highs``, ``cvxpy:HIGHS``, ...)
that run HiGHS and so accept HiGHS option names such as ``mip_abs_gap``."""


def runs_highs(backend: str) -> bool:
    """Return whether ``backend`` hands the model to HiGHS."""
    return backend.rsplit(":", 1)[-1].lower() in HIGHS_SOLVERS


def _option_fields(options: SolveOptions, backend: str) -> dict[str, object]:
    # Only HiGHS reads mip_abs_gap, and SCIP and CBC reject unknown option names, so the
    # default goes to HiGHS backends alone. The caller's own solver_options pass unchanged.
    solver_options = dict(options.solver_options)
    if runs_highs(backend):
        solver_options.setdefault("mip_abs_gap", EXACT_ABS_GAP)
    return {
        "time_limit": options.time_limit,
        "mip_rel_gap": EXACT_REL_GAP if options.mip_rel_gap is None else options.mip_rel_gap,
        "threads": options.threads,
        "verbose": options.verbose,
        "seed": options.seed,
        "convex_tolerance": options.convex_tolerance,
        "solver_options": solver_options,
    }
