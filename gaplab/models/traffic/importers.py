"""Traffic instances from network topologies: REPETITA text files and Topology Zoo GraphML.

A topology is a graph of PoPs with link capacities; the traffic model is bipartite (sources to
service nodes over dedicated access paths). The mapping, the same for both formats, is:

- **Capacities** are in Gb/s and one work unit is 1 Gb, which keeps queueing delays
  (``1 / (mu - x)`` seconds) comparable with propagation delays. REPETITA ``bw`` fields are read as
  kbit/s (Abilene's OC-192 links read 9953280). GraphML links take ``LinkSpeedRaw`` (bit/s).
  Without it they take a SONET name such as ``OC-192`` (n x 51.84 Mb/s) or a speed such as
  ``10 Gbps`` from ``LinkLabel`` or ``LinkType``. Without either they take the median of the
  file's known link speeds (1 Gb/s when none is known). GraphML links are undirected and
  become two arcs.
- **Service nodes** are the ``servers`` PoPs with the largest total capacity of attached links
  (ties go to the lower node index). The default count is ``max(2, round(n / 5))``.
- **Node capacity** ``mu_j`` is ``server_share`` (default 0.5) times the total capacity of the
  links into PoP ``j``: a server that processes half its line rate.
- **Sources** are all other PoPs. With REPETITA demands, a source's raw rate is its total
  outgoing demand; GraphML has no demands, so the raw rate is the PoP's attached capacity (a
  gravity-style weight). PoPs with zero raw rate are dropped.
- **Access capacity** ``mu_ij`` is the bottleneck capacity of the widest path from source ``i``
  to node ``j`` (0 when ``j`` is unreachable). Paths of different pairs may share links, which
  the model ignores: each pair's path is treated as dedicated.
- **Rates** are the raw rates scaled so that they are ``load`` (default 0.6) times the largest
  multiple that fits the transportation LP, which keeps every instance feasible.
- **Propagation delay** (``propagation=True``, the default) is the great-circle length of that
  widest path divided by 200,000 km/s (light in fibre), from the PoP coordinates; PoPs without
  coordinates add none.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
import statistics
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaplab.models.traffic.feasibility import max_scaling
from gaplab.models.traffic.instance import Instance, InstanceError

logger = logging.getLogger(__name__)

FIBRE_KM_PER_S = 200_000.0
"""Signal speed in optical fibre, about two thirds of the speed of light."""
EARTH_RADIUS_KM = 6371.0
OC1_GBPS = 0.05184
"""SONET OC-1 line rate in Gb/s; OC-n carries n times this."""
DEFAULT_LINK_GBPS = 1.0
"""Capacity of a GraphML link when the file gives no speed for any link."""


class TopologyError(ValueError):
    """A topology or demand file is malformed; the message names the line or element."""


@dataclass
class Topology:
    """A directed graph of PoPs: labels, optional (longitude, latitude) and arcs in Gb/s."""

    name: str
    labels: list[str]
    coordinates: list[tuple[float, float] | None]
    arcs: list[tuple[int, int, float]]
    demand_out: np.ndarray | None = None
    """Total outgoing demand of each PoP in Gb/s, when the source has demands."""


# ---------------------------------------------------------------------------- REPETITA


def _section(lines: list[tuple[int, str]], start: int, keyword: str, path: Path) -> tuple[int, int]:
    """Return the declared count of section ``keyword`` and the index of its first data line."""
    if start >= len(lines) or not lines[start][1].upper().startswith(keyword):
        where = f"line {lines[start][0]}" if start < len(lines) else "the end of the file"
        raise TopologyError(f"{path}: expected a '{keyword} <count>' line at {where}")
    number, text = lines[start]
    try:
        count = int(text.split()[1])
    except (IndexError, ValueError) as error:
        raise TopologyError(f"{path} line {number}: invalid section header {text!r}") from error
    # The next line is the column header ("label x y" and so on).
    return count, start + 2


def _content_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise TopologyError(f"topology file {path} not found") from error
    return [(k + 1, line.strip()) for k, line in enumerate(text.splitlines()) if line.strip()]


def read_repetita(graph_path: Path, demands_path: Path | None = None) -> Topology:
    """Read a REPETITA ``.graph`` file and, if given, its ``.demands`` file.

    Raises
    ------
    TopologyError
        On a missing section, a short section, a non-numeric field, an edge or demand whose end
        point is not a declared node (a dangling edge), or a negative capacity or demand.
    """
    graph_path = Path(graph_path)
    lines = _content_lines(graph_path)
    count, cursor = _section(lines, 0, "NODES", graph_path)
    labels: list[str] = []
    coordinates: list[tuple[float, float] | None] = []
    for number, text in lines[cursor : cursor + count]:
        parts = text.split()
        if len(parts) < 3 or parts[0].upper().startswith("EDGES"):
            raise TopologyError(
                f"{graph_path} line {number}: expected 'label x y' for one of {count} nodes"
            )
        labels.append(parts[0])
        try:
            coordinates.append((float(parts[1]), float(parts[2])))
        except ValueError as error:
            raise TopologyError(f"{graph_path} line {number}: invalid coordinates") from error
    cursor += count
    count, cursor = _section(lines, cursor, "EDGES", graph_path)
    arcs = []
    body = lines[cursor : cursor + count]
    if len(body) < count:
        raise TopologyError(f"{graph_path}: EDGES declares {count} edges but has {len(body)}")
    for number, text in body:
        parts = text.split()
        try:
            src, dst, capacity_kbps = int(parts[1]), int(parts[2]), float(parts[4])
        except (IndexError, ValueError) as error:
            raise TopologyError(
                f"{graph_path} line {number}: expected 'label src dest weight bw delay', got "
                f"{text!r}"
            ) from error
        for end in (src, dst):
            if not 0 <= end < len(labels):
                raise TopologyError(
                    f"{graph_path} line {number}: edge {parts[0]!r} refers to node {end}, but "
                    f"the file declares nodes 0..{len(labels) - 1}; fix or remove the edge"
                )
        if capacity_kbps < 0:
            raise TopologyError(f"{graph_path} line {number}: negative capacity {capacity_kbps}")
        arcs.append((src, dst, capacity_kbps / 1e6))
    topology = Topology(graph_path.name.split(".")[0], labels, coordinates, arcs)
    if demands_path is not None:
        topology.demand_out = _read_demands(Path(demands_path), len(labels))
    return topology


def _read_demands(path: Path, num_nodes: int) -> np.ndarray:
    lines = _content_lines(path)
    count, cursor = _section(lines, 0, "DEMANDS", path)
    body = lines[cursor : cursor + count]
    if len(body) < count:
        raise TopologyError(f"{path}: DEMANDS declares {count} demands but has {len(body)}")
    out = np.zeros(num_nodes)
    for number, text in body:
        parts = text.split()
        try:
            src, dst, rate_kbps = int(parts[1]), int(parts[2]), float(parts[3])
        except (IndexError, ValueError) as error:
            raise TopologyError(
                f"{path} line {number}: expected 'label src dest bw', got {text!r}"
            ) from error
        for end in (src, dst):
            if not 0 <= end < num_nodes:
                raise TopologyError(
                    f"{path} line {number}: demand {parts[0]!r} refers to node {end}, but the "
                    f"topology has nodes 0..{num_nodes - 1}"
                )
        if rate_kbps < 0:
            raise TopologyError(f"{path} line {number}: negative demand {rate_kbps}")
        out[src] += rate_kbps / 1e6
    return out


# ---------------------------------------------------------------------------- GraphML

_GRAPHML = "{http://graphml.graphdrawing.org/xmlns}"


def _speed_from_text(text: str) -> float | None:
    """Gb/s from a link name such as ``OC-192c`` or ``10 Gbps``; ``None`` if it has none."""
    sonet = re.search(r"OC-?(\d+)", text, re.IGNORECASE)
    if sonet:
        return int(sonet.group(1)) * OC1_GBPS
    speed = re.search(r"(\d+(?:\.\d+)?)\s*([GMK])b(?:it)?/?p?s", text, re.IGNORECASE)
    if speed:
        factor = {"G": 1.0, "M": 1e-3, "K": 1e-6}[speed.group(2).upper()]
        return float(speed.group(1)) * factor
    return None


def read_graphml(path: Path) -> Topology:
    """Read a Topology Zoo GraphML file with :mod:`xml.etree.ElementTree`.

    Raises
    ------
    TopologyError
        On invalid XML, a missing graph element, or an edge whose end point is not a declared
        node (a dangling edge).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as error:
        raise TopologyError(f"topology file {path} not found") from error
    except ET.ParseError as error:
        raise TopologyError(f"{path}: invalid GraphML XML: {error}") from error
    keys = {
        (key.get("for"), key.get("attr.name")): key.get("id") for key in root.iter(f"{_GRAPHML}key")
    }
    graph = root.find(f"{_GRAPHML}graph")
    if graph is None:
        raise TopologyError(f"{path}: no <graph> element; is this a GraphML file?")
    undirected = graph.get("edgedefault", "undirected") == "undirected"

    def data(element: ET.Element, owner: str, name: str) -> str | None:
        key = keys.get((owner, name))
        for item in element.findall(f"{_GRAPHML}data"):
            if item.get("key") == key:
                return item.text
        return None

    ids: dict[str, int] = {}
    labels: list[str] = []
    coordinates: list[tuple[float, float] | None] = []
    for element in graph.findall(f"{_GRAPHML}node"):
        node_id = element.get("id")
        if node_id is None or node_id in ids:
            raise TopologyError(f"{path}: a node has a missing or repeated id {node_id!r}")
        ids[node_id] = len(labels)
        labels.append(data(element, "node", "label") or node_id)
        lon, lat = data(element, "node", "Longitude"), data(element, "node", "Latitude")
        coordinates.append((float(lon), float(lat)) if lon and lat else None)

    edges: list[tuple[int, int, float | None]] = []
    for element in graph.findall(f"{_GRAPHML}edge"):
        ends = []
        for side in ("source", "target"):
            end = element.get(side)
            if end not in ids:
                raise TopologyError(
                    f"{path}: edge {element.get('source')!r} -> {element.get('target')!r} refers "
                    f"to node {end!r}, which is not declared; fix or remove the edge"
                )
            ends.append(ids[end])
        raw = data(element, "edge", "LinkSpeedRaw")
        speed = float(raw) / 1e9 if raw else None
        if speed is None:
            for field_name in ("LinkLabel", "LinkType", "LinkSpeed"):
                text = data(element, "edge", field_name)
                if text and (speed := _speed_from_text(text)) is not None:
                    break
        edges.append((ends[0], ends[1], speed))

    known = [s for _, _, s in edges if s is not None]
    fallback = statistics.median(known) if known else DEFAULT_LINK_GBPS
    if len(known) < len(edges):
        logger.info(
            "%s: %d of %d links give no speed; using %g Gb/s for them",
            path.name,
            len(edges) - len(known),
            len(edges),
            fallback,
        )
    arcs = []
    for u, v, speed in edges:
        capacity = fallback if speed is None else speed
        arcs.append((u, v, capacity))
        if undirected:
            arcs.append((v, u, capacity))
    return Topology(path.stem, labels, coordinates, arcs)


