"""Seeded traffic instances: the 5-source, 3-node pub-sub case and random bipartite instances."""

from __future__ import annotations

import logging

import numpy as np

from gaplab.models.traffic.instance import Instance

logger = logging.getLogger(__name__)

_FIT_FACTOR = 1.0 + 1e-6
"""A generated demand must fit at least this many times (``r_max``) into the capacities."""

SIZES = {
    "small": (5, 3),
    "medium": (40, 8),
    "large": (200, 30),
}
"""Named sizes of :func:`generate` as (sources, nodes)."""

# Topic rates in messages per second and mean message sizes in KB of the pub-sub case.
_TOPIC_RATE = {"t1": 50.0, "t2": 30.0, "t3": 15.0, "t4": 10.0}
_TOPIC_SIZE_KB = {"t1": 2.0, "t2": 2.0, "t3": 2048.0, "t4": 1.0}
_PRODUCER_TOPICS = {
    "P0": ("t1", "t2"),
    "P1": ("t1",),
    "P2": ("t2", "t3"),
    "P3": ("t3", "t4"),
    "P4": ("t1", "t4"),
}


def pubsub_instance() -> Instance:
    """Build the 5-producer, 3-broker pub-sub instance (seed 42) in MB/s.

    Each producer's rate is the sum over its topics of the topic's message rate times its mean
    message size, with 1 MB = 1024 KB. The access capacities ``mu_ij ~ U(40, 60)`` and node
    capacities ``mu_j ~ U(100, 200)`` come from numpy's legacy generator seeded with 42, each
    draw followed by an unused phase draw, in row-major order.
    """
    rates = np.array(
        [
            sum(_TOPIC_RATE[t] * _TOPIC_SIZE_KB[t] / 1024.0 for t in topics)
            for topics in _PRODUCER_TOPICS.values()
        ]
    )
    legacy = np.random.RandomState(42)
    access = np.empty((5, 3))
    for i in range(5):
        for j in range(3):
            access[i, j] = legacy.uniform(40.0, 60.0)
            legacy.uniform(0.0, 2.0 * np.pi)
    node = np.empty(3)
    for j in range(3):
        node[j] = legacy.uniform(100.0, 200.0)
        legacy.uniform()
    return Instance(
        name="pubsub-5x3",
        sources=tuple(_PRODUCER_TOPICS),
        nodes=("SN1", "SN2", "SN3"),
        rates=rates,
        node_capacity=node,
        access_capacity=access,
        meta={"unit": "MB/s", "origin": "pub-sub producers and brokers, seed 42"},
    )


def symmetric_instance(
    sources: int = 5,
    nodes: int = 3,
    rate: float = 9.0,
    access_capacity: float = 10.0,
    node_capacity: float = 20.0,
) -> Instance:
    """Build an instance where every source, path and node is alike.

    Its optimum is the equal split ``rate / nodes`` on every path. The defaults (node
    utilization 0.75) make the distributed iteration cycle with large steps.
    """
    return Instance(
        name=f"symmetric-{sources}x{nodes}",
        sources=tuple(f"s{i}" for i in range(sources)),
        nodes=tuple(f"n{j}" for j in range(nodes)),
        rates=np.full(sources, float(rate)),
        node_capacity=np.full(nodes, float(node_capacity)),
        access_capacity=np.full((sources, nodes), float(access_capacity)),
    )


def throughput(node_capacity: np.ndarray, access_capacity: np.ndarray) -> float:
    """Return the largest total rate the paths and nodes can carry.

    That is ``sum_j min(mu_j, sum_i mu_ij)``: with the source rates free, node ``j`` receives
    at most its own capacity and at most the sum of its access paths, and every split below
    both bounds is reachable.
    """
    return float(np.minimum(node_capacity, access_capacity.sum(axis=0)).sum())


