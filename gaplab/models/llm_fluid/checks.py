"""Validation and evaluation shared by LP plans and simulated policy outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gaplab.models.llm_fluid import solution
from gaplab.models.llm_fluid.instance import Instance
from gaplab.models.llm_fluid.solution import FluidPlan

if TYPE_CHECKING:
    from gaplab.heuristics.llm_fluid import PolicyOutcome

SLACK = 1e-9


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
    """Return revenue per GPU per second: the LP value of a plan or the simulated revenue."""
    if isinstance(answer, FluidPlan):
        return solution.evaluate(instance, answer)
    if _is_outcome(answer):
        return float(answer.revenue)
    raise TypeError(
        f"cannot evaluate a {type(answer).__name__}; expected FluidPlan or PolicyOutcome"
    )


def _is_outcome(answer: Any) -> bool:
    # Imported here: the heuristics import this package, so a module-level import would cycle.
    from gaplab.heuristics.llm_fluid import PolicyOutcome

    return isinstance(answer, PolicyOutcome)


def validate_outcome(instance: Instance, outcome: PolicyOutcome) -> list[str]:
    """Check a simulated run: capacity at every sample and conservation of requests.

    Every arrival is, at the end of the run, waiting, in service, abandoned or completed; so
    completions never exceed the flows that feed them. Time-averaged occupancies obey the
    same capacity rows as the LP.
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
    return problems
