"""Importers of network topologies (REPETITA and Topology Zoo GraphML) into traffic instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaplab.models.registry import get_model
from gaplab.models.traffic import certify, solve_direct
from gaplab.models.traffic.feasibility import max_scaling
from gaplab.models.traffic.importers import (
    TopologyError,
    _speed_from_text,
    import_network,
    read_graphml,
    read_repetita,
    topology_instance,
    widest_paths,
)
from tests.conftest import require_data_file

NETWORKS = [
    "repetita_Abilene.graph",
    "repetita_AttMpls.graph",
    "repetita_Geant2012.graph",
    "topologyzoo_Abilene.graphml",
    "topologyzoo_Geant2012.graphml",
]

GRAPH = """NODES 3
label x y
a 0.0 0.0
b 1.0 0.0
c 2.0 0.0

EDGES 4
label src dest weight bw delay
e0 0 1 1 10000000 1
e1 1 0 1 10000000 1
e2 1 2 1 2000000 1
e3 2 1 1 2000000 1
"""

GRAPHML = """<?xml version="1.0" encoding="utf-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key attr.name="label" attr.type="string" for="node" id="d1" />
  <key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="d2" />
  <key attr.name="LinkLabel" attr.type="string" for="edge" id="d3" />
  <graph edgedefault="undirected">
    <node id="0"><data key="d1">A</data></node>
    <node id="1"><data key="d1">B</data></node>
    <node id="2"><data key="d1">C</data></node>
    <edge source="0" target="1"><data key="d2">10000000000.0</data></edge>
    <edge source="1" target="2"><data key="d3">OC-48</data></edge>
    <edge source="0" target="2"></edge>
  </graph>