def generate(
    seed: int = 0,
    size: str | tuple[int, int] = "small",
    *,
    load: float = 0.5,
    link_probability: float = 1.0,
    max_tries: int = 50,
) -> Instance:
    """Draw a random instance whose demand fits strictly below every capacity.

    Access capacities are ``U(40, 60)``, node capacities ``U(100, 200)`` and source weights
    lognormal(0, 1). With ``link_probability < 1`` each access path exists with that probability
    (every source keeps at least one). The total rate is ``load`` times the throughput
    :func:`throughput`, the most the drawn network can carry. With five or more sources on full
    paths the throughput equals the total node capacity (five paths of at least 40 exceed any
    node capacity up to 200); with fewer sources or sparse paths the access paths limit it.

    The rates follow the weights when that split fits. When it does not (one heavy source whose
    paths cannot carry its share, say), the rates are blended with the split that fills every
    path in proportion to its capacity, just enough that the demand fits with headroom. So
    every accepted size, load and link probability yields a feasible instance, without
    redrawing.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.default_rng``.
    size
        ``small``, ``medium``, ``large`` or a pair (sources, nodes).
    load
        Total rate divided by the throughput of the drawn network, in (0, 1).
    link_probability
        Probability that an access path exists.
    max_tries
        Kept for compatibility; no draw is ever rejected.

    Raises
    ------
    ValueError
        On an unknown size, a load outside (0, 1) or a link probability outside (0, 1].
    """
    from gaplab.models.traffic.feasibility import max_scaling

    del max_tries
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; expected one of {list(SIZES)} or (N, M)")
        n, m = SIZES[size]
    else:
        n, m = (int(v) for v in size)
    if n < 1 or m < 1:
        raise ValueError(f"size must have at least one source and one node, got {(n, m)}")
    if not 0 < load < 1:
        raise ValueError(f"load must lie in (0, 1), got {load}")
    if not 0 < link_probability <= 1:
        raise ValueError(f"link_probability must lie in (0, 1], got {link_probability}")

    rng = np.random.default_rng(seed)
    access = rng.uniform(40.0, 60.0, size=(n, m))
    if link_probability < 1:
        keep = rng.random((n, m)) < link_probability
        keep[np.arange(n), rng.integers(0, m, size=n)] = True
        access = np.where(keep, access, 0.0)
    node = rng.uniform(100.0, 200.0, size=m)
    weights = rng.lognormal(0.0, 1.0, size=n)
    total = load * throughput(node, access)
    rates = weights / weights.sum() * total

    def fit_factor(values: np.ndarray) -> float:
        # r_max is homogeneous of degree -1 in the rates: solve at rates shrunk far enough to
        # pass the Instance checks, then scale the factor back.
        shrink = 0.5 * min(
            float(np.min(access.sum(axis=1) / values)), float(node.sum() / values.sum()), 1.0
        )
        probe = Instance(
            name=f"generated-{n}x{m}-seed{seed}-probe",
            sources=tuple(f"s{i}" for i in range(n)),
            nodes=tuple(f"n{j}" for j in range(m)),
            rates=values * shrink,
            node_capacity=node,
            access_capacity=access,
        )
        return max_scaling(probe) * shrink

    # The gauge 1 / r_max of a rate vector is convex, 1 / load at the proportional fill below
    # (scaled to the same total) and must end below 1. Blending with weight t bounds it by
    # (1 - t) g + t load, so t = (g - target) / (g - load) reaches the gauge target.
    r_max = fit_factor(rates)
    if r_max <= _FIT_FACTOR:
        fill = access * np.minimum(1.0, node / np.maximum(access.sum(axis=0), 1e-300))
        spread = fill.sum(axis=1) / fill.sum() * total
        gauge, target = 1.0 / r_max, 0.5 * (1.0 + load)
        t = min(1.0, (gauge - target) / (gauge - load))
        logger.debug(
            "seed %d: the weighted rates fit only %.4g times; blending %.3f of the "
            "capacity-proportional rates",
            seed,
            r_max,
            t,
        )
        rates = (1.0 - t) * rates + t * spread
    return Instance(
        name=f"generated-{n}x{m}-seed{seed}",
        sources=tuple(f"s{i}" for i in range(n)),
        nodes=tuple(f"n{j}" for j in range(m)),
        rates=rates,
        node_capacity=node,
        access_capacity=access,
        meta={"seed": seed, "load": load, "link_probability": link_probability},
    )
