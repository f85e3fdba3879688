"""Next-layer expert prediction for prefetching, and its precision on a routing trace.

While layer ``l`` computes, a prefetcher copies one expert of layer ``l + 1`` to the GPU: the
non-resident expert with the highest predicted workload. The predictions come with the trace
(see :mod:`gaplab.models.moe_assign.traces`): ``plain`` applies the next layer's gate to the
current gate input, ``residual`` first adds the calibrated per-layer residual, and ``oracle``
uses the true next-layer workloads as an upper bound.
"""

from __future__ import annotations

import numpy as np

from gaplab.models.moe_assign.traces import RoutingTrace

PREDICTORS = ("none", "plain", "residual", "oracle")


def predicted_workload(trace: RoutingTrace, predictor: str, step: int, layer: int) -> np.ndarray:
    """Return the workloads of ``layer`` that ``predictor`` expected at ``layer - 1``."""
    if predictor == "oracle":
        return trace.workload[step, layer]
    if predictor not in trace.predicted:
        known = ", ".join(["oracle", *trace.predicted])
        raise KeyError(f"unknown predictor {predictor!r}; known: {known}")
    return trace.predicted[predictor][step, layer]


def prefetch_candidate(predicted: np.ndarray, resident: np.ndarray) -> int | None:
    """Return the non-resident expert with the highest predicted workload, or None.

    Experts predicted to receive no token are never fetched; ties go to the lower id.
    """
    score = np.where(resident, -1, predicted)
    best = int(np.argmax(score))
    return best if score[best] > 0 else None


def precision_at_1(trace: RoutingTrace, predictor: str, *, phase: str | None = None) -> float:
    """Fraction of (step, layer >= 1) pairs where the predicted top expert is a true top one.

    The predicted top expert is the argmax of the predicted workloads (ties to the lower id);
    it counts as correct when its true workload equals the layer's largest workload. ``phase``
    restricts the count to ``prefill`` or ``decode`` steps.
    """
    steps = np.arange(trace.steps)
    if phase is not None:
        steps = steps[trace.phase == phase]
    if not len(steps) or trace.layers < 2:
        return 0.0
    if predictor == "oracle":
        return 1.0
    if predictor not in trace.predicted:
        known = ", ".join(["oracle", *trace.predicted])
        raise KeyError(f"unknown predictor {predictor!r}; known: {known}")
    predicted = trace.predicted[predictor][steps, 1:]
    truth = trace.workload[steps, 1:]
    top = np.argmax(predicted, axis=-1)
    chosen = np.take_along_axis(truth, top[..., None], axis=-1)[..., 0]
    return float(np.mean(chosen == truth.max(axis=-1)))
