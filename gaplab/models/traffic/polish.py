"""Newton polish of a near-optimal split on its active set of routes.

An interior-point solver returns the optimum to about 1e-8. On the set of used routes the KKT
conditions are a square nonlinear system

    C_ij(x_ij) + C_j(X_j) - alpha_i = 0   for used (i, j),   sum_j x_ij = lambda_i,

whose Jacobian is ``[[D + B' E B, -S'], [S, 0]]`` with ``D`` and ``E`` the second derivatives of
the access and node terms, ``B`` the route-to-node and ``S`` the route-to-source incidence.
The Hessian is a diagonal plus one diagonal block per node, so the Newton system reduces to a
dense system in the N multipliers (see :func:`_solve_kkt`). A few Newton steps bring the
residual to round-off. The polish is accepted only when the result stays inside the domain and
no unused route is cheaper than its source's alpha.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from gaplab.models.traffic.delay import access_marginal, node_marginal, objective
from gaplab.models.traffic.instance import Instance

logger = logging.getLogger(__name__)

USED_ROUTE = 1e-7
"""Flow above which a route counts as used."""


def polish(instance: Instance, flows: np.ndarray, steps: int = 8, rounds: int = 20) -> np.ndarray:
    """Return ``flows`` refined by Newton steps on the KKT system of its used routes.

    A route counts as used when it carries more than ``USED_ROUTE`` times its source's rate or
    its marginal cost is within ``1e-6`` (relative) of its source's cheapest route. A route whose
    Newton flow turns negative is dropped, an unused route cheaper than its source's ``alpha``
    is added, and the system solved again, up to ``rounds`` times.
    Returns the input unchanged when no round ends inside the domain with every unused route at
    least as expensive as its source's equalized cost, or when the polish would raise ``F``.
    """
    x0 = np.where(instance.links, np.clip(np.asarray(flows, dtype=float), 0.0, None), 0.0)
    route_cost = access_marginal(instance, x0) + node_marginal(instance, x0.sum(axis=0))[None, :]
    if not np.all(np.isfinite(route_cost[x0 > 0])):
        return x0
    cheapest = route_cost.min(axis=1, keepdims=True)
    near = route_cost - cheapest <= 1e-6 * np.maximum(1.0, np.abs(cheapest))
    used = instance.links & ((x0 > USED_ROUTE * instance.rates[:, None]) | near)
    for _ in range(rounds):
        x, alpha = _newton(instance, x0, used, steps)
        if x is None:
            return x0
        negative = used & (x < 0)
        if negative.any():
            used &= ~negative
            continue
        prices = node_marginal(instance, x.sum(axis=0))
        cost = access_marginal(instance, x) + prices[None, :]
        unused = instance.links & ~used
        scale = np.maximum(1.0, np.abs(alpha))[:, None]
        cheaper = (cost < alpha[:, None] - 1e-9 * scale) & unused
        if cheaper.any():
            used |= cheaper
            continue
        # Compare with the input rescaled to conserve, since solver round-off in conservation
        # can lower F below the optimum.
        conserving = x0 * (instance.rates / x0.sum(axis=1))[:, None]
        if not objective(instance, x) <= objective(instance, conserving) * (1 + 1e-9) + 1e-12:
            logger.debug("polish raised F; keeping the solver's point")
            return x0
        return x
    return x0


def _newton(
    instance: Instance, x0: np.ndarray, used: np.ndarray, steps: int
) -> tuple[np.ndarray | None, np.ndarray]:
    """Newton steps on the KKT system restricted to ``used``; ``None`` when it fails."""
    rows, cols = np.nonzero(used)
    k = rows.size
    n, m = instance.num_sources, instance.num_nodes
    alpha = np.zeros(n)
    if np.any(np.bincount(rows, minlength=n) == 0):
        return None, alpha
    mu = instance.access_capacity[rows, cols]
    mu_node = instance.node_capacity
    S = sp.csr_matrix((np.ones(k), (rows, np.arange(k))), shape=(n, k))
    B = sp.csr_matrix((np.ones(k), (cols, np.arange(k))), shape=(m, k))

    # Start from the given split on the used routes, rescaled to conserve exactly.
    y = np.maximum(x0[rows, cols], 1e-12)
    y *= (instance.rates / np.asarray(S @ y).ravel())[rows]
    for step in range(steps + 1):
        loads = np.asarray(B @ y).ravel()
        if np.any(y >= mu) or np.any(loads >= mu_node):
            logger.debug("polish left the domain at step %d", step)
            return None, alpha
        cost = (
            instance.propagation[rows, cols]
            + mu / (mu - y) ** 2
            + mu_node[cols] / (mu_node[cols] - loads[cols]) ** 2
        )
        if step == 0:
            # The flow-weighted mean cost is a good first multiplier.
            alpha = np.asarray(S @ (cost * y)).ravel() / instance.rates
        residual = np.concatenate([cost - alpha[rows], np.asarray(S @ y).ravel() - instance.rates])
        if step == steps or np.max(np.abs(residual)) < 1e-15 * max(1.0, float(cost.max())):
            break
        d_access = 2.0 * mu / (mu - y) ** 3
        d_node = 2.0 * mu_node / (mu_node - loads) ** 3
        delta = _solve_kkt(d_access, d_node, S, B, residual[:k], residual[k:])
        if delta is None:
            return None, alpha
        y = y + delta[:k]
        alpha = alpha + delta[k:]
    x = np.zeros_like(x0)
    x[rows, cols] = y
    return x, alpha


def _solve_kkt(
    d_access: np.ndarray,
    d_node: np.ndarray,
    S: sp.csr_matrix,
    B: sp.csr_matrix,
    r_route: np.ndarray,
    r_source: np.ndarray,
) -> np.ndarray | None:
    """Solve ``[[D + B' E B, -S'], [S, 0]] [dy; da] = -[r_route; r_source]``.

    Each route belongs to one node, so ``K = E^-1 + B D^-1 B'`` is diagonal and the Woodbury
    identity gives ``H^-1 v = D^-1 v - D^-1 B' K^-1 B D^-1 v``. The multipliers then solve the
    dense N x N system ``S H^-1 S' da = -r_source + S H^-1 r_route``.
    """
    d_inv = 1.0 / d_access
    k_diag = 1.0 / d_node + np.asarray(B @ d_inv).ravel()

    def h_inv(v: np.ndarray) -> np.ndarray:
        w = d_inv * v
        return w - d_inv * np.asarray(B.T @ (np.asarray(B @ w).ravel() / k_diag)).ravel()

    coupling = (S @ sp.diags(d_inv) @ B.T).toarray()
    schur = np.diag(np.asarray(S @ d_inv).ravel()) - coupling @ (coupling.T / k_diag[:, None])
    rhs = -r_source + np.asarray(S @ h_inv(r_route)).ravel()
    try:
        d_alpha = np.linalg.solve(schur, rhs)
    except np.linalg.LinAlgError as error:
        logger.debug("polish failed to solve its Newton system: %s", error)
        return None
    d_y = h_inv(-r_route + np.asarray(S.T @ d_alpha).ravel())
    delta = np.concatenate([d_y, d_alpha])
    return delta if np.all(np.isfinite(delta)) else None
