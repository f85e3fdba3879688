"""Instance of the task-graph model: a heterogeneous network and a stream of arriving DAGs.

Notation: node ``v`` has speed ``s_v`` and link ``(u, v)`` has bandwidth ``b_uv``, which is
infinite on the diagonal. Task ``t`` of graph ``g`` has cost ``w_t`` and runs for ``w_t / s_v``
on node ``v``. Edge ``(p, t)`` carries ``d_pt`` units of data, which take ``d_pt / b_uv`` to
cross from ``u`` to ``v != u``. Graph ``g`` arrives at ``a_g``, and none of its tasks may start
earlier.

JSON layout (all times in seconds, costs in work units, data in bytes or any unit that matches
the bandwidth)::

    {"name": "...",
     "network": {"nodes": ["n0", "n1"], "speeds": [1.0, 2.0],
                 "bandwidth": [[null, 125.0], [125.0, null]]},
     "graphs": [{"name": "g0", "arrival": 0.0,
                 "tasks": [{"id": "a", "cost": 2.0},
                           {"id": "b", "cost": 1.0, "parents": {"a": 10.0}}]}]}

``null`` in the bandwidth matrix means infinite bandwidth (no transfer time); the diagonal is
ignored and always infinite. ``parents`` maps each parent id to the data size of the edge.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np


class InstanceError(ValueError):
    """Invalid task-graph instance data; the message names the field and the value."""


@dataclass(frozen=True)
class Network:
    """Compute nodes with speeds (work units per second) and link bandwidths (data per second).

    ``bandwidth[u][v]`` is the bandwidth from ``u`` to ``v``; ``math.inf`` means no transfer
    time. The diagonal is treated as infinite whatever it contains.
    """

    nodes: tuple[str, ...]
    speeds: tuple[float, ...]
    bandwidth: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        n = len(self.nodes)
        if n == 0:
            raise InstanceError("network.nodes is empty; a network needs at least one node")
        if len(set(self.nodes)) != n:
            raise InstanceError(f"network.nodes has duplicate names: {list(self.nodes)}")
        if len(self.speeds) != n:
            raise InstanceError(
                f"network.speeds has {len(self.speeds)} entries but there are {n} nodes; "
                "give one speed per node"
            )
        for name, speed in zip(self.nodes, self.speeds, strict=True):
            if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
                raise InstanceError(
                    f"speed of node {name!r} is {speed!r}; node speeds must be finite and "
                    "positive (work units per second)"
                )
        if len(self.bandwidth) != n or any(len(row) != n for row in self.bandwidth):
            raise InstanceError(
                f"network.bandwidth must be a {n} x {n} matrix (one row and column per node)"
            )
        for u, row in enumerate(self.bandwidth):
            for v, value in enumerate(row):
                if u != v and not (value > 0):
                    raise InstanceError(
                        f"bandwidth from {self.nodes[u]!r} to {self.nodes[v]!r} is {value!r}; "
                        "bandwidths must be positive (use null in JSON for infinite)"
                    )

    @cached_property
    def inverse_bandwidth(self) -> np.ndarray:
        """Seconds per data unit between nodes, ``1 / b_uv``, with zeros on the diagonal."""
        inv = 1.0 / np.asarray(self.bandwidth, dtype=float)
        np.fill_diagonal(inv, 0.0)
        return inv

    @property
    def speed_array(self) -> np.ndarray:
        return np.asarray(self.speeds, dtype=float)

    @staticmethod
    def complete(speeds: Sequence[float], bandwidth: float) -> Network:
        """Build a fully connected network with one bandwidth on every link."""
        n = len(speeds)
        matrix = tuple(
            tuple(math.inf if u == v else float(bandwidth) for v in range(n)) for u in range(n)
        )
        return Network(tuple(f"n{v}" for v in range(n)), tuple(float(s) for s in speeds), matrix)


@dataclass(frozen=True)
class TaskGraph:
    """One DAG of the stream: tasks with costs, edges with data sizes, and its arrival time."""

    name: str
    arrival: float
    tasks: tuple[str, ...]
    costs: tuple[float, ...]
    edges: tuple[tuple[str, str, float], ...] = ()
    """``(parent, child, data)`` triples."""

    def __post_init__(self) -> None:
        where = f"graph {self.name!r}"
        if not (isinstance(self.arrival, (int, float)) and math.isfinite(self.arrival)):
            raise InstanceError(f"{where}: arrival {self.arrival!r} must be a finite number")
        if self.arrival < 0:
            raise InstanceError(f"{where}: arrival {self.arrival!r} must be zero or positive")
        if not self.tasks:
            raise InstanceError(f"{where} has no tasks; every graph needs at least one task")
        seen: set[str] = set()
        for task in self.tasks:
            if task in seen:
                raise InstanceError(
                    f"{where}: task id {task!r} appears twice; task ids must be unique"
                )
            seen.add(task)

        if len(self.costs) != len(self.tasks):
            raise InstanceError(f"{where}: {len(self.costs)} costs for {len(self.tasks)} tasks")
        for task, cost in zip(self.tasks, self.costs, strict=True):
            if not (isinstance(cost, (int, float)) and math.isfinite(cost) and cost >= 0):
                raise InstanceError(
                    f"{where}: task {task!r} has cost {cost!r}; costs must be finite and >= 0"
                )

        known = set(self.tasks)
        pairs: set[tuple[str, str]] = set()
        for parent, child, data in self.edges:
            if child not in known:
                raise InstanceError(f"{where}: an edge points to unknown task {child!r}")
            if parent not in known:
                raise InstanceError(
                    f"{where}: task {child!r} names parent {parent!r}, which is not a task of "
                    "this graph; add the parent task or remove the edge"
                )
            if parent == child:
                raise InstanceError(f"{where}: task {child!r} names itself as a parent (a cycle)")
            if (parent, child) in pairs:
                raise InstanceError(f"{where}: edge {parent!r} -> {child!r} appears twice")
            pairs.add((parent, child))
            if not (isinstance(data, (int, float)) and math.isfinite(data) and data >= 0):
                raise InstanceError(
                    f"{where}: edge {parent!r} -> {child!r} has data size {data!r}; data sizes "
                    "must be finite and >= 0"
                )
        cycle = _find_cycle(self.tasks, [(p, c) for p, c, _ in self.edges])
        if cycle:
            raise InstanceError(
                f"{where} has a cycle {' -> '.join(cycle)}; task graphs must be acyclic"
            )


@dataclass(frozen=True)
class Instance:
    """A network and a stream of task graphs ordered by arrival time.

    Tasks get global integer ids in the order graphs and their tasks are listed; schedules,
    validators and models index tasks by these ids (see :attr:`flat`).
    """

    name: str
    network: Network
    graphs: tuple[TaskGraph, ...]
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.graphs:
            raise InstanceError(f"instance {self.name!r} has no graphs")
        names = [g.name for g in self.graphs]
        if len(set(names)) != len(names):
            raise InstanceError(f"instance {self.name!r}: graph names repeat: {names}")
        arrivals = [g.arrival for g in self.graphs]
        for i in range(1, len(arrivals)):
            if arrivals[i] < arrivals[i - 1]:
                raise InstanceError(
                    f"graph {names[i]!r} arrives at {arrivals[i]} before the previous graph "
                    f"{names[i - 1]!r} ({arrivals[i - 1]}); list graphs by arrival time"
                )

    # ------------------------------------------------------------------ derived arrays

    @cached_property
    def flat(self) -> FlatInstance:
        """Arrays over global task ids, built once."""
        return FlatInstance.of(self)

    @property
    def num_tasks(self) -> int:
        return sum(len(g.tasks) for g in self.graphs)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        net = self.network
        return {
            "name": self.name,
            "network": {
                "nodes": list(net.nodes),
                "speeds": list(net.speeds),
                "bandwidth": [
                    [None if (u == v or math.isinf(b)) else b for v, b in enumerate(row)]
                    for u, row in enumerate(net.bandwidth)
                ],
            },
            "graphs": [_graph_to_dict(g) for g in self.graphs],
            **({"meta": dict(self.meta)} if self.meta else {}),
        }

    def to_json(self, path: Path | None = None) -> str:
        """Serialize to JSON text; also write it atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            from gaplab.modeling.compiled import atomic_write_text

            atomic_write_text(Path(path), text + "\n")
        return text

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Instance:
        """Build and validate an instance from the JSON layout of this module."""
        if not isinstance(data, Mapping):
            raise InstanceError(f"a task-graph instance must be a JSON object, got {type(data)}")
        for key in ("network", "graphs"):
            if key not in data:
                raise InstanceError(f"instance JSON lacks the required key {key!r}")
        net = data["network"]
        if not isinstance(net, Mapping) or "speeds" not in net:
            raise InstanceError("network must be an object with 'speeds' and 'bandwidth'")
        speeds = tuple(_number(s, "network.speeds") for s in net["speeds"])
        nodes = tuple(str(n) for n in net.get("nodes", [f"n{v}" for v in range(len(speeds))]))
        rows = net.get("bandwidth")
        if not isinstance(rows, list):
            raise InstanceError("network.bandwidth must be a matrix (list of rows)")
        bandwidth = tuple(
            tuple(math.inf if b is None else _number(b, "network.bandwidth") for b in row)
            for row in rows
        )
        network = Network(nodes, speeds, bandwidth)
        graphs = data["graphs"]
        if not isinstance(graphs, list):
            raise InstanceError("graphs must be a list of graph objects")
        return Instance(
            name=str(data.get("name", "task-graph")),
            network=network,
            graphs=tuple(_graph_from_dict(g, i) for i, g in enumerate(graphs)),
            meta=dict(data.get("meta", {})),
        )

    @staticmethod
    def from_json(source: str | Path) -> Instance:
        """Read an instance from a JSON file path or from JSON text."""
        text = str(source)
        if isinstance(source, Path) or not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InstanceError(f"task-graph instance is not valid JSON: {error}") from error
        return Instance.from_dict(data)

    @staticmethod
    def generate(seed: int = 0, size: str = "small") -> Instance:
        """Generate a random stream; see :func:`gaplab.models.task_graph.generators.stream`."""
        from gaplab.models.task_graph.generators import generate_sized

        return generate_sized(seed=seed, size=size)


