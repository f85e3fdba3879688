"""Blockchain instances: JSON schema, generator, conflict graph and lower bounds."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from gaplab.models.blockchain.generate import generate, grid_instance
from gaplab.models.blockchain.graph import bounds, build_conflict_graph
from gaplab.models.blockchain.instance import (
    SCHEMA,
    BlockInstance,
    InstanceError,
    Transaction,
    instance_from_dict,
    parse_keys,
)
from gaplab.models.registry import get_model


def _minimal(**tx_fields):
    tx = {"id": "a", "reads": [], "writes": ["k"], "gas": 21000}
    tx.update(tx_fields)
    return {"model": "block-exec", "cores": 2, "workload": "heterogeneous", "transactions": [tx]}


def test_round_trip_through_json(tmp_path):
    instance = generate(3, "small", problem="block-build")
    path = tmp_path / "inst.json"
    instance.to_json(path)
    again = BlockInstance.from_json(path)
    assert again.to_dict() == instance.to_dict()
    assert again.budget == instance.budget


def test_schema_describes_the_written_files(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    for problem in ("block-exec", "block-build"):
        data = json.loads(generate(1, "tiny", problem=problem).to_json())
        jsonschema.validate(data, SCHEMA)


def test_unknown_key_names_the_field():
    data = _minimal()
    data["cpus"] = 4
    with pytest.raises(InstanceError, match=r"unknown field\(s\) \['cpus'\]"):
        instance_from_dict(data)
    with pytest.raises(
        InstanceError, match=r"transactions\[0\] has unknown field\(s\) \['nonce'\]"
    ):
        instance_from_dict(_minimal(nonce=3))


def test_negative_gas_is_rejected():
    with pytest.raises(InstanceError, match=r"transactions\[0\]\.gas is -5; gas must not be"):
        instance_from_dict(_minimal(gas=-5))


def test_duplicate_ids_are_rejected():
    data = _minimal()
    data["transactions"].append(dict(data["transactions"][0]))
    with pytest.raises(InstanceError, match=r"duplicate transaction id 'a'"):
        instance_from_dict(data)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"cores": 0}, "cores"),
        ({"workload": "mixed"}, "workload"),
        ({"model": "block-run"}, "model"),
        ({"budget": 5.0}, "takes no budget"),
    ],
)
def test_bad_fields(change, message):
    data = _minimal()
    data.update(change)
    with pytest.raises(InstanceError, match=message):
        instance_from_dict(data)


def test_block_build_needs_a_budget():
    data = _minimal()
    data["model"] = "block-build"
    with pytest.raises(InstanceError, match="needs 'budget'"):
        instance_from_dict(data)


def test_wrong_model_for_file(tmp_path):
    path = tmp_path / "x.json"
    generate(0, "tiny").to_json(path)
    with pytest.raises(InstanceError, match="asked for"):
        BlockInstance.from_json(path, problem="block-build")


def test_malformed_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(InstanceError, match="not valid JSON"):
        BlockInstance.from_json(path)


def test_key_parsing_follows_the_artifact():
    assert parse_keys("['0xAB';0xcd | 0xEF, 0xab ]") == {"0xab", "0xcd", "0xef"}
    assert parse_keys(["A B", ""]) == {"a", "b"}


def test_generator_is_seeded():
    a = generate(7, "medium")
    b = generate(7, "medium")
    assert a.to_dict() == b.to_dict()
    assert generate(8, "medium").to_dict() != a.to_dict()


def test_generator_shapes():
    homo = generate(1, n=300, cores=4, workload="homogeneous")
    assert np.all(homo.times == 1)
    assert all(tx.gas == 21000 for tx in homo.transactions)
    hetero = generate(1, n=2000, cores=4)
    gas = np.array([tx.gas for tx in hetero.transactions])
    assert gas.min() == 21000
    assert 50_000 < gas.mean() < 100_000
    assert np.quantile(gas, 0.99) > 5 * np.median(gas)  # heavy tail
    tips = np.log([tx.tip for tx in hetero.transactions])
    assert abs(tips.std() - 1.0) < 0.1  # log-normal tips
    b = bounds(hetero)
    assert 2 < hetero.n / b.chain_nodes < 15  # hot keys make long chains, as in real blocks


@pytest.mark.parametrize("cores", [2, 4, 8])
def test_grid_follows_the_design_note(cores):
    homo = grid_instance("block-exec", "homogeneous", cores)
    assert homo.n == 100 * cores
    hetero = grid_instance("block-exec", "heterogeneous", cores)
    assert sum(tx.gas for tx in hetero.transactions) <= 2_100_000 * cores
    build = grid_instance("block-build", "homogeneous", cores)
    assert build.n == 100 * cores and build.rounds == 100
    build_t = grid_instance("block-build", "heterogeneous", cores, x=4)
    assert build_t.budget == 630_000
    assert sum(tx.gas for tx in build_t.transactions) <= 4 * cores * 630_000


def _all_pairs_edges(txs):
    edges = set()
    for (i, a), (j, b) in itertools.combinations(enumerate(txs), 2):
        if a.writes & b.writes or a.writes & b.reads or a.reads & b.writes:
            edges.add((i, j))
    return edges


@pytest.mark.parametrize("seed", range(5))
def test_inverted_index_matches_all_pairs_scan(seed):
    instance = generate(seed, n=120, workload="heterogeneous", hot_share=0.5)
    graph = instance.graph
    got = set(zip(graph.src.tolist(), graph.dst.tolist(), strict=True))
    assert got == _all_pairs_edges(instance.transactions)
    assert np.all(graph.src < graph.dst)


def test_readers_alone_do_not_conflict():
    txs = [
        Transaction("a", reads=frozenset({"k"})),
        Transaction("b", reads=frozenset({"k"})),
        Transaction("c", writes=frozenset({"k"})),
    ]
    graph = build_conflict_graph(txs)
    assert list(zip(graph.src.tolist(), graph.dst.tolist(), strict=True)) == [(0, 2), (1, 2)]
    assert graph.has_edge(2, 0) and not graph.has_edge(0, 1)
    assert graph.conflicting(np.array([0, 0, 1]), np.array([1, 2, 2])).tolist() == [
        False,
        True,
        True,
    ]


def test_bounds_on_a_chain():
    txs = [Transaction(f"t{i}", writes=frozenset({"hot"}), gas=1000 * (i + 1)) for i in range(4)]
    txs.append(Transaction("free", writes=frozenset({"x"}), gas=500))
    instance = BlockInstance("block-exec", "chain", 2, "heterogeneous", tuple(txs))
    b = bounds(instance)
    assert b.critical_path == 10_000
    assert b.chain_nodes == 4
    assert b.work == 10_500
    assert b.key_chain == 10_000
    assert b.makespan_lower == 10_000
    unit = instance.with_changes(workload="homogeneous")
    assert bounds(unit).makespan_lower == 4


@pytest.mark.parametrize("seed", [-5, 1.5, "3", True])
@pytest.mark.parametrize("problem", ["block-exec", "block-build"])
def test_generator_rejects_invalid_seed(seed, problem):
    with pytest.raises(ValueError, match=f"invalid seed {seed!r}"):
        generate(seed, problem=problem)
    with pytest.raises(ValueError, match=f"invalid seed {seed!r}"):
        get_model(problem).generate(seed=seed)


def test_grid_instance_rejects_negative_seed():
    with pytest.raises(ValueError, match="invalid seed -1"):
        grid_instance("block-exec", "homogeneous", 2, seed=-1)
