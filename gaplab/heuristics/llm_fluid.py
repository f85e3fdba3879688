"""llm-fluid serving policies derived from the fluid LPs, and the baselines they compete with.

Each policy is scored by simulation (:mod:`gaplab.sim.llm_fluid`), so a heuristic's Solution is a
:class:`PolicyOutcome`: the simulated revenue per GPU per second with its confidence interval
and the time-averaged state, next to the LP plan the policy was derived from.

Names follow the usual scheme: the first letter is the admission rule (G = occupancy gate,
F = FCFS), the second the decode handling (G = greedy router, I = immediate decode in the
prefill slot, F = prefill-first use of freed slots), SP / WSP = with / without static partition.

- ``GG-SP`` gate-and-route (bundled LP targets);
- ``GG-SP-hold`` gate-and-route that starts no prefill while a decode waits for a slot. This
  is a design choice (one reading of "waiting decodes take free solo slots before any new
  prefill starts"); it keeps the decode buffer near empty;
- ``PR-SP`` prioritize-and-route for separate pricing (largest D_i / P_i first, LP-S partition);
- ``SLI-GG`` gate plus randomized router on the service-level LP (solo share from y*);
- ``FI-WSP`` FCFS admission, decode in the prefill slot, no partition (Sarathi-Serve style);
- ``GI-WSP`` the gate on the coupled architecture, no partition;
- ``GF-WSP`` gate, decoupled decodes, prefill-first slot use, no partition;
- ``FG-SP`` partition and greedy router without the gate (FCFS admission).

Design choices where the published description leaves the mechanics open: without a partition
a prefill takes one of the GPU's B slots and slows every decode on that GPU to mixed speed, the
gate admits a class only while its prefill occupancy is below ``n x_i*`` (otherwise nothing
would bound the number of prefills), and ``GF-WSP`` places a decode on a uniformly chosen GPU
with a free slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from gaplab.models.llm_fluid.checks import SIMULATED_STATUS, clip_to_bound
from gaplab.models.llm_fluid.instance import Instance
from gaplab.models.llm_fluid.solution import FluidPlan
from gaplab.models.llm_fluid.solve import solve_fluid
from gaplab.sim.llm_fluid import SimResult, simulate
from gaplab.sim.llm_fluid_policies import POLICY_NAMES, Policy

DEFAULT_HORIZON = 120.0
"""Simulated seconds of one heuristic run (a third is warm-up)."""


@dataclass
class PolicyOutcome:
    """A policy scored by simulation: the Solution type of the llm-fluid heuristics.

    The simulated revenue is an estimate with a confidence interval, while ``bound`` is the
    proven optimum of the plain fluid LP. ``objective``, which comparisons report, is the
    estimate clipped to the bound, and the validator flags only an estimate that exceeds the
    bound by more than its confidence half-width (see
    :func:`gaplab.models.llm_fluid.checks.bound_violation`).
    """

    policy: Policy
    plan: FluidPlan
    """The LP plan whose targets the policy used."""
    sim: SimResult
    bound: float
    """R*, the value of the plain fluid LP under the pricing the run is scored by: no policy's
    long-run revenue per GPU per second exceeds it."""

    @property
    def estimate(self) -> float:
        """Simulated revenue per GPU per second after the warm-up, unclipped."""
        return self.sim.revenue

    @property
    def ci95(self) -> float:
        """Half-width of the 95 % confidence interval of :attr:`estimate` (batch means)."""
        return self.sim.revenue_ci

    @property
    def revenue(self) -> float:
        """The unclipped estimate, as :attr:`estimate`."""
        return self.sim.revenue

    @property
    def objective(self) -> float:
        """The estimate clipped to :attr:`bound`, the value reported for comparison."""
        return clip_to_bound(self.estimate, self.bound)

    @property
    def status(self) -> str:
        """Status shown in comparison tables: ``simulated-estimate``."""
        return SIMULATED_STATUS

    def to_json(self) -> dict[str, object]:
        means = self.sim.means()
        return {
            **self.sim.summary(),
            "objective": self.objective,
            "estimate": self.estimate,
            "ci95": self.ci95,
            "bound": self.bound,
            "plan_objective": self.plan.objective,
            **{f"mean_{k}": v.tolist() for k, v in means.items()},
        }


def _plan(instance: Instance, pricing: str = "bundled", sli: bool = False) -> FluidPlan:
    if sli:
        result, plan = solve_fluid(
            instance, "bundled", service_levels=instance.service_levels, zero_decode_buffer=True
        )
    else:
        result, plan = solve_fluid(instance, pricing)
    if plan is None or not result.is_optimal:
        raise RuntimeError(
            f"the {pricing} fluid LP of instance {instance.name!r} ended with "
            f"{result.termination.value!r}, so no policy targets are available"
        )
    return plan


def scored_pricing(name: str) -> str:
    """Return the pricing a policy is scored under: separate for ``PR-SP``, else bundled."""
    return "separate" if name == "PR-SP" else "bundled"


def revenue_bound(instance: Instance, pricing: str) -> float:
    """Return R*, the plain fluid LP value under ``pricing``, which bounds every policy.

    Service levels are left out, because the simulator neither enforces nor charges them, so
    the bound for SLI-GG is the bundled LP value too.
    """
    return _plan(instance, pricing).objective


def _targets(plan: FluidPlan) -> dict[str, object]:
    return {
        "prefill_target": tuple(float(v) for v in plan.x),
        "queue_target": tuple(float(v) for v in plan.q_p),
        "prefill_share": plan.prefilling,
    }


def plan_start(plan: FluidPlan) -> dict[str, np.ndarray]:
    """Return the plan's steady state as a simulator starting point (per GPU and class)."""
    return {"x": plan.x, "y": plan.y_m + plan.y_s, "q_p": plan.q_p}


