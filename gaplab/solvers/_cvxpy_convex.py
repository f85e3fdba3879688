"""Separable convex terms as cvxpy atoms that follow the DCP rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gaplab.modeling.compiled import CompiledModel
from gaplab.modeling.convex import ConvexTerm


def convex_objective(model: CompiledModel, times: Callable[[Any], Any]) -> tuple[Any, list[Any]]:
    """Return the sum of the model's convex terms and the constraints that keep them in domain.

    ``times(matrix)`` returns the cvxpy expression ``matrix @ x``. Weights are nonnegative
    when minimizing and nonpositive when maximizing, so each weighted sum is convex or
    concave as the objective's sense needs.
    """
    total: Any = 0.0
    domain: list[Any] = []
    for term in model.convex:
        value, constraints = _term_expression(term, times(term.A) + term.b)
        total = total + value
        domain.extend(constraints)
    return total, domain


def _term_expression(term: ConvexTerm, u: Any) -> tuple[Any, list[Any]]:
    import cvxpy as cp

    weight = np.asarray(term.weight, dtype=float)
    if term.kind == "square":
        return weight @ cp.square(u), []
    if term.kind == "exp":
        return weight @ cp.exp(u), []
    if term.kind == "mm1":
        # u / (c - u) = c / (c - u) - 1, and c * inv_pos(c - u) is convex in u.
        capacity = np.asarray(term.params["capacity"], dtype=float)
        value = weight @ cp.multiply(capacity, cp.inv_pos(capacity - u)) - float(weight.sum())
        return value, [u >= 0]
    if term.kind == "power":
        # cvxpy's power takes one exponent, so the rows are grouped by exponent.
        exponent = np.asarray(term.params["exponent"], dtype=float)
        powers: Any = 0.0
        for p in np.unique(exponent):
            rows = np.flatnonzero(exponent == p)
            powers = powers + weight[rows] @ cp.power(u[rows], float(p))
        return powers, [u >= 0]
    # pwl: the maximum of affine pieces, row by row.
    slopes = np.asarray(term.params["slopes"], dtype=float)
    intercepts = np.asarray(term.params["intercepts"], dtype=float)
    pieces = [cp.multiply(slopes[:, k], u) + intercepts[:, k] for k in range(slopes.shape[1])]
    largest = pieces[0] if len(pieces) == 1 else cp.maximum(*pieces)
    return weight @ largest, []
