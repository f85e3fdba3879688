"""The exact per-layer 0-1 program, its LP relaxation, and the mapping back to an Assignment.

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

import itertools
import logging

import numpy as np

from gaplab.modeling import Model
from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.validate import MS_PER_S, Assignment, layer_time
from gaplab.solvers import Result, SolveOptions, solve

logger = logging.getLogger(__name__)

FRACTIONAL_TOLERANCE = 1e-6
"""LP values within this of 0 or 1 count as integral when rounding."""


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


def solve_lp_round(
    instance: Instance, backend: str = "highs", options: SolveOptions | None = None
) -> tuple[Result, Assignment | None]:
    """Solve the LP relaxation and round its fractional decisions to the best 0-1 point.

    The Result's bound is the LP value ``z_LP`` (milliseconds), a lower bound on the
    optimum, and its objective the layer time of the rounded point. Rounding tries both
    values of every fractional decision (a basic LP solution of this program has at most
    three) and keeps the best one within the slot limit.
    """
    options = options or SolveOptions()
    compiled = build(instance, relax=True).compile()
    result = solve(compiled, backend, **_option_fields(options, backend))
    result.compiled = result.compiled or compiled
    values = result.value("x")
    if values is None:
        return result, None
    x = np.asarray(values, dtype=float)
    rounded = round_fractional(instance, x)
    result.bound = result.objective
    result.objective = layer_time(instance, rounded) * MS_PER_S
    return result, Assignment.of(instance, rounded, "lp-round")


def round_fractional(instance: Instance, x: np.ndarray) -> np.ndarray:
    """Return the best 0-1 vector obtained by rounding the fractional entries of ``x``.

    Entries within :data:`FRACTIONAL_TOLERANCE` of 0 or 1 are fixed; up to 12 fractional
    entries are enumerated, more are rounded at 0.5.
    """
    base = x > 0.5
    fractional = np.flatnonzero((x > FRACTIONAL_TOLERANCE) & (x < 1 - FRACTIONAL_TOLERANCE))
    if len(fractional) > 12:
        logger.warning("LP point has %d fractional entries; rounding at 0.5", len(fractional))
        return base
    best, best_time = None, np.inf
    for bits in itertools.product((False, True), repeat=len(fractional)):
        candidate = base.copy()
        candidate[fractional] = bits
        copies = int(np.count_nonzero(candidate & instance.uncached))
        if instance.slot_limit is not None and copies > instance.slot_limit:
            continue
        value = layer_time(instance, candidate)
        if value < best_time:
            best, best_time = candidate, value
    if best is None:
        # Every rounding up breaks the slot limit; rounding all fractional entries down never
        # adds copies, so it stays feasible.
        best = x >= 1 - FRACTIONAL_TOLERANCE
    return best


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
