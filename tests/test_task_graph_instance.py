"""Instance schema, JSON round trip, bad input and generators of the task-graph model."""

from __future__ import annotations

import json
import math

import pytest

from gaplab.models.registry import get_model
from gaplab.models.task_graph import Instance, InstanceError, Network, TaskGraph
from gaplab.models.task_graph.generators import (
    GRAPH_MAKERS,
    adversarial,
    arrivals,
    generate_sized,
    stream,
)
from gaplab.models.task_graph.planning import topological_order


def _doc() -> dict:
    return {
        "name": "doc",
        "network": {"nodes": ["a", "b"], "speeds": [1.0, 2.0], "bandwidth": [[None, 3], [3, None]]},
        "graphs": [
            {
                "name": "g0",
                "arrival": 0.0,
                "tasks": [
                    {"id": "x", "cost": 2.0},
                    {"id": "y", "cost": 1.0, "parents": {"x": 4.0}},
                ],
            },
            {"name": "g1", "arrival": 1.5, "tasks": [{"id": "x", "cost": 3.0}]},
        ],
    }


def test_json_round_trip_keeps_instance(tmp_path):
    instance = Instance.from_dict(_doc())
    path = tmp_path / "i.json"
    instance.to_json(path)
    again = Instance.from_json(path)
    assert again == instance
    assert again.network.bandwidth[0][0] == math.inf
    assert again.flat.labels == (("g0", "x"), ("g0", "y"), ("g1", "x"))
    assert list(again.flat.edge_data) == [4.0]


def test_from_json_accepts_text():
    text = json.dumps(_doc())
    assert Instance.from_json(text).num_tasks == 3


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["graphs"][0]["tasks"][0].update(parents={"y": 1.0}), "cycle"),
        (lambda d: d["graphs"][0]["tasks"][1].update(parents={"ghost": 1.0}), "parent 'ghost'"),
        (lambda d: d["network"].update(speeds=[1.0, 0.0]), "speed of node 'b'"),
        (lambda d: d["network"].update(speeds=[1.0, -1.0]), "positive"),
        (lambda d: d["network"]["bandwidth"][0].__setitem__(1, 0), "bandwidth from 'a' to 'b'"),
        (lambda d: d["network"].update(bandwidth=[[None]]), "2 x 2"),
        (lambda d: d["graphs"][0]["tasks"][0].update(cost=-1), "cost -1"),
        (lambda d: d["graphs"][1].update(arrival=-0.5), "arrival"),
        (lambda d: d["graphs"][1].update(arrival=-0.0, name="g0"), "repeat"),
        (lambda d: d["graphs"].reverse(), "before the previous graph"),
        (lambda d: d["graphs"][0]["tasks"].append({"id": "x", "cost": 1}), "appears twice"),
        (lambda d: d["graphs"][0].update(tasks=[]), "no tasks"),
        (lambda d: d.pop("network"), "network"),
        (lambda d: d["graphs"][0]["tasks"][1].update(parents={"x": "big"}), "expected a number"),
    ],
)
def test_bad_input_raises_clear_error(mutate, message):
    doc = _doc()
    mutate(doc)
    with pytest.raises(InstanceError, match=message):
        Instance.from_dict(doc)


def test_longer_cycle_is_named():
    tasks = ("a", "b", "c")
    edges = (("a", "b", 0.0), ("b", "c", 0.0), ("c", "a", 0.0))
    with pytest.raises(InstanceError, match="a -> b -> c -> a"):
        TaskGraph("g", 0.0, tasks, (1.0, 1.0, 1.0), edges)


def test_invalid_json_text_raises(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(InstanceError, match="not valid JSON"):
        Instance.from_json(path)


def test_network_rejects_nan_speed():
    with pytest.raises(InstanceError, match="speed"):
        Network(("a",), (float("nan"),), ((math.inf,),))


@pytest.mark.parametrize("shape", sorted(GRAPH_MAKERS))
def test_generated_shapes_are_dags(shape):
    import numpy as np

    rng = np.random.default_rng(3)
    graph = GRAPH_MAKERS[shape]("g", 9, rng)
    assert len(graph.tasks) == 9
    instance = Instance("x", Network.complete([1.0], 1.0), (graph,))
    order = topological_order(instance)
    assert sorted(order) == list(range(9))
    position = {t: k for k, t in enumerate(order)}
    for p, c in zip(instance.flat.edge_src, instance.flat.edge_dst, strict=True):
        assert position[p] < position[c]


def test_shape_edge_counts():
    import numpy as np

    rng = np.random.default_rng(0)
    assert len(GRAPH_MAKERS["chain"]("g", 5, rng).edges) == 4
    assert len(GRAPH_MAKERS["fork"]("g", 5, rng).edges) == 4
    assert len(GRAPH_MAKERS["diamond"]("g", 5, rng).edges) == 6


def test_generators_are_deterministic():
    assert generate_sized(7, "medium") == generate_sized(7, "medium")
    assert stream(7, graphs=4) != stream(8, graphs=4)
    assert adversarial(1) == adversarial(1)


def test_generate_sized_dimensions():
    instance = Instance.generate(seed=2, size="small")
    assert len(instance.graphs) == 3
    assert instance.num_tasks == 15
    assert len(instance.network.speeds) == 3


def test_unknown_size_and_process_raise():
    with pytest.raises(InstanceError, match="unknown size"):
        generate_sized(0, "huge")
    import numpy as np

    with pytest.raises(InstanceError, match="arrival process"):
        arrivals(3, np.random.default_rng(0), "bursty")


def test_arrival_processes_are_sorted():
    import numpy as np

    for process in ("poisson", "periodic", "burst", "uniform"):
        times = arrivals(6, np.random.default_rng(1), process, 2.0)
        assert times[0] == 0.0
        assert times == sorted(times)
    assert arrivals(3, np.random.default_rng(0), "periodic", 2.0) == [0.0, 2.0, 4.0]


def test_adversarial_alternates_wide_and_chain():
    instance = adversarial(seed=0, rounds=2, nodes=3, width=2, chain_length=3)
    names = [g.name for g in instance.graphs]
    assert names == ["r0-wide", "r0-chain", "r1-wide", "r1-chain"]
    assert len(instance.graphs[0].tasks) == 6
    assert len(instance.graphs[1].edges) == 2


@pytest.mark.parametrize("seed", [-5, 1.5, "3", True])
def test_generators_reject_invalid_seed(seed):
    with pytest.raises(ValueError, match=f"invalid seed {seed!r}"):
        generate_sized(seed, "tiny")
    with pytest.raises(ValueError, match=f"invalid seed {seed!r}"):
        adversarial(seed=seed)
    with pytest.raises(ValueError, match=f"invalid seed {seed!r}"):
        get_model("task-graph").generate(seed=seed)
