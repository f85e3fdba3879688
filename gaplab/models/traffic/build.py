"""Declare the traffic convex program with :mod:`gaplab.modeling`.

The flow ``lambda_ij`` is one variable per (source, node) pair, bounded above by ``mu_ij`` (so a
missing path is fixed at zero). The objective is

    sum_ij a_ij x_ij + sum_ij mm1(x_ij; mu_ij) + sum_j mm1(sum_i x_ij; mu_j),

with ``mm1(u; c) = u / (c - u)``. Missing paths carry an M/M/1 term of weight zero and
capacity one, because ``mm1`` needs positive capacities and the term is identically zero there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaplab.modeling import Model, Variable, mm1
from gaplab.models.traffic.instance import Instance


@dataclass(frozen=True)
class TrafficModel:
    """The declared model and the handle of its flow variable block."""

    model: Model
    flow: Variable


def build(instance: Instance) -> TrafficModel:
    """Declare the convex program of ``instance``; no solver is called."""
    m = Model(f"traffic-{instance.name}")
    source = m.index("source", list(instance.sources))
    node = m.index("node", list(instance.nodes))
    flow = m.continuous("flow", source, node, upper=instance.access_capacity)
    m.subject_to("conservation", flow.sum("node") == instance.rates)

    links = instance.links
    access_capacity = np.where(links, instance.access_capacity, 1.0)
    access_weight = links.astype(float)
    objective = mm1(flow, capacity=access_capacity, weight=access_weight) + mm1(
        flow.sum("source"), capacity=instance.node_capacity
    )
    if instance.has_propagation:
        objective = objective + (flow * instance.propagation).sum()
    m.minimize(objective)
    return TrafficModel(m, flow)


def flows_from_values(instance: Instance, values: np.ndarray) -> np.ndarray:
    """Reshape a solver's flow column values to (N, M), clipping round-off below zero."""
    x = np.asarray(values, dtype=float).reshape(instance.num_sources, instance.num_nodes)
    return np.where(instance.links, np.clip(x, 0.0, None), 0.0)
