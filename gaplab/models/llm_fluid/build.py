"""Build the steady-state fluid LPs of llm-fluid with gaplab.modeling.

All variables are long-run averages per GPU over the index set ``classes``:

- ``x``: share of GPU time spent prefilling class i (equivalently prefills in service per GPU),
- ``y_m``, ``y_s``: class-i decode streams per GPU on mixed and on solo GPUs,
- ``q_p``, ``q_d``: class-i requests per GPU waiting for a prefill and for a decode slot.

The feasible set is the same for every variant: three aggregate capacity rows and two
per-class balance families. The variants differ in the objective and in added rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gaplab.modeling import LinExpr, Model, Variable
from gaplab.models.llm_fluid.instance import Instance, ServiceLevels

BUNDLED = "bundled"
SEPARATE = "separate"


@dataclass
class FluidModel:
    """A built LP with handles on its variable blocks."""

    model: Model
    pricing: str
    x: Variable
    y_m: Variable
    y_s: Variable
    q_p: Variable
    q_d: Variable
    tpot_value: Variable | None = None
    """Epigraph variable of the average time per output token (seconds), with a TPOT penalty."""


def _class_series(instance: Instance, values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.Index(list(instance.classes), name="classes"))


def build(
    instance: Instance,
    pricing: str = BUNDLED,
    *,
    zero_decode_buffer: bool = False,
    service_levels: ServiceLevels | None = None,
    tpot_cuts: list[float] | None = None,
) -> FluidModel:
    """Declare the steady-state fluid LP of ``instance``.

    Parameters
    ----------
    instance
        The serving system.
    pricing
        ``"bundled"`` (each request pays ``w_i`` at decode completion) or ``"separate"``
        (prompt tokens are paid at prefill completion and output tokens at decode completion).
    zero_decode_buffer
        Fix ``q_d = 0``, as the service-level variants assume.
    service_levels
        Hard bounds and penalties added to the objective (bundled pricing only).
    tpot_cuts
        Points X at which the convex TPOT ratio is linearised when ``tpot_weight > 0``;
        see :func:`tpot_ratio`.

    Returns
    -------
    FluidModel
        The model and its variable blocks; nothing is solved here.
    """
    if pricing not in (BUNDLED, SEPARATE):
        raise ValueError(f"unknown pricing {pricing!r}; choose {BUNDLED!r} or {SEPARATE!r}")
    levels = service_levels or ServiceLevels()
    if levels.active and pricing != BUNDLED:
        raise ValueError(
            "service-level constraints and penalties are defined for bundled pricing only; "
            f"got pricing={pricing!r}"
        )

    B = instance.batch_size
    zero_decode_buffer = zero_decode_buffer or levels.active  # service levels assume q_d = 0
    m = Model(f"llm-fluid-{pricing}" + ("-sli" if levels.active else ""))
    classes = m.index("classes", list(instance.classes))
    x = m.continuous("x", classes)
    y_m = m.continuous("y_m", classes)
    y_s = m.continuous("y_s", classes)
    q_p = m.continuous("q_p", classes)
    q_d = m.continuous("q_d", classes, upper=0.0 if zero_decode_buffer else np.inf)

    mu_p = _class_series(instance, instance.mu_prefill)
    mu_m = _class_series(instance, instance.mu_mixed)
    mu_s = _class_series(instance, instance.mu_solo)
    theta = _class_series(instance, instance.theta)
    lam = _class_series(instance, instance.lam)

    # Capacity: at most one prefill per GPU; a prefilling GPU keeps B-1 decode slots, a solo
    # GPU keeps B.
    prefilling = x.sum()
    m.subject_to("prefill_capacity", prefilling <= 1)
    m.subject_to("mixed_slots", y_m.sum() - (B - 1) * prefilling <= 0)
    m.subject_to("solo_slots", y_s.sum() + B * prefilling <= B)

    # Flow balance per class: arrivals either start a prefill or abandon, and every finished
    # prefill either completes its decode or abandons the decode buffer.
    prefill_done = x * mu_p
    decode_done = y_m * mu_m + y_s * mu_s
    m.subject_to("prefill_balance", prefill_done + q_p * theta == lam)
    m.subject_to("decode_balance", prefill_done - q_d * theta - decode_done == 0)

    if pricing == BUNDLED:
        revenue = (decode_done * _class_series(instance, instance.bundled_price)).sum()
    else:
        prompt_value = _class_series(instance, instance.price_prefill * instance.prompt)
        output_value = _class_series(instance, instance.price_decode * instance.output)
        revenue = (prefill_done * prompt_value).sum() + (decode_done * output_value).sum()

    fluid = FluidModel(m, pricing, x, y_m, y_s, q_p, q_d)
    penalty = _add_service_levels(fluid, instance, levels, tpot_cuts or [])
    m.maximize(revenue - penalty if penalty is not None else revenue)
    return fluid


def _ordered_pairs(size: int) -> tuple[np.ndarray, np.ndarray]:
    first, second = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    keep = first != second
    return first[keep], second[keep]


def _pair_gaps(fluid: FluidModel, instance: Instance, var: Variable, name: str) -> LinExpr:
    """Return ``var_i - var_j`` over the ordered pairs ``(i, j)``, i != j."""
    first, second = _ordered_pairs(instance.size)
    labels = np.array(instance.classes, dtype=object)
    pairs = pd.MultiIndex.from_arrays([labels[first], labels[second]], names=["i", "j"])
    index = pd.Index([f"{a}>{b}" for a, b in pairs], name=f"{name}_pair")
    left = var.at(pd.Series(labels[first], index=index))
    right = var.at(pd.Series(labels[second], index=index))
    return left - right


def tpot_coefficients(instance: Instance) -> tuple[float, float]:
    """Return ``(a, b)`` with average time per output token ``(a X + b) / (B - X)``.

    With every slot occupied, a share X of prefilling GPUs gives ``(B-1) X`` mixed streams at
    ``tau`` seconds per token and ``B (1 - X)`` solo streams at ``1 / gamma``; the stream
    count is ``B - X``.
    """
    B = instance.batch_size
    return instance.tau * (B - 1) - B / instance.gamma, B / instance.gamma


def tpot_ratio(instance: Instance, prefilling: float) -> float:
    """Return the average time per output token (seconds) at prefill share ``prefilling``."""
    a, b = tpot_coefficients(instance)
    return (a * prefilling + b) / (instance.batch_size - prefilling)


def _tpot_slope(instance: Instance, prefilling: float) -> float:
    a, b = tpot_coefficients(instance)
    B = instance.batch_size
    return (a * B + b) / (B - prefilling) ** 2


def _add_service_levels(
    fluid: FluidModel, instance: Instance, levels: ServiceLevels, tpot_cuts: list[float]
) -> LinExpr | None:
    """Add the hard service-level rows and return the penalty expression (or ``None``)."""
    if not levels.active:
        return None
    m = fluid.model
    prefilling = fluid.x.sum()
    penalty: LinExpr | None = None

    if instance.size > 1:
        if levels.prefill_fairness is not None:
            gaps = _pair_gaps(fluid, instance, fluid.x, "prefill")
            m.subject_to("prefill_fairness", gaps <= levels.prefill_fairness)
        if levels.decode_fairness is not None:
            gaps = _pair_gaps(fluid, instance, fluid.y_s, "decode")
            m.subject_to("decode_fairness", gaps <= levels.decode_fairness)
        for weight, var, name in (
            (levels.prefill_fairness_weight, fluid.x, "prefill"),
            (levels.decode_fairness_weight, fluid.y_s, "decode"),
        ):
            if weight > 0:
                # Epigraph of max_{i != j} (v_i - v_j): z >= every ordered-pair gap.
                z = m.continuous(f"{name}_gap")
                m.subject_to(f"{name}_gap_epigraph", _pair_gaps(fluid, instance, var, name) <= z)
                penalty = z * weight if penalty is None else penalty + z * weight

    if levels.tpot is not None:
        # (a X + b) / (B - X) <= eta_3 with B - X > 0 is the linear row a X + b <= eta_3 (B - X).
        a, b = tpot_coefficients(instance)
        B = instance.batch_size
        m.subject_to("tpot", prefilling * (a + levels.tpot) <= B * levels.tpot - b)

    if levels.tpot_weight > 0:
        # The ratio is convex in X when a B + b > 0 (tau > 1/gamma), so it is the maximum of its
        # tangents; an epigraph variable above a set of tangents is exact at the tangent points
        # and a lower bound elsewhere. solve_fluid refines the points until the two agree.
        s = m.continuous("tpot_value", lower=0.0)
        points = sorted(set(tpot_cuts) | {0.0, 1.0})
        slopes = np.array([_tpot_slope(instance, p) for p in points])
        values = np.array([tpot_ratio(instance, p) for p in points])
        cuts = m.index("tpot_cut", range(len(points)))
        m.subject_to(
            "tpot_tangent",
            s.expand(cuts) - prefilling.expand(cuts) * slopes >= values - slopes * np.array(points),
        )
        fluid.tpot_value = s
        term = s * levels.tpot_weight
        penalty = term if penalty is None else penalty + term
    return penalty