@dataclass(frozen=True)
class FlatInstance:
    """Global task arrays: ``graph[t]``, ``cost[t]``, ``arrival[t]``, predecessors, successors.

    ``edge_src``, ``edge_dst`` and ``edge_data`` list every edge with global ids;
    ``preds[t]`` and ``succs[t]`` give ``(neighbour, data)`` pairs.
    """

    labels: tuple[tuple[str, str], ...]
    """``(graph name, task id)`` for every global task id."""
    graph: np.ndarray
    cost: np.ndarray
    arrival: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_data: np.ndarray
    preds: tuple[tuple[tuple[int, float], ...], ...]
    succs: tuple[tuple[tuple[int, float], ...], ...]
    graph_tasks: tuple[np.ndarray, ...]
    """Global ids of each graph's tasks."""

    @staticmethod
    def of(instance: Instance) -> FlatInstance:
        labels: list[tuple[str, str]] = []
        graph, cost, arrival = [], [], []
        src, dst, dat = [], [], []
        groups = []
        for gi, g in enumerate(instance.graphs):
            offset = len(labels)
            local = {t: offset + k for k, t in enumerate(g.tasks)}
            groups.append(np.arange(offset, offset + len(g.tasks)))
            for task, work in zip(g.tasks, g.costs, strict=True):
                labels.append((g.name, task))
                graph.append(gi)
                cost.append(float(work))
                arrival.append(float(g.arrival))
            for parent, child, data in g.edges:
                src.append(local[parent])
                dst.append(local[child])
                dat.append(float(data))
        n = len(labels)
        preds: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        succs: list[list[tuple[int, float]]] = [[] for _ in range(n)]
        for p, c, d in zip(src, dst, dat, strict=True):
            preds[c].append((p, d))
            succs[p].append((c, d))
        return FlatInstance(
            labels=tuple(labels),
            graph=np.asarray(graph, dtype=np.int64),
            cost=np.asarray(cost, dtype=float),
            arrival=np.asarray(arrival, dtype=float),
            edge_src=np.asarray(src, dtype=np.int64),
            edge_dst=np.asarray(dst, dtype=np.int64),
            edge_data=np.asarray(dat, dtype=float),
            preds=tuple(tuple(x) for x in preds),
            succs=tuple(tuple(x) for x in succs),
            graph_tasks=tuple(groups),
        )

    @property
    def size(self) -> int:
        return len(self.labels)