</graphml>
"""


@pytest.mark.parametrize("file_name", NETWORKS)
def test_every_network_imports_and_solves(data_dir: Path, file_name: str) -> None:
    path = require_data_file(data_dir, f"network/{file_name}")
    inst = import_network(path)
    assert inst.num_nodes >= 2
    assert inst.num_sources >= 5
    assert max_scaling(inst) == pytest.approx(1 / 0.6, rel=1e-6)
    assert np.all(inst.propagation[inst.links] > 0)
    _, allocation = solve_direct(inst)
    assert allocation is not None
    assert get_model("traffic").validate(inst, allocation) == []
    assert certify(inst, allocation.flows).failures() == []


def test_repetita_sizes_and_units(data_dir: Path) -> None:
    path = require_data_file(data_dir, "network/repetita_Abilene.graph")
    topology = read_repetita(path, path.with_name("repetita_Abilene.0000.demands"))
    assert len(topology.labels) == 11
    assert len(topology.arcs) == 28
    assert topology.arcs[0][2] == pytest.approx(9.95328)  # OC-192 in Gb/s
    assert topology.demand_out is not None
    assert topology.demand_out.sum() > 0


def test_geant_graphml_speeds(data_dir: Path) -> None:
    path = require_data_file(data_dir, "network/topologyzoo_Geant2012.graphml")
    topology = read_graphml(path)
    assert len(topology.labels) == 40
    assert len(topology.arcs) == 2 * 61
    speeds = sorted({round(c, 3) for _, _, c in topology.arcs})
    assert speeds[0] == pytest.approx(0.155)
    assert speeds[-1] == pytest.approx(10.0)


def test_small_repetita_widest_path(tmp_path: Path) -> None:
    path = tmp_path / "tiny.graph"
    path.write_text(GRAPH)
    topology = read_repetita(path)
    width, length = widest_paths(topology, 0)
    assert width.tolist() == [np.inf, 10.0, 2.0]
    assert length[2] == pytest.approx(2 * 111.19, rel=1e-3)
    inst = topology_instance(topology, servers=1, propagation=False)
    assert inst.nodes == ("b",)
    assert inst.sources == ("a", "c")


def test_small_graphml_speed_rules(tmp_path: Path) -> None:
    path = tmp_path / "tiny.graphml"
    path.write_text(GRAPHML)
    topology = read_graphml(path)
    capacities = {(u, v): c for u, v, c in topology.arcs}
    assert capacities[(0, 1)] == pytest.approx(10.0)
    assert capacities[(1, 2)] == pytest.approx(48 * 0.05184)
    # The link without a speed takes the median of the known ones.
    assert capacities[(0, 2)] == pytest.approx((10.0 + 48 * 0.05184) / 2)
    assert topology.labels == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("OC-192c", 9.95328), ("2.5 Gbps", 2.5), ("155 Mbps", 0.155), ("fibre", None)],
)
def test_speed_from_link_names(text: str, expected: float | None) -> None:
    if expected is None:
        assert _speed_from_text(text) is None
    else:
        assert _speed_from_text(text) == pytest.approx(expected)


def test_repetita_dangling_edge_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dangling.graph"
    path.write_text(GRAPH.replace("e3 2 1", "e3 7 1"))
    with pytest.raises(TopologyError, match="edge 'e3' refers to node 7.*declares nodes 0..2"):
        read_repetita(path)


def test_graphml_dangling_edge_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dangling.graphml"
    path.write_text(GRAPHML.replace('<edge source="0" target="2">', '<edge source="0" target="9">'))
    with pytest.raises(TopologyError, match="refers to node '9', which is not declared"):
        read_graphml(path)


def test_demand_to_unknown_node_rejected(tmp_path: Path) -> None:
    graph = tmp_path / "net.graph"
    graph.write_text(GRAPH)
    demands = tmp_path / "net.0000.demands"
    demands.write_text("DEMANDS 1\nlabel src dest bw\nd0 0 5 100\n")
    with pytest.raises(TopologyError, match="demand 'd0' refers to node 5"):
        read_repetita(graph, demands)


def test_short_edge_section_rejected(tmp_path: Path) -> None:
    path = tmp_path / "short.graph"
    path.write_text(GRAPH.replace("EDGES 4", "EDGES 6"))
    with pytest.raises(TopologyError, match="EDGES declares 6 edges but has 4"):
        read_repetita(path)


def test_invalid_xml_rejected(tmp_path: Path) -> None:
    path = tmp_path / "broken.graphml"
    path.write_text("<graphml><graph>")
    with pytest.raises(TopologyError, match="invalid GraphML XML"):
        read_graphml(path)


def test_unknown_suffix_rejected(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot tell the format"):
        import_network(tmp_path / "net.txt")


def test_missing_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="not found"):
        import_network(tmp_path / "absent.graph")


def test_repetita_import_reads_demands_beside_graph(tmp_path: Path) -> None:
    (tmp_path / "net.graph").write_text(GRAPH)
    (tmp_path / "net.0000.demands").write_text(
        "DEMANDS 2\nlabel src dest bw\nd0 0 2 300\nd1 2 0 100\n"
    )
    inst = import_network(tmp_path / "net.graph", servers=1, propagation=False)
    assert inst.sources == ("a", "c")
    assert inst.rates[0] / inst.rates[1] == pytest.approx(3.0)


def test_demands_file_finds_its_graph(tmp_path: Path) -> None:
    (tmp_path / "net.graph").write_text(GRAPH)
    (tmp_path / "net.0000.demands").write_text("DEMANDS 1\nlabel src dest bw\nd0 0 2 300\n")
    (tmp_path / "net.0001.demands").write_text(
        "DEMANDS 2\nlabel src dest bw\nd0 0 2 300\nd1 2 0 100\n"
    )
    from_graph = import_network(tmp_path / "net.graph", servers=1, propagation=False)
    from_first = import_network(tmp_path / "net.0000.demands", servers=1, propagation=False)
    assert from_first.sources == from_graph.sources
    assert np.array_equal(from_first.rates, from_graph.rates)
    # Another demands file of the same network gives its own rates.
    from_second = import_network(tmp_path / "net.0001.demands", servers=1, propagation=False)
    assert from_second.sources == ("a", "c")
    assert from_second.rates[0] / from_second.rates[1] == pytest.approx(3.0)


def test_demands_file_without_graph_rejected(tmp_path: Path) -> None:
    (tmp_path / "lonely.0000.demands").write_text("DEMANDS 1\nlabel src dest bw\nd0 0 2 300\n")
    with pytest.raises(TopologyError, match=r"'lonely.graph'.*pass the .graph file"):
        import_network(tmp_path / "lonely.0000.demands")


def test_registry_picks_repetita_for_demands_files() -> None:
    from gaplab.models.traffic.importers import import_repetita

    spec = get_model("traffic")
    assert spec.pick_importer(Path("repetita_Abilene.0000.demands")) is import_repetita
    assert spec.pick_importer(Path("repetita_Abilene.graph")) is import_repetita
