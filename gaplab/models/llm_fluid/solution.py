"""The LP plan (the Solution of the exact variants), its validator and its revenue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gaplab.models.llm_fluid.build import BUNDLED, tpot_ratio
from gaplab.models.llm_fluid.instance import Instance, ServiceLevels

TOLERANCE = 1e-6
"""Absolute slack allowed on capacity and balance rows, per GPU."""


@dataclass(frozen=True)
class Duals:
    """Shadow prices of the LP rows (revenue per GPU per second per unit of the row).

    ``prefill_capacity``, ``mixed_slots`` and ``solo_slots`` are the multipliers often written
    alpha, beta and delta. ``prefill_balance`` is phi_i, the value of one more class-i arrival
    per second per GPU. ``decode_value`` is eta_i, the value of one finished class-i prefill
    (the negated dual of the decode balance row).
    """

    prefill_capacity: float
    mixed_slots: float
    solo_slots: float
    prefill_balance: np.ndarray
    decode_value: np.ndarray


@dataclass
class FluidPlan:
    """Optimal steady state of a fluid LP, per GPU.

    Attributes
    ----------
    pricing
        ``bundled`` or ``separate``.
    x, y_m, y_s, q_p, q_d
        Per-class prefill share, mixed and solo decode streams, prefill queue and decode buffer
        mass, all per GPU.
    objective
        LP objective: revenue per GPU per second minus service-level penalties.
    duals
        Shadow prices, or ``None`` when the solver returned none.
    service_levels
        Service levels the plan was solved under (inactive for the plain LPs).
    """

    pricing: str
    x: np.ndarray
    y_m: np.ndarray
    y_s: np.ndarray
    q_p: np.ndarray
    q_d: np.ndarray
    objective: float
    duals: Duals | None = None
    service_levels: ServiceLevels = field(default_factory=ServiceLevels)

    @property
    def prefilling(self) -> float:
        """Share of GPUs running a prefill, ``sum_i x_i``."""
        return float(self.x.sum())

    def partition(self, gpus: int) -> int:
        """Return M, the number of GPUs that reserve a prefill slot: ``ceil(n sum_i x_i)``."""
        return int(np.ceil(gpus * self.prefilling - 1e-9))

    def table(self, instance: Instance) -> pd.DataFrame:
        """Return the plan as one row per class."""
        return pd.DataFrame(
            {"x": self.x, "y_m": self.y_m, "y_s": self.y_s, "q_p": self.q_p, "q_d": self.q_d},
            index=pd.Index(list(instance.classes), name="class"),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "pricing": self.pricing,
            "objective": self.objective,
            **{k: getattr(self, k).tolist() for k in ("x", "y_m", "y_s", "q_p", "q_d")},
        }
        if self.duals is not None:
            data["duals"] = {
                "prefill_capacity": self.duals.prefill_capacity,
                "mixed_slots": self.duals.mixed_slots,
                "solo_slots": self.duals.solo_slots,
                "prefill_balance": self.duals.prefill_balance.tolist(),
                "decode_value": self.duals.decode_value.tolist(),
            }
        return data


def decode_rate(instance: Instance, plan: FluidPlan) -> np.ndarray:
    """Return the class decode completion rates per GPU (1/s)."""
    return plan.y_m * instance.mu_mixed + plan.y_s * instance.mu_solo


def revenue(instance: Instance, plan: FluidPlan) -> float:
    """Return the revenue per GPU per second of ``plan`` under its pricing, without penalties."""
    if plan.pricing == BUNDLED:
        return float(instance.bundled_price @ decode_rate(instance, plan))
    prefill_rate = plan.x * instance.mu_prefill
    return float(
        instance.price_prefill * instance.prompt @ prefill_rate
        + instance.price_decode * instance.output @ decode_rate(instance, plan)
    )


def penalty(instance: Instance, plan: FluidPlan) -> float:
    """Return the service-level penalty of ``plan`` (revenue per GPU per second)."""
    levels = plan.service_levels
    total = 0.0
    if instance.size > 1:
        total += levels.prefill_fairness_weight * float(plan.x.max() - plan.x.min())
        total += levels.decode_fairness_weight * float(plan.y_s.max() - plan.y_s.min())
    if levels.tpot_weight > 0:
        total += levels.tpot_weight * tpot_ratio(instance, plan.prefilling)
    return total


def evaluate(instance: Instance, plan: FluidPlan) -> float:
    """Return the plan's objective recomputed from the instance: revenue minus penalties."""
    return revenue(instance, plan) - penalty(instance, plan)


