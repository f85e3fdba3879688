"""Compile, solve and interpret the llm-fluid LPs; sweeps over service-level bounds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from gaplab.models.llm_fluid.build import BUNDLED, FluidModel, build, tpot_ratio
from gaplab.models.llm_fluid.instance import Instance, ServiceLevels
from gaplab.models.llm_fluid.solution import Duals, FluidPlan
from gaplab.solvers import Result, SolveOptions, solve

logger = logging.getLogger(__name__)

TPOT_REFINE_TOLERANCE = 1e-9
"""Relative gap between the TPOT ratio and its tangent model at which refinement stops."""
TPOT_REFINE_ROUNDS = 50


def interpret(fluid: FluidModel, result: Result, instance: Instance) -> FluidPlan | None:
    """Turn a solver Result into a :class:`FluidPlan`, or ``None`` when there is no point."""
    if not result.has_values:
        return None
    values = {
        name: np.array(result.value(name), dtype=float)
        for name in ("x", "y_m", "y_s", "q_p", "q_d")
    }
    duals = None
    if result.row_duals is not None:
        duals = Duals(
            prefill_capacity=float(result.dual("prefill_capacity")),  # type: ignore[arg-type]
            mixed_slots=float(result.dual("mixed_slots")),  # type: ignore[arg-type]
            solo_slots=float(result.dual("solo_slots")),  # type: ignore[arg-type]
            prefill_balance=np.asarray(result.dual("prefill_balance"), dtype=float),
            decode_value=-np.asarray(result.dual("decode_balance"), dtype=float),
        )
    # Values within solver tolerance of zero are reported as zero.
    for array in values.values():
        array[np.abs(array) < 1e-12] = 0.0
    levels = instance.service_levels if fluid.model.name.endswith("-sli") else ServiceLevels()
    return FluidPlan(
        pricing=fluid.pricing,
        objective=float(result.objective) if result.objective is not None else float("nan"),
        duals=duals,
        service_levels=levels,
        **values,
    )


def solve_fluid(
    instance: Instance,
    pricing: str = BUNDLED,
    backend: str = "highs",
    options: SolveOptions | None = None,
    *,
    service_levels: ServiceLevels | None = None,
    zero_decode_buffer: bool = False,
) -> tuple[Result, FluidPlan | None]:
    """Build, compile and solve one fluid LP and interpret its solution.

    With a TPOT penalty the convex ratio is replaced by tangents; the LP is re-solved with a
    tangent added at the optimal prefill share until the tangent model and the true ratio agree
    within :data:`TPOT_REFINE_TOLERANCE`, so the returned objective is exact to that tolerance.

    Parameters
    ----------
    instance
        The serving system.
    pricing
        ``"bundled"`` or ``"separate"``.
    backend, options
        Solver backend name and options.
    service_levels
        Service levels to impose (bundled only); ``None`` for the plain LP.
    zero_decode_buffer
        Fix ``q_d = 0``.
    """
    options = options or SolveOptions()
    levels = service_levels or ServiceLevels()
    cuts: list[float] = []
    solved_instance = replace(instance, service_levels=levels)
    for _ in range(TPOT_REFINE_ROUNDS):
        fluid = build(
            solved_instance,
            pricing,
            zero_decode_buffer=zero_decode_buffer,
            service_levels=levels,
            tpot_cuts=cuts,
        )
        result = solve(fluid.model.compile(), backend, **_option_fields(options))
        if levels.tpot_weight <= 0 or not result.has_values:
            break
        prefilling = float(np.asarray(result.value("x")).sum())
        model_value = float(result.value("tpot_value"))  # type: ignore[arg-type]
        true_value = tpot_ratio(instance, prefilling)
        if true_value - model_value <= TPOT_REFINE_TOLERANCE * max(1.0, true_value):
            break
        cuts.append(prefilling)
    else:
        logger.warning(
            "TPOT tangent refinement stopped after %d rounds before reaching tolerance %g",
            TPOT_REFINE_ROUNDS,
            TPOT_REFINE_TOLERANCE,
        )
    return result, interpret(fluid, result, solved_instance)


def _option_fields(options: SolveOptions) -> dict[str, object]:
    return {
        "time_limit": options.time_limit,
        "mip_rel_gap": options.mip_rel_gap,
        "threads": options.threads,
        "verbose": options.verbose,
        "seed": options.seed,
        "solver_options": dict(options.solver_options),
    }


def bundled(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, FluidPlan | None]:
    """Solve the bundled-pricing LP (exact variant ``bundled``)."""
    return solve_fluid(instance, BUNDLED, backend, options)


def separate(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, FluidPlan | None]:
    """Solve the separate-pricing LP (exact variant ``separate``)."""
    return solve_fluid(instance, "separate", backend, options)


def with_service_levels(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, FluidPlan | None]:
    """Solve the bundled LP with the instance's service levels and q_d = 0 (variant ``sli``)."""
    return solve_fluid(
        instance,
        BUNDLED,
        backend,
        options,
        service_levels=instance.service_levels,
        zero_decode_buffer=True,
    )


SWEEP_FIELDS = ("prefill_fairness", "decode_fairness", "tpot")


def sweep(
    instance: Instance,
    field: str,
    bounds: Sequence[float],
    backend: str = "highs",
    options: SolveOptions | None = None,
) -> pd.DataFrame:
    """Solve the bundled LP with one hard service-level bound at each value of ``bounds``.

    Returns one row per bound with the optimal revenue (``None`` when infeasible), the
    prefill share and the time per output token of the plan.
    """
    if field not in SWEEP_FIELDS:
        raise ValueError(f"unknown service level {field!r}; choose one of {SWEEP_FIELDS}")
    rows = []
    for bound in bounds:
        levels = ServiceLevels(**{field: float(bound)})
        result, plan = solve_fluid(instance, BUNDLED, backend, options, service_levels=levels)
        rows.append(
            {
                "bound": float(bound),
                "revenue": plan.objective if plan is not None and result.is_optimal else None,
                "prefilling": plan.prefilling if plan is not None else None,
                "tpot": tpot_ratio(instance, plan.prefilling) if plan is not None else None,
                "termination": result.termination.value,
            }
        )
    return pd.DataFrame(rows)
