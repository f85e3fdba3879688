"""Seeded generators: graph shapes, networks, arrival processes, streams and an adversarial family.

Every function takes a ``numpy.random.Generator`` or a seed, so the same seed gives the same
instance on every platform.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from gaplab.models.task_graph.instance import Instance, InstanceError, Network, TaskGraph

SHAPES = ("chain", "fork", "diamond", "layered")

SIZES = {
    # graphs, tasks per graph, nodes, mean inter-arrival time (s)
    "tiny": (2, 3, 2, 1.0),
    "small": (3, 5, 3, 2.0),
    "medium": (6, 8, 3, 2.0),
    "large": (20, 20, 4, 4.0),
}


def make_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """Return ``seed`` if it is a Generator, else a new one seeded by a non-negative integer.

    Raises ValueError, naming the seed, for a negative or non-integer seed.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"invalid seed {seed!r}: expected a non-negative integer such as 0")
    return np.random.default_rng(seed)


def _costs(rng: np.random.Generator, n: int, low: float, high: float) -> list[float]:
    return [round(float(c), 3) for c in rng.uniform(low, high, n)]


def chain(name: str, n: int, rng: np.random.Generator, arrival: float = 0.0) -> TaskGraph:
    """Build a path ``t0 -> ... -> t(n-1)``, costs uniform in [1, 3] and data in [0, 2]."""
    tasks = tuple(f"t{k}" for k in range(n))
    edges = tuple(
        (tasks[k], tasks[k + 1], round(float(rng.uniform(0, 2)), 3)) for k in range(n - 1)
    )
    return TaskGraph(name, arrival, tasks, tuple(_costs(rng, n, 1, 3)), edges)


def fork(name: str, n: int, rng: np.random.Generator, arrival: float = 0.0) -> TaskGraph:
    """Build one source task with ``n - 1`` children (an out-tree of depth one)."""
    tasks = tuple(f"t{k}" for k in range(n))
    edges = tuple((tasks[0], tasks[k], round(float(rng.uniform(0, 2)), 3)) for k in range(1, n))
    return TaskGraph(name, arrival, tasks, tuple(_costs(rng, n, 1, 3)), edges)


def diamond(name: str, n: int, rng: np.random.Generator, arrival: float = 0.0) -> TaskGraph:
    """Build a source, ``n - 2`` parallel branches and a sink (fork then join), ``n >= 3``."""
    n = max(n, 3)
    tasks = tuple(f"t{k}" for k in range(n))
    edges = []
    for k in range(1, n - 1):
        edges.append((tasks[0], tasks[k], round(float(rng.uniform(0, 2)), 3)))
        edges.append((tasks[k], tasks[n - 1], round(float(rng.uniform(0, 2)), 3)))
    return TaskGraph(name, arrival, tasks, tuple(_costs(rng, n, 1, 3)), tuple(edges))


def layered(
    name: str,
    n: int,
    rng: np.random.Generator,
    arrival: float = 0.0,
    edge_probability: float = 0.5,
) -> TaskGraph:
    """Build a random layered DAG: tasks split into about ``sqrt(n)`` layers, edges only go forward.

    Each task after the first layer gets one parent from the previous layer for sure, and every
    other task of earlier layers becomes a parent with ``edge_probability``, so the graph is
    connected layer to layer and acyclic by construction.
    """
    layers = max(1, round(math.sqrt(n)))
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(layers - 1, n - 1), replace=False))
    layer_of = np.searchsorted(cuts, np.arange(n), side="right")
    tasks = tuple(f"t{k}" for k in range(n))
    edges = []
    for k in range(n):
        lk = layer_of[k]
        if lk == 0:
            continue
        previous = np.flatnonzero(layer_of == lk - 1)
        must = int(rng.choice(previous))
        for p in np.flatnonzero(layer_of < lk):
            if p == must or rng.random() < edge_probability * (layer_of[p] == lk - 1):
                edges.append((tasks[p], tasks[k], round(float(rng.uniform(0, 2)), 3)))
    return TaskGraph(name, arrival, tasks, tuple(_costs(rng, n, 1, 3)), tuple(edges))


GRAPH_MAKERS: dict[str, Callable[..., TaskGraph]] = {
    "chain": chain,
    "fork": fork,
    "diamond": diamond,
    "layered": layered,
}


def random_network(
    nodes: int, rng: np.random.Generator, speed_range: tuple[float, float] = (0.5, 2.0)
) -> Network:
    """Build a complete network, speeds uniform in ``speed_range``, bandwidths in [0.5, 2]."""
    if nodes < 1:
        raise InstanceError(f"nodes is {nodes}; a network needs at least one node")
    speeds = tuple(round(float(s), 3) for s in rng.uniform(*speed_range, nodes))
    bw = rng.uniform(0.5, 2.0, (nodes, nodes))
    bw = np.round((bw + bw.T) / 2, 3)
    matrix = tuple(
        tuple(math.inf if u == v else float(bw[u, v]) for v in range(nodes)) for u in range(nodes)
    )
    return Network(tuple(f"n{v}" for v in range(nodes)), speeds, matrix)