def validate(instance: Instance, plan: FluidPlan, tolerance: float = TOLERANCE) -> list[str]:
    """List the capacity, balance and service-level rows that ``plan`` violates.

    Returns an empty list for a feasible plan. Tolerances are absolute, per GPU.
    """
    problems: list[str] = []
    B = instance.batch_size
    size = instance.size
    for name in ("x", "y_m", "y_s", "q_p", "q_d"):
        values = np.asarray(getattr(plan, name), dtype=float)
        if values.shape != (size,):
            return [f"{name} has shape {values.shape}, expected ({size},)"]
        if not np.isfinite(values).all():
            problems.append(f"{name} has non-finite entries")
        elif (values < -tolerance).any():
            problems.append(f"{name} is negative: min {values.min():.3g}")
    if problems:
        return problems

    X = plan.prefilling
    if 1 + tolerance < X:
        problems.append(f"prefill capacity: sum x = {X:.6g} > 1")
    if plan.y_m.sum() > (B - 1) * X + tolerance:
        problems.append(f"mixed slots: sum y_m = {plan.y_m.sum():.6g} > (B-1) sum x")
    if plan.y_s.sum() > B * (1 - X) + tolerance:
        problems.append(f"solo slots: sum y_s = {plan.y_s.sum():.6g} > B (1 - sum x)")

    prefill_done = plan.x * instance.mu_prefill
    gap = instance.lam - instance.theta * plan.q_p - prefill_done
    for label, value in zip(instance.classes, gap, strict=True):
        if abs(value) > tolerance:
            problems.append(f"prefill balance of class {label!r} is off by {value:.3g} per second")
    gap = prefill_done - instance.theta * plan.q_d - decode_rate(instance, plan)
    for label, value in zip(instance.classes, gap, strict=True):
        if abs(value) > tolerance:
            problems.append(f"decode balance of class {label!r} is off by {value:.3g} per second")

    levels = plan.service_levels
    if levels.active and (plan.q_d > tolerance).any():
        problems.append("service-level plans need an empty decode buffer, but q_d > 0")
    if levels.prefill_fairness is not None and plan.x.max() - plan.x.min() > (
        levels.prefill_fairness + tolerance
    ):
        problems.append(f"prefill fairness: max x_i - x_j exceeds {levels.prefill_fairness}")
    if levels.decode_fairness is not None and plan.y_s.max() - plan.y_s.min() > (
        levels.decode_fairness + tolerance
    ):
        problems.append(f"decode fairness: max y_s,i - y_s,j exceeds {levels.decode_fairness}")
    if levels.tpot is not None and tpot_ratio(instance, X) > levels.tpot + tolerance:
        problems.append(
            f"time per output token {tpot_ratio(instance, X):.5g} s exceeds {levels.tpot} s"
        )
    return problems


def admission(instance: Instance, plan: FluidPlan, tolerance: float = 1e-7) -> pd.DataFrame:
    """Explain from the duals which classes the plan admits fully, partly or not at all.

    Slot prices: ``mixed_slots`` (beta) and ``solo_slots`` (delta) value one decode slot per
    second. A class-i request that finishes its prefill is worth its decode value
    ``eta_i = w_i - delta D_i / gamma`` after paying for its solo slot time (bundled pricing).
    Running a prefill of class i instead of solo decodes costs
    ``kappa = alpha + B delta - (B-1) beta`` per unit of GPU time and earns
    ``eta_i mu_p,i``. Classes with ``eta_i mu_p,i > kappa`` are fully admitted, classes at equality
    are marginal (partly admitted), and classes below kappa are not admitted.

    Returns
    -------
    pandas.DataFrame
        One row per class: admitted share, status, decode value, index, kappa and a reason.
    """
    if plan.duals is None:
        raise ValueError("the plan has no duals; solve the LP with a backend that reports them")
    duals = plan.duals
    B = instance.batch_size
    kappa = duals.prefill_capacity + B * duals.solo_slots - (B - 1) * duals.mixed_slots
    value = duals.decode_value
    if plan.pricing != BUNDLED:
        # Separate pricing pays the prompt at prefill completion, before the decode.
        value = value + instance.price_prefill * instance.prompt
    index = value * instance.mu_prefill
    share = np.divide(
        plan.x * instance.mu_prefill,
        instance.lam,
        out=np.ones(instance.size),
        where=instance.lam > 0,
    )
    scale = max(1.0, abs(kappa))
    rows = []
    for i, label in enumerate(instance.classes):
        margin = (index[i] - kappa) / scale
        if share[i] >= 1 - tolerance:
            status = "full"
        elif plan.x[i] <= tolerance:
            status = "none"
        else:
            status = "partial"
        if margin > 1e-6:
            reason = (
                "earns more per unit of prefill time than the slots it displaces (index > kappa)"
            )
        elif margin < -1e-6:
            reason = (
                "earns less per unit of prefill time than the slots it displaces (index < kappa)"
            )
        else:
            reason = "marginal: index equals kappa, so it fills the capacity the others leave"
        rows.append(
            {
                "class": label,
                "admitted_share": float(share[i]),
                "status": status,
                "decode_value": float(value[i]),
                "index": float(index[i]),
                "kappa": float(kappa),
                "arrival_value": float(duals.prefill_balance[i]),
                "reason": reason,
            }
        )
    return pd.DataFrame(rows).set_index("class")
