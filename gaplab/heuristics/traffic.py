"""Heuristics and baselines for the traffic model, each returning an Allocation.

Every split here is judged under the true joint delay ``F`` (access plus node queues) by
:func:`gaplab.models.traffic.delay.objective`, whatever model it optimized itself:

- ``equal-split``: each source spreads its rate evenly over its access paths.
- ``proportional``: each source splits in proportion to its access capacities.
- ``access-only``: the optimum when node delay is ignored (each source's best response to zero
  prices, which is exact because the access terms are separable by source).
- ``server-only``: the optimum when access delay is ignored. Only the node loads of that
  optimum are unique; among the splits that realize them this returns the one with the least
  access delay.
- ``single-path``: each source sends everything over its widest access path.
- ``pricing``: the distributed pricing iteration from step 0.25 and damping 0.5, halving both
  on each detected cycle (adaptive steps, a design choice, not part of the published
  algorithm). It converged on every instance of the default suite.
- ``pricing-fixed``: the published fixed steps 0.25 and 0.5. It cycles on several instances
  (the symmetric 5x3 case, the real networks) and then returns its last iterate, which may lie
  far from the optimum; ``Allocation.status`` says ``cycle`` or ``iteration_limit``.
- ``pricing_small_steps`` (a function, not in :data:`HEURISTICS` because it takes seconds): the
  fixed-step iteration with step 0.01 and damping 0.02, slower but more stable.
- ``pricing-windowed``: the windowed stochastic variant with measured rates; its split
  averaged over the windows after warm-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from gaplab.models.traffic.best_response import best_response
from gaplab.models.traffic.delay import Allocation
from gaplab.models.traffic.instance import Instance
from gaplab.sim.traffic_pricing import run_pricing
from gaplab.sim.traffic_windowed import run_windowed

logger = logging.getLogger(__name__)


def equal_split(instance: Instance) -> Allocation:
    """Spread each source's rate evenly over its existing access paths."""
    links = instance.links.astype(float)
    flows = links * (instance.rates / links.sum(axis=1))[:, None]
    return Allocation(flows, "equal-split")


def proportional_split(instance: Instance) -> Allocation:
    """Split each source's rate in proportion to its access-path capacities."""
    mu = instance.access_capacity
    flows = mu * (instance.rates / mu.sum(axis=1))[:, None]
    return Allocation(flows, "proportional")


def access_only(instance: Instance) -> Allocation:
    """Minimize access delay alone: every source's best response to zero node prices."""
    flows, alpha = best_response(instance, np.zeros(instance.num_nodes))
    return Allocation(flows, "access-only", {"alpha": alpha.tolist()})


def server_node_loads(instance: Instance) -> np.ndarray:
    """Node loads that minimize node delay alone, by water-filling over the node capacities.

    ``sum_j X_j / (mu_j - X_j)`` subject to ``sum_j X_j = sum_i lambda_i`` is the best response
    of one virtual source, with the node capacities as its paths and zero prices.
    """
    pooled = Instance(
        name=f"{instance.name}-pooled",
        sources=("all",),
        nodes=instance.nodes,
        rates=np.array([instance.total_rate]),
        node_capacity=instance.node_capacity * 2.0,
        access_capacity=instance.node_capacity[None, :],
    )
    loads, _ = best_response(pooled, np.zeros(instance.num_nodes))
    return loads[0]


