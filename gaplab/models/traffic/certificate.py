"""KKT and Wardrop residuals of any split: how close it is to the certified optimum.

With route marginal costs ``M_ij = C_ij(x_ij) + p_j`` the split is optimal exactly when it is
feasible, the prices are consistent (``p_j = C_j(X_j)``), and every source is at its best
response: all its used routes share one cost ``alpha_i`` and no unused route is cheaper. The
residuals below measure each of these conditions; all are zero at the optimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gaplab.models.traffic.best_response import best_response
from gaplab.models.traffic.delay import access_marginal, node_marginal, objective
from gaplab.models.traffic.instance import Instance

USED_ROUTE = 1e-7
"""A route with flow above this counts as used."""

TOLERANCES = {
    "conservation": 1e-8,
    "nonnegativity": 1e-10,
    "access_capacity": 1e-10,
    "node_capacity": 1e-10,
    "price_consistency": 1e-8,
    "fixed_point": 1e-6,
    "kkt_complementarity": 1e-8,
    "active_stationarity": 1e-6,
    "inactive_complementarity": 1e-8,
    "objective_gap": 1e-7,
}
"""Default tolerance of each residual (absolute, except ``objective_gap`` which is relative)."""

DESCRIPTIONS = {
    "conservation": "max_i |sum_j x_ij - lambda_i|",
    "nonnegativity": "max(-x_ij, 0)",
    "access_capacity": "max(x_ij - mu_ij, 0) over paths; any flow on a missing path",
    "node_capacity": "max(X_j - mu_j, 0)",
    "price_consistency": "max_j |p_j - C_j(X_j)|",
    "fixed_point": "max |x - BR(p)|",
    "kkt_complementarity": "max x_ij (M_ij - min_j M_ij)",
    "active_stationarity": "max over used routes |M_ij - alpha_i|",
    "inactive_complementarity": "max_i (min over used M_ij - min over unused M_ij), or 0",
    "objective_gap": "|F - F*| / F*",
}


@dataclass(frozen=True)
class Certificate:
    """Residuals of one split; ``None`` marks a residual that was not computed."""

    residuals: dict[str, float | None]
    tolerances: dict[str, float]
    alpha: np.ndarray
    """Per-source equalized cost ``alpha_i``: mean ``M_ij`` over used routes, flow-weighted."""

    @property
    def ok(self) -> bool:
        """True when every computed residual is within its tolerance."""
        return not self.failures()

    def failures(self) -> list[str]:
        """Names of the residuals above their tolerance."""
        return [
            name
            for name, value in self.residuals.items()
            if value is not None and not value <= self.tolerances[name]
        ]

    def table(self) -> pd.DataFrame:
        """Tabulate each residual with its value, tolerance, verdict and definition."""
        rows = []
        for name, value in self.residuals.items():
            rows.append(
                {
                    "residual": name,
                    "value": value,
                    "tolerance": self.tolerances[name],
                    "ok": None if value is None else bool(value <= self.tolerances[name]),
                    "definition": DESCRIPTIONS[name],
                }
            )
        return pd.DataFrame(rows).set_index("residual")


def certify(
    instance: Instance,
    flows: np.ndarray,
    prices: np.ndarray | None = None,
    *,
    reference: float | None = None,
    tolerances: dict[str, float] | None = None,
) -> Certificate:
    """Compute the KKT and Wardrop residuals of ``flows``.

    Parameters
    ----------
    instance
        The instance.
    flows
        The (N, M) split to check.
    prices
        Broadcast node prices. When ``None`` the consistent prices ``C_j(X_j)`` are used and the
        price-consistency residual is not computed.
    reference
        Optimal objective ``F*``; enables the relative objective gap.
    tolerances
        Overrides of :data:`TOLERANCES`.
    """
    x = np.asarray(flows, dtype=float)
    if x.shape != (instance.num_sources, instance.num_nodes):
        raise ValueError(
            f"flows must have shape {(instance.num_sources, instance.num_nodes)}, got {x.shape}"
        )
    limits = {**TOLERANCES, **(tolerances or {})}
    links = instance.links
    loads = x.sum(axis=0)
    consistent = node_marginal(instance, loads)
    p = consistent if prices is None else np.asarray(prices, dtype=float)

    residuals: dict[str, float | None] = {}
    residuals["conservation"] = float(np.max(np.abs(x.sum(axis=1) - instance.rates)))
    residuals["nonnegativity"] = float(max(0.0, -x.min()))
    over_path = np.where(links, x - instance.access_capacity, np.abs(x))
    residuals["access_capacity"] = float(max(0.0, over_path.max()))
    residuals["node_capacity"] = float(max(0.0, (loads - instance.node_capacity).max()))
    residuals["price_consistency"] = (
        None if prices is None else float(np.max(np.abs(p - consistent)))
    )

    feasible = residuals["access_capacity"] == 0 and residuals["node_capacity"] == 0
    alpha = np.full(instance.num_sources, np.nan)
    if not (feasible and np.all(np.isfinite(p))):
        for name in ("fixed_point", "kkt_complementarity", "active_stationarity"):
            residuals[name] = float("inf")
        residuals["inactive_complementarity"] = float("inf")
    else:
        response, _ = best_response(instance, p)
        residuals["fixed_point"] = float(np.max(np.abs(x - response)))
        # Equal loads at capacity were excluded above, so every M_ij on a path is finite.
        route = np.where(links, access_marginal(instance, x) + p[None, :], np.inf)
        cheapest = route.min(axis=1)
        residuals["kkt_complementarity"] = float(
            np.max(np.clip(x, 0.0, None) * np.where(links, route - cheapest[:, None], 0.0))
        )
        used = links & (x > USED_ROUTE)
        weight = np.where(used, x, 0.0)
        alpha = (weight * np.where(used, route, 0.0)).sum(axis=1) / weight.sum(axis=1)
        residuals["active_stationarity"] = float(
            np.max(np.where(used, np.abs(route - alpha[:, None]), 0.0))
        )
        min_used = np.where(used, route, np.inf).min(axis=1)
        min_unused = np.where(links & ~used, route, np.inf).min(axis=1)
        shortfall = np.where(np.isfinite(min_unused), min_used - min_unused, 0.0)
        residuals["inactive_complementarity"] = float(max(0.0, shortfall.max()))
    if reference is not None:
        value = objective(instance, x)
        residuals["objective_gap"] = abs(value - reference) / abs(reference)
    else:
        residuals["objective_gap"] = None
    return Certificate(residuals=residuals, tolerances=limits, alpha=alpha)


def lower_bound(instance: Instance, flows: np.ndarray) -> float:
    """Return a lower bound on ``F*`` from a feasible split, by convexity (Frank-Wolfe gap).

    For every feasible ``y``, ``F(y) >= F(x) + sum_ij M_ij (y_ij - x_ij)``, and the right side
    is smallest when each source sends everything over its cheapest route, so
    ``F* >= F(x) - sum_ij x_ij (M_ij - min_j M_ij)``. Returns ``-inf`` when ``x`` is outside
    the domain.
    """
    x = np.asarray(flows, dtype=float)
    value = objective(instance, x)
    if not np.isfinite(value) or x.min() < 0:
        return float("-inf")
    route = np.where(
        instance.links,
        access_marginal(instance, x) + node_marginal(instance, x.sum(axis=0))[None, :],
        np.inf,
    )
    if not np.all(np.isfinite(route[instance.links])):
        return float("-inf")
    excess = np.where(instance.links, route - route.min(axis=1, keepdims=True), 0.0)
    return value - float((x * excess).sum())