def arrivals(
    count: int, rng: np.random.Generator, process: str = "poisson", mean_gap: float = 2.0
) -> list[float]:
    """Arrival times of ``count`` graphs starting at 0.

    ``poisson``: exponential gaps with mean ``mean_gap``; ``periodic``: gaps of exactly
    ``mean_gap``; ``burst``: all at time 0; ``uniform``: gaps uniform in [0, 2 * mean_gap].
    """
    if process == "burst":
        return [0.0] * count
    if process == "periodic":
        gaps = np.full(count - 1, mean_gap)
    elif process == "poisson":
        gaps = rng.exponential(mean_gap, count - 1)
    elif process == "uniform":
        gaps = rng.uniform(0, 2 * mean_gap, count - 1)
    else:
        raise InstanceError(
            f"unknown arrival process {process!r}; use poisson, periodic, burst or uniform"
        )
    return [0.0] + [round(float(a), 3) for a in np.cumsum(gaps)]


def stream(
    seed: int | np.random.Generator = 0,
    graphs: int = 6,
    tasks: int = 8,
    nodes: int = 3,
    mean_gap: float = 2.0,
    process: str = "poisson",
    shapes: Sequence[str] = SHAPES,
    name: str | None = None,
) -> Instance:
    """Generate a random stream of graphs with ``tasks`` tasks and shapes drawn from ``shapes``."""
    rng = make_rng(seed)
    for shape in shapes:
        if shape not in GRAPH_MAKERS:
            raise InstanceError(f"unknown graph shape {shape!r}; use one of {SHAPES}")
    network = random_network(nodes, rng)
    times = arrivals(graphs, rng, process, mean_gap)
    out = []
    for i, a in enumerate(times):
        shape = shapes[int(rng.integers(len(shapes)))]
        out.append(GRAPH_MAKERS[shape](f"g{i}-{shape}", tasks, rng, arrival=a))
    label = name or f"stream-s{seed if isinstance(seed, int) else 'rng'}-{graphs}x{tasks}"
    return Instance(label, network, tuple(out), meta={"generator": "stream", "process": process})


def adversarial(
    seed: int | np.random.Generator = 0,
    rounds: int = 2,
    nodes: int = 3,
    width: int = 6,
    chain_length: int = 4,
) -> Instance:
    """Generate a stream where re-planning pays: wide cheap graphs followed closely by long chains.

    Each round first sends a graph of ``width * nodes`` independent short tasks that a list
    scheduler spreads over every node, then, a moment later, a chain of ``chain_length`` long
    tasks. Without re-planning (K = 1) the chain waits behind the planned but unstarted short
    tasks; with K >= 2 the chain's tasks have the higher upward rank and go first, while the
    short tasks fill the other nodes.
    """
    rng = make_rng(seed)
    speeds = tuple(round(float(s), 3) for s in rng.uniform(0.8, 1.2, nodes))
    network = Network.complete(speeds, bandwidth=10.0)
    out = []
    t = 0.0
    for r in range(rounds):
        n = width * nodes
        ids = tuple(f"w{k}" for k in range(n))
        out.append(TaskGraph(f"r{r}-wide", t, ids, tuple(_costs(rng, n, 0.8, 1.2)), ()))
        cids = tuple(f"c{k}" for k in range(chain_length))
        cedges = tuple((cids[k], cids[k + 1], 0.1) for k in range(chain_length - 1))
        costs = tuple(_costs(rng, chain_length, 0.9 * width, 1.1 * width))
        out.append(TaskGraph(f"r{r}-chain", round(t + 0.1, 3), cids, costs, cedges))
        t = round(t + 0.1 + width * chain_length * 0.5, 3)
    return Instance(
        f"adversarial-s{seed if isinstance(seed, int) else 'rng'}-r{rounds}",
        network,
        tuple(out),
        meta={"generator": "adversarial"},
    )


def generate_sized(seed: int = 0, size: str = "small") -> Instance:
    """Generate a Poisson stream of mixed shapes whose dimensions come from :data:`SIZES`."""
    if size not in SIZES:
        raise InstanceError(f"unknown size {size!r}; use one of {', '.join(SIZES)}")
    graphs, tasks, nodes, gap = SIZES[size]
    return stream(
        seed, graphs=graphs, tasks=tasks, nodes=nodes, mean_gap=gap, name=f"{size}-s{seed}"
    )