def server_only(instance: Instance) -> Allocation:
    """Minimize node delay alone; among splits with those node loads, the least access delay.

    The second stage is a convex program (cvxpy with Clarabel). When the node loads cannot be
    realized below the access capacities, the split proportional to the loads is returned.
    """
    import cvxpy as cp

    loads = server_node_loads(instance)
    rows, cols = np.nonzero(instance.links)
    k = rows.size
    mu = instance.access_capacity[rows, cols]
    y = cp.Variable(k, nonneg=True)
    to_source = np.zeros((instance.num_sources, k))
    to_source[rows, np.arange(k)] = 1.0
    to_node = np.zeros((instance.num_nodes, k))
    to_node[cols, np.arange(k)] = 1.0
    problem = cp.Problem(
        cp.Minimize(cp.sum(cp.multiply(mu, cp.inv_pos(mu - y)))),
        [to_source @ y == instance.rates, to_node @ y == loads],
    )
    try:
        problem.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as error:
        logger.warning(
            "server-only split of %s failed (%s); using proportional", instance.name, error
        )
    if y.value is None or problem.status not in ("optimal", "optimal_inaccurate"):
        flows = np.outer(instance.rates, loads / loads.sum()) * instance.links
        flows *= (instance.rates / flows.sum(axis=1))[:, None]
        return Allocation(flows, "server-only", {"decomposition": "proportional"})
    flows = np.zeros((instance.num_sources, instance.num_nodes))
    flows[rows, cols] = np.clip(y.value, 0.0, None)
    flows *= (instance.rates / flows.sum(axis=1))[:, None]
    return Allocation(flows, "server-only", {"decomposition": "least access delay"})


def single_path(instance: Instance) -> Allocation:
    """Send each source's whole rate over its access path of largest capacity."""
    flows = np.zeros((instance.num_sources, instance.num_nodes))
    best = instance.access_capacity.argmax(axis=1)
    flows[np.arange(instance.num_sources), best] = instance.rates
    return Allocation(flows, "single-path")


def _pricing_allocation(instance: Instance, method: str, **parameters: object) -> Allocation:
    run = run_pricing(instance, **parameters)  # type: ignore[arg-type]
    return Allocation(
        run.flows,
        method,
        {
            "status": run.status,
            "iterations": run.iterations,
            "message": run.message,
            "halvings": len(run.adjustments),
            "prices": run.prices.tolist(),
        },
    )


def pricing(instance: Instance, **parameters: object) -> Allocation:
    """Run the pricing iteration with adaptive steps: from step 0.25 and damping 0.5, halve
    both on each detected cycle.

    ``parameters`` go to :func:`~gaplab.sim.traffic_pricing.run_pricing`. The Allocation's
    ``status`` is ``converged`` unless the halvings reached ``min_eta`` or ``max_iter`` ran out.
    """
    parameters.setdefault("adaptive", True)
    return _pricing_allocation(instance, "pricing", **parameters)


def pricing_fixed(instance: Instance, **parameters: object) -> Allocation:
    """Run the pricing iteration with the published fixed steps (0.25 and damping 0.5).

    It stops at a detected cycle or at the iteration limit; the Allocation's ``status`` then
    says ``cycle`` or ``iteration_limit`` and the split is the last iterate.
    """
    parameters["adaptive"] = False
    return _pricing_allocation(instance, "pricing-fixed", **parameters)


def pricing_small_steps(instance: Instance) -> Allocation:
    """Run the fixed-step pricing iteration with step 0.01 and damping 0.02."""
    allocation = pricing_fixed(instance, eta=0.01, gamma=0.02, max_iter=20000)
    allocation.method = "pricing-small-steps"
    return allocation


def pricing_windowed(instance: Instance) -> Allocation:
    """Run the windowed stochastic pricing loop for 300 s (seed 0); return the mean split."""
    run = run_windowed(instance, seed=0)
    return Allocation(
        run.mean_flows,
        "pricing-windowed",
        {"mean_utilization": run.mean_utilization.tolist()},
    )


HEURISTICS: dict[str, Callable[[Instance], Allocation]] = {
    "pricing": pricing,
    "pricing-fixed": pricing_fixed,
    "pricing-windowed": pricing_windowed,
    "access-only": access_only,
    "proportional": proportional_split,
    "equal-split": equal_split,
    "server-only": server_only,
    "single-path": single_path,
}
"""Every heuristic and baseline of the traffic model by name."""