def _find_cycle(tasks: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[str]:
    """Return one directed cycle as a list of task ids (first id repeated at the end), or []."""
    succ: dict[str, list[str]] = {t: [] for t in tasks}
    for p, c in edges:
        succ[p].append(c)
    state = dict.fromkeys(tasks, 0)  # 0 new, 1 on the stack, 2 done
    for root in tasks:
        if state[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path = [root]
        state[root] = 1
        while stack:
            node, k = stack[-1]
            if k < len(succ[node]):
                stack[-1] = (node, k + 1)
                nxt = succ[node][k]
                if state[nxt] == 1:
                    return path[path.index(nxt) :] + [nxt]
                if state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return []


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InstanceError(f"{what}: expected a number, got {value!r}")
    return float(value)


def _graph_to_dict(g: TaskGraph) -> dict[str, Any]:
    parents: dict[str, dict[str, float]] = {}
    for p, c, d in g.edges:
        parents.setdefault(c, {})[p] = d
    tasks = []
    for t, cost in zip(g.tasks, g.costs, strict=True):
        entry: dict[str, Any] = {"id": t, "cost": cost}
        if t in parents:
            entry["parents"] = parents[t]
        tasks.append(entry)
    return {"name": g.name, "arrival": g.arrival, "tasks": tasks}


def _graph_from_dict(data: Any, position: int) -> TaskGraph:
    if not isinstance(data, Mapping):
        raise InstanceError(f"graphs[{position}] must be an object, got {data!r}")
    name = str(data.get("name", f"g{position}"))
    if "tasks" not in data or not isinstance(data["tasks"], list):
        raise InstanceError(f"graph {name!r} needs a list 'tasks'")
    ids, costs, edges = [], [], []
    for k, task in enumerate(data["tasks"]):
        if not isinstance(task, Mapping) or "id" not in task or "cost" not in task:
            raise InstanceError(f"graph {name!r}: tasks[{k}] needs 'id' and 'cost'")
        tid = str(task["id"])
        ids.append(tid)
        costs.append(_number(task["cost"], f"graph {name!r}: cost of task {tid!r}"))
        parents = task.get("parents", {})
        if isinstance(parents, list):  # a plain list of parents carries no data
            parents = dict.fromkeys(parents, 0.0)
        if not isinstance(parents, Mapping):
            raise InstanceError(f"graph {name!r}: parents of task {tid!r} must be an object")
        for p, d in parents.items():
            edges.append((str(p), tid, _number(d, f"graph {name!r}: data of edge {p!r}->{tid!r}")))
    arrival = _number(data.get("arrival", 0.0), f"graph {name!r}: arrival")
    return TaskGraph(name, arrival, tuple(ids), tuple(costs), tuple(edges))
