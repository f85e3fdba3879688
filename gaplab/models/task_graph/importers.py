"""Import WfCommons WfInstances traces (WfFormat 1.5 JSON) as task graphs and streams.

Mapping rules:

- every entry of ``workflow.specification.tasks`` becomes a task (id from ``id``, else ``name``),
  with an edge from each id in its ``parents`` list. A parent that is not a task is an error;
- task cost ``w_t = runtimeInSeconds * speedInMHz / 1000`` of the machine that ran it (from
  ``workflow.execution.tasks[].machines[0]``), in giga-cycles, so ``w_t / s_v`` is the runtime
  in seconds on a node of ``s_v`` GHz and the original machine reproduces the trace's runtime;
- edge data ``d_pt`` = sum of ``sizeInBytes`` over files that are outputs of ``p`` and inputs of
  ``t`` (0 when they share none), in bytes;
- nodes: each machine of ``workflow.execution.machines`` becomes ``len(speed_factors)`` nodes of
  speed ``factor * speedInMHz / 1000`` GHz. The traces ran on one machine, so the factors
  synthesize the heterogeneity (default 0.5, 0.8, 1.2 and 1.6, which gives 0.6 to 2.0 GHz for the
  1.2-1.3 GHz machines of the traces);
- every link has ``bandwidth`` bytes per second (default 125e6, that is 1 Gb/s).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.models.task_graph.generators import make_rng
from gaplab.models.task_graph.instance import Instance, InstanceError, Network, TaskGraph

logger = logging.getLogger(__name__)

SPEED_FACTORS = (0.5, 0.8, 1.2, 1.6)
BANDWIDTH = 125e6
"""Link bandwidth in bytes per second (1 Gb/s)."""

WORKFLOW_FILES = (
    "wfinstances_1000genome-chameleon-2ch-100k-001.json",
    "wfinstances_epigenomics-chameleon-hep-1seq-100k-001.json",
    "wfinstances_montage-chameleon-dss-05d-001.json",
    "wfinstances_srasearch-chameleon-10a-001.json",
)
"""The WfInstances traces expected under ``<data dir>/workflow/``."""


def _get(data: Any, path: str, source: Path | str) -> Any:
    node = data
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise InstanceError(
                f"{source}: WfFormat field {path!r} is missing (no {key!r}); expected a "
                "WfCommons WfInstances JSON file (schema 1.5)"
            )
        node = node[key]
    return node


def read_workflow(
    path: str | Path,
    *,
    name: str | None = None,
    arrival: float = 0.0,
    speed_factors: Sequence[float] = SPEED_FACTORS,
    bandwidth: float = BANDWIDTH,
) -> tuple[TaskGraph, Network]:
    """Read one WfInstances file into a task graph and its synthesized network."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InstanceError(f"{path}: not valid JSON ({error})") from error
    return workflow_from_dict(
        data,
        source=path,
        name=name,
        arrival=arrival,
        speed_factors=speed_factors,
        bandwidth=bandwidth,
    )


def workflow_from_dict(
    data: Mapping[str, Any],
    *,
    source: Path | str = "<workflow>",
    name: str | None = None,
    arrival: float = 0.0,
    speed_factors: Sequence[float] = SPEED_FACTORS,
    bandwidth: float = BANDWIDTH,
) -> tuple[TaskGraph, Network]:
    """Map a parsed WfInstances document to a task graph and a network (rules in the module)."""
    spec_tasks = _get(data, "workflow.specification.tasks", source)
    files = _get(data, "workflow.specification.files", source)
    exec_tasks = _get(data, "workflow.execution.tasks", source)
    machines = _get(data, "workflow.execution.machines", source)
    if not isinstance(spec_tasks, list) or not spec_tasks:
        raise InstanceError(f"{source}: workflow.specification.tasks is empty or not a list")

    size = {}
    for f in files:
        if "id" not in f or "sizeInBytes" not in f:
            raise InstanceError(f"{source}: a file entry lacks 'id' or 'sizeInBytes': {f!r}")
        size[str(f["id"])] = float(f["sizeInBytes"])
    ghz = {}
    for m in machines:
        try:
            ghz[str(m["nodeName"])] = float(m["cpu"]["speedInMHz"]) / 1000.0
        except (KeyError, TypeError) as error:
            raise InstanceError(
                f"{source}: machine entry {m!r} lacks nodeName or cpu.speedInMHz"
            ) from error
    if not ghz or not all(s > 0 for s in ghz.values()):
        raise InstanceError(f"{source}: machines need a positive cpu.speedInMHz, got {ghz}")
    runtime = {}
    machine_of = {}
    for e in exec_tasks:
        tid = str(e.get("id", e.get("name")))
        runtime[tid] = float(e["runtimeInSeconds"])
        used = e.get("machines") or [next(iter(ghz))]
        if used[0] not in ghz:
            raise InstanceError(f"{source}: task {tid!r} ran on unknown machine {used[0]!r}")
        machine_of[tid] = used[0]

    ids = [str(t.get("id", t.get("name"))) for t in spec_tasks]
    known = set(ids)
    costs = []
    edges = []
    outputs = {tid: set(t.get("outputFiles", [])) for tid, t in zip(ids, spec_tasks, strict=True)}
    for tid, t in zip(ids, spec_tasks, strict=True):
        if tid not in runtime:
            raise InstanceError(
                f"{source}: task {tid!r} has no entry in workflow.execution.tasks, so its "
                "runtime is unknown"
            )
        costs.append(round(runtime[tid] * ghz[machine_of[tid]], 9))
        inputs = set(t.get("inputFiles", []))
        for parent in t.get("parents", []):
            parent = str(parent)
            if parent not in known:
                raise InstanceError(
                    f"{source}: task {tid!r} names parent {parent!r}, which is not a task of "
                    "the workflow"
                )
            shared = outputs[parent] & inputs
            missing = [f for f in shared if f not in size]
            if missing:
                raise InstanceError(f"{source}: files {missing[:3]} have no sizeInBytes entry")
            edges.append((parent, tid, float(sum(size[f] for f in shared))))
    label = name or str(data.get("name") or Path(str(source)).stem)
    graph = TaskGraph(label, float(arrival), tuple(ids), tuple(costs), tuple(edges))
    if not speed_factors or not all(f > 0 for f in speed_factors):
        raise InstanceError(f"speed_factors {speed_factors!r} must be positive numbers")
    speeds, names = [], []
    for machine, base in ghz.items():
        for f in speed_factors:
            speeds.append(round(base * f, 6))
            names.append(f"{machine}x{f:g}")
    n = len(speeds)
    matrix = tuple(
        tuple(math.inf if u == v else float(bandwidth) for v in range(n)) for u in range(n)
    )
    return graph, Network(tuple(names), tuple(speeds), matrix)


