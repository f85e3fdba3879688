"""Each source's best response to broadcast node prices, in closed form (water-filling).

Given prices ``p_j``, source ``i`` solves

    min_{x >= 0}  sum_j [ x_j (a_ij + 1 / (mu_ij - x_j)) + p_j x_j ]   s.t.  sum_j x_j = lambda_i.

It pays its own access congestion in full and the node congestion at the linear price ``p_j``.
Stationarity ``a_ij + mu_ij / (mu_ij - x_j)^2 + p_j = alpha_i`` gives

    x_j(alpha) = mu_ij (1 - 1 / sqrt(mu_ij (alpha - p_j - a_ij)))   if alpha > p_j + a_ij + 1/mu_ij,

and zero otherwise. ``sum_j x_j(alpha)`` increases strictly above the smallest threshold, so
the multiplier ``alpha_i`` is found by a bracketed root search for every source at once.
"""

from __future__ import annotations

import numpy as np

from gaplab.models.traffic.instance import Instance

MAX_STEPS = 320
"""Root-search steps per call; bisection alone halves the bracket this many times."""


def split_at(alpha: np.ndarray, offset: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """``x_j(alpha)`` for every source and node; ``offset`` is ``p_j + a_ij`` (inf: no path).

    Uses ``1 - q^(-1/2) = -expm1(-log(q) / 2)`` with ``q = mu (alpha - offset)`` for accuracy
    near the threshold ``q = 1``.
    """
    q = capacity * (alpha[:, None] - offset)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = -capacity * np.expm1(-0.5 * np.log(np.where(q > 1.0, q, 1.0)))
    return np.where(q > 1.0, x, 0.0)


def _split_slope(alpha: np.ndarray, offset: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """``d x_j / d alpha`` summed over nodes, per source."""
    gap = alpha[:, None] - offset
    q = capacity * gap
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = 0.5 * np.sqrt(capacity) * np.where(q > 1.0, gap, 1.0) ** -1.5
    return np.where(q > 1.0, slope, 0.0).sum(axis=1)


def best_response(
    instance: Instance, prices: np.ndarray, tolerance: float = 1e-12
) -> tuple[np.ndarray, np.ndarray]:
    """Return every source's best-response split to ``prices`` and its multipliers ``alpha``.

    Parameters
    ----------
    instance
        The instance; only each source's own access capacities and rate are used.
    prices
        Node prices ``p_j`` (M,), finite and nonnegative.
    tolerance
        The root search stops when ``|sum_j x_j - lambda_i| <= tolerance * max(1, lambda_i)``;
        the split is then rescaled to conserve exactly.

    Returns
    -------
    The (N, M) split and the (N,) multipliers ``alpha_i``.
    """
    p = np.asarray(prices, dtype=float)
    if p.shape != (instance.num_nodes,) or not np.all(np.isfinite(p)):
        raise ValueError(
            f"prices must be {instance.num_nodes} finite numbers (one per node), got {p!r}"
        )
    # A common shift of all prices leaves every best response unchanged. Shifting the cheapest
    # node to zero keeps the thresholds accurate when prices are huge near capacity.
    p = p - p.min()
    links = instance.links
    capacity = np.where(links, instance.access_capacity, 1.0)
    offset = np.where(links, p[None, :] + instance.propagation, np.inf)
    rates = instance.rates
    target_tol = tolerance * np.maximum(1.0, rates)

    # Bracket: the sum is zero at the smallest threshold; double the step beyond the largest.
    threshold = np.where(links, offset + 1.0 / capacity, np.inf)
    lo = threshold.min(axis=1)
    hi = np.where(links, threshold, -np.inf).max(axis=1) + 1.0
    width = hi - lo
    for _ in range(200):
        short = split_at(hi, offset, capacity).sum(axis=1) < rates
        if not short.any():
            break
        width = np.where(short, 2.0 * width, width)
        hi = np.where(short, lo + width, hi)

    # Safeguarded Newton: take the Newton step when it stays inside the bracket, else bisect.
    alpha = 0.5 * (lo + hi)
    for _ in range(MAX_STEPS):
        total = split_at(alpha, offset, capacity).sum(axis=1)
        excess = total - rates
        # Stop when every sum is within tolerance or its bracket cannot shrink any further.
        settled = (np.abs(excess) <= target_tol) | (hi - lo <= 4e-16 * np.abs(alpha))
        if np.all(settled):
            break
        hi = np.where(excess > 0, alpha, hi)
        lo = np.where(excess <= 0, alpha, lo)
        slope = _split_slope(alpha, offset, capacity)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = alpha - excess / slope
        inside = (slope > 0) & (newton > lo) & (newton < hi)
        alpha = np.where(inside, newton, 0.5 * (lo + hi))
    x = split_at(alpha, offset, capacity)
    return x * (rates / x.sum(axis=1))[:, None], alpha + float(np.asarray(prices).min())
