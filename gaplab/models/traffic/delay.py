"""Delays, the objective F and marginal costs of a split, computed from the instance alone.

Notation: ``x`` is the (N, M) split ``lambda_ij``, ``X_j = sum_i x_ij`` the node loads. The
objective is the flow-weighted total delay (by Little's law, the mean work in the system)

    F(x) = sum_ij x_ij (a_ij + 1 / (mu_ij - x_ij)) + sum_j X_j / (mu_j - X_j),

infinite when a used path or a node is at or above capacity. Marginal costs are
``C_ij = a_ij + mu_ij / (mu_ij - x_ij)^2`` and ``C_j = mu_j / (mu_j - X_j)^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaplab.models.traffic.instance import Instance


@dataclass
class Allocation:
    """A split of every source's rate over the service nodes.

    ``flows`` is the (N, M) array ``lambda_ij`` in the instance's rate unit. ``method`` names
    what produced it and ``info`` contains method-specific details (iterations, prices, history).
    """

    flows: np.ndarray
    method: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.flows = np.asarray(self.flows, dtype=float)

    @property
    def status(self) -> str:
        """How the method ended, ``info["status"]``: ``converged``, ``cycle`` or
        ``iteration_limit`` for the pricing iterations, empty for one-shot rules.

        It is a report, not a verdict: :func:`~gaplab.models.traffic.validate.validate` judges
        feasibility alone, so a feasible split of a run that did not converge stays valid.
        """
        return str(self.info.get("status", ""))

    def loads(self) -> np.ndarray:
        return self.flows.sum(axis=0)

    def to_json(self) -> dict[str, Any]:
        plain = {k: v for k, v in self.info.items() if isinstance(v, (int, float, str, bool))}
        return {"method": self.method, "flows": self.flows.tolist(), **plain}


def mm1_number(load: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """``load / (capacity - load)`` elementwise: mean number in an M/M/1 queue; inf at capacity."""
    load = np.asarray(load, dtype=float)
    capacity = np.asarray(capacity, dtype=float)
    out = np.full(np.broadcast(load, capacity).shape, np.inf)
    inside = load < capacity
    np.divide(load, capacity - load, out=out, where=inside)
    return np.where(load == 0, 0.0, out)


def mm1_marginal(load: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """``capacity / (capacity - load)^2``: derivative of :func:`mm1_number`; inf at capacity."""
    load = np.asarray(load, dtype=float)
    capacity = np.asarray(capacity, dtype=float)
    out = np.full(np.broadcast(load, capacity).shape, np.inf)
    inside = load < capacity
    np.divide(capacity, (capacity - load) ** 2, out=out, where=inside)
    return out


def objective(instance: Instance, flows: np.ndarray) -> float:
    """Return ``F(x)``, the flow-weighted total delay; ``inf`` outside the capacity domain."""
    x = np.asarray(flows, dtype=float)
    access = mm1_number(x, instance.access_capacity)
    nodes = mm1_number(x.sum(axis=0), instance.node_capacity)
    total = float(access.sum() + nodes.sum() + (x * instance.propagation).sum())
    return total


def access_marginal(instance: Instance, flows: np.ndarray) -> np.ndarray:
    """``C_ij``, marginal cost of each access path (inf on missing paths)."""
    mu = instance.access_capacity
    cost = mm1_marginal(flows, mu) + instance.propagation
    return np.where(instance.links, cost, np.inf)


def node_marginal(instance: Instance, loads: np.ndarray) -> np.ndarray:
    """``C_j``, marginal cost of each node, the node's congestion price at optimality."""
    return mm1_marginal(loads, instance.node_capacity)


def route_delay(instance: Instance, flows: np.ndarray) -> np.ndarray:
    """Delay of each route in seconds: ``a_ij + 1/(mu_ij - x_ij) + 1/(mu_j - X_j)``."""
    x = np.asarray(flows, dtype=float)
    mu = instance.access_capacity
    with np.errstate(divide="ignore"):
        access = np.where(x < mu, 1.0 / np.where(x < mu, mu - x, 1.0), np.inf)
        gap = instance.node_capacity - x.sum(axis=0)
        node = np.where(gap > 0, 1.0 / np.where(gap > 0, gap, 1.0), np.inf)
    return np.where(instance.links, instance.propagation + access + node[None, :], np.inf)


def source_delay(instance: Instance, flows: np.ndarray) -> np.ndarray:
    """Mean delay of each source in seconds: its flow-weighted route delay over its rate."""
    x = np.asarray(flows, dtype=float)
    delays = route_delay(instance, x)
    weighted = np.where(x > 0, x * delays, 0.0).sum(axis=1)
    return weighted / instance.rates


def mean_delay(instance: Instance, flows: np.ndarray) -> float:
    """Mean delay per unit of work in seconds, ``F / sum_i lambda_i``."""
    return objective(instance, flows) / instance.total_rate


def utilization(instance: Instance, flows: np.ndarray) -> np.ndarray:
    """Node utilizations ``X_j / mu_j``."""
    return np.asarray(flows, dtype=float).sum(axis=0) / instance.node_capacity