def import_wfinstances(path: str | Path) -> Instance:
    """Import one WfInstances file as a one-graph instance arriving at time 0."""
    graph, network = read_workflow(path)
    stem = Path(path).stem.removeprefix("wfinstances_")
    return Instance(stem, network, (graph,), meta={"source": Path(path).name})


def prefix_subgraph(graph: TaskGraph, max_tasks: int) -> TaskGraph:
    """Keep the first ``max_tasks`` tasks in topological order, a parent-closed sub-DAG."""
    parents: dict[str, list[str]] = {t: [] for t in graph.tasks}
    for p, c, _ in graph.edges:
        parents[c].append(p)
    chosen: list[str] = []
    done: set[str] = set()
    while len(chosen) < min(max_tasks, len(graph.tasks)):
        t = next(t for t in graph.tasks if t not in done and all(p in done for p in parents[t]))
        chosen.append(t)
        done.add(t)
    cost = dict(zip(graph.tasks, graph.costs, strict=True))
    return TaskGraph(
        graph.name,
        graph.arrival,
        tuple(chosen),
        tuple(cost[t] for t in chosen),
        tuple(e for e in graph.edges if e[0] in done and e[1] in done),
    )


def workflow_stream(
    paths: Sequence[str | Path],
    *,
    seed: int = 0,
    graphs: int = 4,
    mean_gap: float = 300.0,
    jitter: float = 0.1,
    max_tasks: int | None = None,
    speed_factors: Sequence[float] = SPEED_FACTORS,
    bandwidth: float = BANDWIDTH,
) -> Instance:
    """Build a stream of ``graphs`` workflows drawn from ``paths`` with exponential gaps (seconds).

    Graph ``i`` is workflow ``paths[i % len(paths)]`` (cycling keeps every trace in use), its
    task costs scaled by a factor uniform in ``[1 - jitter, 1 + jitter]``, optionally cut to its
    first ``max_tasks`` tasks. The network comes from the first file.
    """
    if not paths:
        raise InstanceError("workflow_stream needs at least one WfInstances file")
    rng = make_rng(seed)
    loaded = [read_workflow(p, speed_factors=speed_factors, bandwidth=bandwidth) for p in paths]
    network = loaded[0][1]
    gaps = rng.exponential(mean_gap, graphs - 1) if graphs > 1 else np.zeros(0)
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    out = []
    for i in range(graphs):
        base = loaded[i % len(loaded)][0]
        if max_tasks is not None:
            base = prefix_subgraph(base, max_tasks)
        scale = rng.uniform(1 - jitter, 1 + jitter, len(base.tasks))
        costs = tuple(round(float(c * s), 6) for c, s in zip(base.costs, scale, strict=True))
        stem = Path(str(paths[i % len(paths)])).stem.removeprefix("wfinstances_").split("-")[0]
        out.append(
            TaskGraph(f"g{i}-{stem}", round(float(times[i]), 3), base.tasks, costs, base.edges)
        )
    return Instance(
        f"wf-stream-s{seed}-{graphs}", network, tuple(out), meta={"generator": "workflow_stream"}
    )
