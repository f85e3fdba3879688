"""Transportation LPs on HiGHS: does the demand fit, and a feasible start with headroom.

Both LPs are declared with :mod:`gaplab.modeling` over the full source x node grid; a missing
access path is a flow variable with upper bound zero.
"""

from __future__ import annotations

import logging

import numpy as np

from gaplab.modeling import IndexSet, Model, Variable
from gaplab.models.traffic.instance import Instance
from gaplab.solvers.result import Termination

logger = logging.getLogger(__name__)


class DemandDoesNotFitError(ValueError):
    """No split keeps every access path and node strictly below its capacity."""


def _flow_grid(m: Model, instance: Instance) -> tuple[IndexSet, IndexSet, Variable]:
    source = m.index("source", list(instance.sources))
    node = m.index("node", list(instance.nodes))
    flow = m.continuous("flow", source, node, upper=instance.access_capacity)
    return source, node, flow


def max_scaling(instance: Instance) -> float:
    """Return ``r_max``, the largest factor by which all source rates can grow and still fit.

    Solves the transportation LP ``max r`` subject to ``sum_j x_ij = r lambda_i``,
    ``0 <= x_ij <= mu_ij`` and ``sum_i x_ij <= mu_j``. The convex program has a feasible point
    (every queue strictly below capacity) exactly when ``r_max > 1``.
    """
    m = Model("traffic-max-scaling")
    source, _node, flow = _flow_grid(m, instance)
    scale = m.continuous("scale")
    m.subject_to("conservation", flow.sum("node") == scale.expand(source) * instance.rates)
    m.subject_to("node_capacity", flow.sum("source") <= instance.node_capacity)
    m.maximize(scale)
    result = m.solve("highs")
    if result.termination != Termination.OPTIMAL or result.objective is None:
        raise RuntimeError(
            f"the transportation LP of {instance.name!r} ended with {result.termination.value}; "
            "HiGHS should always solve it, so please report this instance"
        )
    return float(result.objective)


def check_feasible(instance: Instance) -> float:
    """Raise :class:`DemandDoesNotFitError` unless the demand fits strictly; return ``r_max``."""
    r_max = max_scaling(instance)
    if r_max <= 1.0 + 1e-12:
        raise DemandDoesNotFitError(
            f"the demand of {instance.name!r} (total {instance.total_rate:.6g}) does not fit "
            f"strictly below the access and node capacities: the transportation LP fits at most "
            f"{r_max:.6g} times the source rates. Scale the rates down by at least that factor "
            "or add access or node capacity"
        )
    return r_max


def max_headroom_start(instance: Instance, margin: float = 1e-8) -> tuple[np.ndarray, float]:
    """Return a feasible split with the largest common headroom ``h`` and that headroom.

    Solves ``max h`` subject to ``sum_j x_ij = lambda_i``, ``x_ij + h <= mu_ij`` on existing
    paths, ``x_ij = 0`` on missing ones, ``sum_i x_ij + h <= mu_j`` and ``h >= margin``. This is
    the reference start of the distributed iteration. The LP has many optimal vertices, so the
    split returned depends on the HiGHS version.

    Raises
    ------
    DemandDoesNotFitError
        When no split has headroom ``margin``.
    """
    m = Model("traffic-max-headroom")
    source, node, flow = _flow_grid(m, instance)
    headroom = m.continuous("headroom", lower=-np.inf)
    links = instance.links
    # On a missing path mu_ij = 0 and x_ij = 0, so relax that row to stay feasible.
    path_limit = np.where(links, instance.access_capacity, np.inf)
    m.subject_to("conservation", flow.sum("node") == instance.rates)
    m.subject_to("access_headroom", flow + headroom.expand(source, node) <= path_limit)
    m.subject_to(
        "node_headroom", flow.sum("source") + headroom.expand(node) <= instance.node_capacity
    )
    m.maximize(headroom)
    result = m.solve("highs")
    if result.termination != Termination.OPTIMAL or result.x is None:
        raise RuntimeError(
            f"the headroom LP of {instance.name!r} ended with {result.termination.value}"
        )
    h = float(result.objective or 0.0)
    if h < margin:
        raise DemandDoesNotFitError(
            f"the demand of {instance.name!r} leaves a common headroom of only {h:.3g} below the "
            f"capacities (needed {margin:.3g}); lower the rates or add capacity"
        )
    values = result.value(flow)
    assert values is not None
    x = np.asarray(values, dtype=float).reshape(instance.num_sources, instance.num_nodes)
    return np.clip(x, 0.0, None) * links, h
