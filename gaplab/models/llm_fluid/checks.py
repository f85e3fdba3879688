"""Validation and evaluation shared by LP plans and simulated policy outcomes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from gaplab.models.llm_fluid import solution
from gaplab.models.llm_fluid.instance import Instance
from gaplab.models.llm_fluid.solution import FluidPlan

if TYPE_CHECKING:
    from gaplab.heuristics.llm_fluid import PolicyOutcome

SLACK = 1e-9

SIMULATED_STATUS = "simulated-estimate"
"""Status of a row whose objective is a simulation estimate, not a solver's value."""

BOUND_SLACK = 1e-9
"""Relative slack on the LP bound, for the rounding of the LP solve and of the estimate."""


def clip_to_bound(estimate: float, bound: float) -> float:
    """Return the revenue reported for a simulated policy: ``min(estimate, bound)``.

    The fluid LP value R* bounds the long-run revenue per GPU per second of every policy on
    any number of GPUs, because the time averages of a stable system satisfy the LP's balance
    and capacity rows. A simulation estimate above R* is therefore sampling noise or a bug, and
    the true revenue r lies at or below R*. Clipping to R* never moves the estimate e further
    from r, since ``|min(e, R*) - r| <= |e - r|`` for every ``r <= R*``, and it keeps comparison
    tables from showing a heuristic above the optimum. :func:`bound_violation` decides whether
    an excess is noise or a bug.
    """
    return float(min(estimate, bound))


def bound_violation(estimate: float, half_width: float, bound: float) -> str | None:
    """Describe a simulated revenue that exceeds the LP bound significantly, else ``None``.

    ``half_width`` is the 95 % confidence half-width of ``estimate``. The estimate breaks the
    bound only when ``estimate - bound > half_width`` (plus :data:`BOUND_SLACK`): a one-sided
    test at the 2.5 % level of "true revenue <= R*", which holds for every correct simulator.
    Among many estimates whose true revenue equals R*, about one in 40 is still flagged, so
    rerun a flagged policy with another seed or a longer horizon before looking for the bug.
    When the half-width is not finite (too few batches after the warm-up), any excess counts,
    because nothing shows that it is noise.
    """
    excess = estimate - bound
    slack = BOUND_SLACK * max(1.0, abs(bound))
    allowed = half_width if math.isfinite(half_width) else 0.0
    if excess <= allowed + slack:
        return None
    return (
        f"simulated revenue {estimate:.6g} exceeds the LP bound {bound:.6g} by {excess:.4g}, "
        f"more than its 95 % confidence half-width {half_width:.4g}"
    )


def validate(instance: Instance, answer: Any) -> list[str]:
    """List the capacity and balance rules that an LP plan or a simulated outcome breaks."""
    if isinstance(answer, FluidPlan):
        return solution.validate(instance, answer)
    if _is_outcome(answer):
        return validate_outcome(instance, answer)
    raise TypeError(
        f"cannot validate a {type(answer).__name__}; expected FluidPlan or PolicyOutcome"
    )


def evaluate(instance: Instance, answer: Any) -> float:
    """Return revenue per GPU per second: the LP value of a plan, or for a simulated outcome
    its estimate clipped to the LP bound (see :func:`clip_to_bound`)."""
    if isinstance(answer, FluidPlan):
        return solution.evaluate(instance, answer)
    if _is_outcome(answer):
        return float(answer.objective)
    raise TypeError(
        f"cannot evaluate a {type(answer).__name__}; expected FluidPlan or PolicyOutcome"
    )


def _is_outcome(answer: Any) -> bool:
    # Imported here: the heuristics import this package, so a module-level import would cycle.
    from gaplab.heuristics.llm_fluid import PolicyOutcome

    return isinstance(answer, PolicyOutcome)


def validate_outcome(instance: Instance, outcome: PolicyOutcome) -> list[str]:
    """Check a simulated run: capacity at every sample, conservation of requests, LP bound.

    Every arrival is, at the end of the run, waiting, in service, abandoned or completed; so
    completions never exceed the flows that feed them. Time-averaged occupancies obey the
    same capacity rows as the LP. The revenue estimate may exceed the LP bound by sampling
    noise, and only an excess beyond its confidence half-width is listed
    (:func:`bound_violation`).
    """
    sim = outcome.sim
    problems = list(sim.capacity_violations)
    counts = sim.counts
    if (counts["in_system"] < 0).any():
        problems.append(f"more requests left than arrived: in-system counts {counts['in_system']}")
    if (counts["prefill_completions"] > counts["arrivals"]).any():
        problems.append("more prefill completions than arrivals")
    finished = counts["decode_completions"] + counts["decode_abandons"]
    if (finished > counts["prefill_completions"]).any():
        problems.append("more decode completions and abandons than finished prefills")

    B = instance.batch_size
    x = sim.series["x"].sum(axis=1)
    y_m = sim.series["y_m"].sum(axis=1)
    y_s = sim.series["y_s"].sum(axis=1)
    if (x > 1 + SLACK).any():
        problems.append(f"prefill capacity: up to {x.max():.4g} prefills per GPU")
    if (y_m > (B - 1) * x + SLACK).any():
        problems.append("mixed slots: more decodes on prefilling GPUs than (B-1) per GPU")
    if (y_s > B * (1 - x) + SLACK).any():
        problems.append("solo slots: more decodes on GPUs without a prefill than B per GPU")
    if not np.isfinite(sim.revenue):
        problems.append("revenue is not finite (horizon too short after the warm-up)")
    else:
        excess = bound_violation(sim.revenue, sim.revenue_ci, outcome.bound)
        if excess is not None:
            problems.append(excess)
    return problems