# ---------------------------------------------------------------------------- mapping


def _great_circle_km(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float:
    if a is None or b is None:
        return 0.0
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def widest_paths(topology: Topology, origin: int) -> tuple[np.ndarray, np.ndarray]:
    """Bottleneck capacity and great-circle length (km) of the widest path to every PoP.

    A Dijkstra search that maximizes the smallest capacity along the path; among equally wide
    paths the first found is kept. Unreachable PoPs get capacity 0.
    """
    n = len(topology.labels)
    out: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for u, v, capacity in topology.arcs:
        out[u].append((v, capacity))
    width = np.zeros(n)
    length = np.zeros(n)
    width[origin] = np.inf
    done = np.zeros(n, dtype=bool)
    heap = [(-np.inf, origin)]
    while heap:
        negative, u = heapq.heappop(heap)
        if done[u]:
            continue
        done[u] = True
        for v, capacity in out[u]:
            candidate = min(-negative, capacity)
            if candidate > width[v] and not done[v]:
                width[v] = candidate
                length[v] = length[u] + _great_circle_km(
                    topology.coordinates[u], topology.coordinates[v]
                )
                heapq.heappush(heap, (-candidate, v))
    return width, length


def topology_instance(
    topology: Topology,
    *,
    servers: int | None = None,
    server_share: float = 0.5,
    load: float = 0.6,
    propagation: bool = True,
) -> Instance:
    """Map a topology to a traffic Instance by the rule in this module's docstring."""
    n = len(topology.labels)
    if n < 2:
        raise TopologyError(f"topology {topology.name!r} has {n} PoPs; at least 2 are needed")
    if not 0 < load < 1:
        raise ValueError(f"load must lie in (0, 1), got {load}")
    count = max(2, round(n / 5)) if servers is None else int(servers)
    if not 1 <= count < n:
        raise ValueError(f"servers must lie in [1, {n - 1}] for {n} PoPs, got {count}")
    attached = np.zeros(n)
    incoming = np.zeros(n)
    for u, v, capacity in topology.arcs:
        attached[u] += capacity
        incoming[v] += capacity
    order = sorted(range(n), key=lambda k: (-attached[k], k))
    service = sorted(order[:count])
    raw = topology.demand_out if topology.demand_out is not None else attached
    sources = [k for k in range(n) if k not in service and raw[k] > 0]
    if not sources:
        raise TopologyError(f"topology {topology.name!r} leaves no PoP with traffic as a source")

    access = np.zeros((len(sources), count))
    delay = np.zeros((len(sources), count))
    for row, origin in enumerate(sources):
        width, length = widest_paths(topology, origin)
        access[row] = width[service]
        delay[row] = length[service] / FIBRE_KM_PER_S
    unreachable = access.sum(axis=1) == 0
    if unreachable.any():
        lost = [topology.labels[sources[r]] for r in np.flatnonzero(unreachable)]
        logger.warning("%s: sources %s reach no service node; dropping them", topology.name, lost)
        keep = ~unreachable
        sources = [s for s, k in zip(sources, keep, strict=True) if k]
        access, delay = access[keep], delay[keep]

    node_capacity = server_share * incoming[service]
    rates = raw[sources].astype(float)
    trial = Instance(
        name=topology.name,
        sources=tuple(topology.labels[k] for k in sources),
        nodes=tuple(topology.labels[k] for k in service),
        rates=rates / rates.sum() * 1e-6 * min(node_capacity.sum(), access.sum()),
        node_capacity=node_capacity,
        access_capacity=access,
    )
    scale = load * max_scaling(trial)
    try:
        return Instance(
            name=topology.name,
            sources=trial.sources,
            nodes=trial.nodes,
            rates=trial.rates * scale,
            node_capacity=node_capacity,
            access_capacity=access,
            propagation=delay if propagation else np.zeros((0, 0)),
            meta={
                "unit": "Gb/s",
                "servers": count,
                "server_share": server_share,
                "load": load,
                "rule": "widest-path access capacity, largest attached capacity as servers",
            },
        )
    except InstanceError as error:  # pragma: no cover - the scaling keeps the demand inside
        raise TopologyError(
            f"topology {topology.name!r} maps to an invalid instance: {error}"
        ) from error


_DEMANDS_NAME = re.compile(r"^(?P<stem>.+?)(?:\.\d+)?\.demands$", re.IGNORECASE)


def import_repetita(path: Path, **options: object) -> Instance:
    """Import a REPETITA network from its ``.graph`` file or from one of its ``.demands`` files.

    Given ``<Net>.graph``, the ``<Net>.0000.demands`` file beside it is read when present.
    Given ``<Net>.<k>.demands``, the ``<Net>.graph`` file beside it supplies the topology and
    that demands file the rates.

    Raises
    ------
    TopologyError
        When a ``.demands`` file has no ``.graph`` file beside it, or a file is malformed.
    """
    path = Path(path)
    match = _DEMANDS_NAME.match(path.name)
    if match:
        stem = match.group("stem")
        graph = path.with_name(f"{stem}.graph")
        if not graph.is_file():
            raise TopologyError(
                f"{path.name!r} holds only demands; the topology must come from {graph.name!r} "
                f"in the same folder, which was not found. Put {graph.name!r} beside it or "
                "pass the .graph file"
            )
        demands: Path | None = path
    else:
        stem = path.name[: -len(".graph")] if path.name.endswith(".graph") else path.stem
        graph = path
        beside = path.with_name(f"{stem}.0000.demands")
        demands = beside if beside.is_file() else None
    topology = read_repetita(graph, demands)
    topology.name = stem
    return topology_instance(topology, **options)  # type: ignore[arg-type]


def import_graphml(path: Path, **options: object) -> Instance:
    """Import a Topology Zoo GraphML file."""
    return topology_instance(read_graphml(Path(path)), **options)  # type: ignore[arg-type]


def import_network(path: Path, **options: object) -> Instance:
    """Import a ``.graph`` or ``.demands`` (REPETITA) or ``.graphml`` (Topology Zoo) file by its
    suffix."""
    path = Path(path)
    if path.suffix.lower() == ".graphml":
        return import_graphml(path, **options)
    if path.suffix.lower() in (".graph", ".demands"):
        return import_repetita(path, **options)
    raise TopologyError(
        f"cannot tell the format of {path.name!r}; expected a .graph or .demands (REPETITA) or "
        ".graphml (Topology Zoo) file"
    )


IMPORTERS = {"graphml": import_graphml, "graph": import_repetita, "demands": import_repetita}
"""Importers by file suffix, for ``gaplab import traffic FILE``; ``graphml`` is listed first
because the registry also matches a format name inside the file name."""
