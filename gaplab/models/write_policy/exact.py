"""Exact hindsight optima without a solver: the WRITE-only knapsack by dynamic programming and
the closed-form F1-optimal set.

Only the final memory is scored, so any final set is reachable by writing exactly that set at
its own steps and never expiring. Memory then only grows, so the budget is met at every step
whenever the final set fits. The hindsight optimum is therefore the 0/1 knapsack
``max sum u_t x_t`` subject to ``sum c_t x_t <= B``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gaplab.models.write_policy.instance import Instance

logger = logging.getLogger(__name__)

MAX_DP_CELLS = 200_000_000
"""Largest table (items times budget bytes) the DP builds, about 200 MB of booleans."""


@dataclass(frozen=True)
class KnapsackOptimum:
    """An optimal WRITE-only selection."""

    value: float
    steps: tuple[int, ...]
    bytes_used: int


def knapsack_dp(costs: np.ndarray, values: np.ndarray, budget: int) -> KnapsackOptimum:
    """Solve the 0/1 knapsack ``max values @ x`` s.t. ``costs @ x <= budget`` exactly.

    Runs in O(n B) time with one numpy pass per item over the budget axis, and keeps one
    boolean row per item to recover the selection.

    Parameters
    ----------
    costs
        Non-negative integer weights in bytes.
    values
        Non-negative values.
    budget
        Capacity in bytes, at least 0.

    Raises
    ------
    ValueError
        When the table would have more than :data:`MAX_DP_CELLS` cells; use the MILP then.
    """
    costs = np.asarray(costs, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if budget < 0:
        raise ValueError(f"budget is {budget}; the knapsack needs a budget of at least 0 bytes")
    if (costs < 0).any() or (values < 0).any():
        raise ValueError("knapsack costs and values must be non-negative")
    n = len(costs)
    total = int(costs.sum())
    if total <= budget:
        return KnapsackOptimum(float(values.sum()), tuple(range(n)), total)
    if n * (budget + 1) > MAX_DP_CELLS:
        raise ValueError(
            f"a DP over {n} items and {budget} bytes needs {n * (budget + 1)} cells, above "
            f"{MAX_DP_CELLS}; solve the write-only MILP instead"
        )

    best = np.zeros(budget + 1)
    take = np.zeros((n, budget + 1), dtype=bool)
    for i in range(n):
        c = int(costs[i])
        if c > budget:
            continue
        candidate = best[: budget + 1 - c] + values[i]
        better = candidate > best[c:]
        take[i, c:] = better
        best[c:] = np.where(better, candidate, best[c:])

    chosen: list[int] = []
    capacity = budget
    for i in range(n - 1, -1, -1):
        if take[i, capacity]:
            chosen.append(i)
            capacity -= int(costs[i])
    chosen.reverse()
    return KnapsackOptimum(float(best[budget]), tuple(chosen), int(costs[chosen].sum()))


def write_only_optimum(instance: Instance) -> KnapsackOptimum:
    """Return the WRITE-only hindsight optimum U*(B) of ``instance`` by dynamic programming."""
    return knapsack_dp(instance.costs, instance.values, int(instance.budget_bytes))


@dataclass(frozen=True)
class F1Optimum:
    """The F1-optimal WRITE-only set: the cheapest critical steps that fit."""

    f1: float
    steps: tuple[int, ...]
    bytes_used: int


def f1_optimum(instance: Instance) -> F1Optimum:
    """Return the WRITE-only set with the highest F1 score on the critical steps.

    A non-critical step only enlarges the denominator of ``F1 = 2 |W cap R| / (|W| + |R|)``,
    and F1 grows with ``|W cap R|`` when W is a subset of R, so the optimum keeps as many
    critical steps as fit: the cheapest ones first.
    """
    critical = np.asarray(instance.critical_steps, dtype=np.int64)
    if len(critical) == 0:
        return F1Optimum(0.0, (), 0)
    costs = instance.costs[critical]
    order = np.argsort(costs, kind="stable")
    filled = np.cumsum(costs[order])
    count = int(np.searchsorted(filled, instance.budget_bytes, side="right"))
    steps = tuple(sorted(int(t) for t in critical[order[:count]]))
    used = int(filled[count - 1]) if count else 0
    return F1Optimum(2.0 * count / (count + len(critical)), steps, used)


REFERENCE_DP_MAX_BUDGET = 2048
"""WritePolicyBench's evaluator runs its exact DP only up to this budget in bytes."""

REFERENCE_DP_MAX_CELLS = 25_000_000
"""The evaluator's exact DP also needs steps times budget bytes at or below this."""


def reference_oracle_value(costs: np.ndarray, values: np.ndarray, budget: int) -> float:
    """Return U*(B) as WritePolicyBench's evaluator computes it, which is not always optimal.

    The evaluator solves the knapsack exactly only for small budgets (see
    :data:`REFERENCE_DP_MAX_BUDGET`). Above them it sorts the steps by (value per byte, bytes,
    value) in decreasing order and adds each one that fits. One pass then swaps each skipped
    step for the first picked step that it can replace with a higher value. Skipped steps
    are recognised by their (bytes, value) pair, so a step is never swapped in while an equal
    pair is picked.
    """
    costs = np.asarray(costs, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    if int(costs.sum()) <= budget:
        return float(values.sum())
    if budget <= REFERENCE_DP_MAX_BUDGET and len(costs) * budget <= REFERENCE_DP_MAX_CELLS:
        return knapsack_dp(costs, values, budget).value

    ranked = sorted(
        ((v / w if w > 0 else 0.0, int(w), float(v)) for w, v in zip(costs, values, strict=True)),
        reverse=True,
    )
    used = 0
    total = 0.0
    picked: list[tuple[int, float]] = []
    for _, w, v in ranked:
        if used + w <= budget:
            used += w
            total += v
            picked.append((w, v))
    skipped = [(w, v) for _, w, v in ranked if (w, v) not in picked]
    for w_new, v_new in skipped:
        for i, (w_old, v_old) in enumerate(picked):
            if used - w_old + w_new <= budget and v_new > v_old:
                used += w_new - w_old
                total += v_new - v_old
                picked[i] = (w_new, v_new)
                break
    return total
