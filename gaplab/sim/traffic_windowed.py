"""Windowed stochastic pricing for the traffic model: prices from measured, noisy arrival rates.

Time is cut into windows of ``window`` seconds. In each window every source emits a Poisson
number of work units (mean ``lambda_i * window``) and sends each unit to node ``j`` with
probability ``x_ij / lambda_i`` (a multinomial count model). Each node

- measures its arrival rate (units in the window divided by ``window``),
- keeps an exponentially weighted moving average of it (weight ``beta`` on the new sample),
- updates its damped price ``p_j <- (1 - gamma) p_j + gamma C_j(average)``.

After ``warmup`` windows each source moves toward its best response with inertia ``eta``:
``x_i <- (1 - eta) x_i + eta BR_i(p)``. There is no safe step, so capacity holds only in
expectation. A measured average at or above capacity is priced at 99.9999 % of capacity so
that prices stay finite. Each node also keeps a fluid backlog, ``max(0, backlog + arrivals -
mu_j * window)``, to show whether a window overloaded it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gaplab.models.traffic.best_response import best_response
from gaplab.models.traffic.delay import node_marginal
from gaplab.models.traffic.feasibility import max_headroom_start
from gaplab.models.traffic.instance import Instance

logger = logging.getLogger(__name__)

PRICE_CAP = 1.0 - 1e-6
"""Largest utilization at which a measured load is priced."""


@dataclass
class WindowedRun:
    """Trajectory of one windowed run; histories have one row per window."""

    flows: np.ndarray
    """The split after the last window."""
    mean_flows: np.ndarray
    """The split averaged over the windows after warm-up."""
    prices: np.ndarray
    times: np.ndarray
    """End of each window in seconds."""
    utilization_history: np.ndarray
    """Moving-average utilization ``average_j / mu_j`` per window and node."""
    price_history: np.ndarray
    backlog_history: np.ndarray
    """Fluid backlog of each node at the end of each window, in work units."""
    warmup: int

    @property
    def mean_utilization(self) -> np.ndarray:
        """Moving-average utilization averaged over the windows after warm-up."""
        return self.utilization_history[self.warmup :].mean(axis=0)


def run_windowed(
    instance: Instance,
    *,
    horizon: float = 300.0,
    window: float = 5.0,
    beta: float = 0.3,
    gamma: float = 0.5,
    eta: float = 0.35,
    warmup: int = 4,
    seed: int = 0,
    start: np.ndarray | None = None,
) -> WindowedRun:
    """Simulate the windowed pricing loop with measured rates.

    Parameters
    ----------
    instance
        The instance; rates and capacities in work units per second.
    horizon, window
        Simulated seconds and window length in seconds.
    beta
        Weight of the newest sample in each node's moving average of its arrival rate.
    gamma
        Price damping.
    eta
        Inertia of the sources' move toward their best response.
    warmup
        Windows before sources start to move.
    seed
        Seed of the Poisson and multinomial draws.
    start
        Initial split; the max-headroom LP split when ``None``.
    """
    if window <= 0 or horizon < window:
        raise ValueError(
            f"need 0 < window <= horizon seconds, got window={window}, horizon={horizon}"
        )
    for name, value in (("beta", beta), ("gamma", gamma), ("eta", eta)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must lie in (0, 1], got {value}")
    rng = np.random.default_rng(seed)
    x = max_headroom_start(instance)[0] if start is None else np.array(start, dtype=float)
    mu_node = instance.node_capacity
    average = x.sum(axis=0)
    prices = node_marginal(instance, average)
    backlog = np.zeros(instance.num_nodes)
    windows = int(horizon // window)

    utilization, price_rows, backlog_rows, split_rows = [], [], [], []
    for w in range(windows):
        # Arrivals of this window, routed by the current split.
        emitted = rng.poisson(instance.rates * window)
        shares = np.clip(x / instance.rates[:, None], 0.0, None)
        shares /= shares.sum(axis=1, keepdims=True)
        counts = np.array([rng.multinomial(k, row) for k, row in zip(emitted, shares, strict=True)])
        arrivals = counts.sum(axis=0).astype(float)
        backlog = np.maximum(0.0, backlog + arrivals - mu_node * window)

        # Nodes: moving average of the measured rate, then a damped price.
        average = (1.0 - beta) * average + beta * arrivals / window
        priced = np.minimum(average, PRICE_CAP * mu_node)
        prices = (1.0 - gamma) * prices + gamma * node_marginal(instance, priced)

        # Sources: move toward the best response once warm-up is over.
        if w >= warmup:
            response, _ = best_response(instance, prices)
            x = (1.0 - eta) * x + eta * response
        utilization.append(average / mu_node)
        price_rows.append(prices.copy())
        backlog_rows.append(backlog.copy())
        split_rows.append(x.copy())

    overloaded = int(np.sum(np.array(backlog_rows) > 0))
    if overloaded:
        logger.info(
            "windowed run on %s: %d node-windows ended with a backlog", instance.name, overloaded
        )
    return WindowedRun(
        flows=x,
        mean_flows=np.mean(split_rows[warmup:], axis=0) if windows > warmup else x,
        prices=prices,
        times=window * np.arange(1, windows + 1),
        utilization_history=np.array(utilization),
        price_history=np.array(price_rows),
        backlog_history=np.array(backlog_rows),
        warmup=warmup,
    )