def solo_share(instance: Instance, plan: FluidPlan) -> tuple[float, ...]:
    """Return ``p_s,i``: the share of class-i decode completions the plan serves solo."""
    solo = instance.mu_solo * plan.y_s
    total = solo + instance.mu_mixed * plan.y_m
    share = np.divide(solo, total, out=np.ones_like(solo), where=total > 0)
    return tuple(float(v) for v in share)


def make_policy(
    name: str, instance: Instance, plan: FluidPlan | None = None
) -> tuple[Policy, FluidPlan]:
    """Return the policy called ``name`` with targets from ``plan`` (solved when omitted)."""
    if name not in POLICY_NAMES:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
    if plan is None:
        plan = _plan(instance, scored_pricing(name), sli=name == "SLI-GG")
    targets = _targets(plan)
    if name in ("GG-SP", "GG-SP-hold"):
        hold = name == "GG-SP-hold"
        policy = Policy(name, "gate", partition=True, hold_prefills=hold, **targets)  # type: ignore[arg-type]
    elif name == "PR-SP":
        ratio = instance.output / instance.prompt
        order = tuple(int(i) for i in np.argsort(-ratio, kind="stable"))
        policy = Policy(name, "priority", partition=True, priority=order, **targets)  # type: ignore[arg-type]
    elif name == "SLI-GG":
        # NOTE: the LP optimum is not unique in the per-class split of y_m and y_s, so the
        # solo shares follow whichever optimal vertex HiGHS returns (deterministic for a
        # given HiGHS version and model).
        policy = Policy(
            name,
            "gate",
            partition=True,
            router="randomized",
            solo_share=solo_share(instance, plan),
            **targets,  # type: ignore[arg-type]
        )
    elif name == "FI-WSP":
        policy = Policy(name, "fcfs", partition=False, coupled=True)
    elif name == "GI-WSP":
        policy = Policy(name, "gate", partition=False, coupled=True, **targets)  # type: ignore[arg-type]
    elif name == "GF-WSP":
        policy = Policy(name, "gate", partition=False, decode_first=False, **targets)  # type: ignore[arg-type]
    else:  # FG-SP
        policy = Policy(name, "fcfs", partition=True, **targets)  # type: ignore[arg-type]
    return policy, plan


def run_policy(
    name: str,
    instance: Instance,
    *,
    gpus: int | None = None,
    horizon: float = DEFAULT_HORIZON,
    seed: int = 0,
    plan: FluidPlan | None = None,
) -> PolicyOutcome:
    """Simulate the policy ``name`` on ``instance`` and return its outcome.

    Prioritize-and-route is scored under separate pricing, every other policy under bundled
    pricing, and the outcome carries that pricing's LP value as its bound. Runs start from the
    LP plan's state (see :func:`plan_start`).
    """
    policy, plan = make_policy(name, instance, plan)
    pricing = scored_pricing(name)
    sim = simulate(
        instance,
        policy,
        gpus=gpus,
        horizon=horizon,
        seed=seed,
        pricing=pricing,
        start=plan_start(plan),
    )
    return PolicyOutcome(policy, plan, sim, revenue_bound(instance, pricing))


HEURISTICS: dict[str, Callable[[Instance], PolicyOutcome]] = {
    name: partial(run_policy, name) for name in POLICY_NAMES
}
