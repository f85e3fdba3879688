"""Traffic instances: validation, JSON, the shipped 5x3 case and the seeded generator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.models.traffic import (
    DemandDoesNotFitError,
    Instance,
    InstanceError,
    check_feasible,
    generate,
    pubsub_instance,
    symmetric_instance,
)
from gaplab.models.traffic.feasibility import max_headroom_start, max_scaling
from gaplab.models.traffic.generate import throughput

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "traffic" / "pubsub-5x3.json"


def small(**changes: object) -> Instance:
    fields: dict[str, object] = {
        "name": "tiny",
        "sources": ("a", "b"),
        "nodes": ("u", "v"),
        "rates": [3.0, 4.0],
        "node_capacity": [10.0, 10.0],
        "access_capacity": [[5.0, 5.0], [5.0, 0.0]],
    }
    fields.update(changes)
    return Instance(**fields)  # type: ignore[arg-type]


def test_pubsub_matches_published_data() -> None:
    inst = pubsub_instance()
    assert inst.rates.tolist() == [0.15625, 0.09765625, 30.05859375, 30.009765625, 0.107421875]
    assert inst.access_capacity[0, 0] == 47.49080237694725
    assert inst.access_capacity[4, 2] == 51.84829137724085
    assert inst.node_capacity.tolist() == [
        160.75448519014384,
        106.50515929852796,
        196.56320330745592,
    ]
    assert inst.total_rate == pytest.approx(60.4296875)


def test_shipped_json_equals_generator() -> None:
    shipped = Instance.from_json(SHIPPED)
    built = pubsub_instance()
    assert shipped.sources == built.sources
    assert shipped.nodes == built.nodes
    assert np.array_equal(shipped.rates, built.rates)
    assert np.array_equal(shipped.access_capacity, built.access_capacity)
    assert np.array_equal(shipped.node_capacity, built.node_capacity)


def test_json_round_trip_with_propagation(tmp_path: Path) -> None:
    inst = small(propagation=[[0.01, 0.02], [0.0, 0.0]])
    path = tmp_path / "tiny.json"
    inst.to_json(path)
    again = Instance.from_json(path)
    assert np.array_equal(again.propagation, inst.propagation)
    assert np.array_equal(again.access_capacity, inst.access_capacity)
    assert again.name == "tiny"


def test_demand_above_total_capacity_rejected() -> None:
    with pytest.raises(InstanceError, match="total demand 21 is not below the total node"):
        small(rates=[11.0, 10.0], access_capacity=[[20.0, 20.0], [20.0, 20.0]])


def test_negative_access_capacity_rejected() -> None:
    with pytest.raises(InstanceError, match=r"access_capacity\[1\]\[0\].*negative"):
        small(access_capacity=[[5.0, 5.0], [-1.0, 5.0]])


def test_negative_node_capacity_rejected() -> None:
    with pytest.raises(InstanceError, match=r"node_capacity\[1\].*must be positive"):
        small(node_capacity=[10.0, -2.0])


def test_source_beyond_its_access_rejected() -> None:
    with pytest.raises(InstanceError, match="source 'b' sends 6 but its access paths carry"):
        small(rates=[3.0, 6.0])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rates": [3.0, 0.0]}, "every source rate must be positive"),
        ({"rates": [3.0, float("nan")]}, "not finite"),
        ({"access_capacity": [[5.0, 5.0]]}, "must have shape"),
        ({"sources": ("a", "a")}, "duplicate labels"),
        ({"nodes": ()}, "nodes is empty"),
    ],
)
def test_invalid_fields_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InstanceError, match=message):
        small(**changes)


def test_from_json_rejects_other_format(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else", "sources": []}))
    with pytest.raises(InstanceError, match="not a traffic instance"):
        Instance.from_json(path)


def test_from_json_rejects_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"sources": ["a"], "nodes": ["u"]}))
    with pytest.raises(InstanceError, match="lacks the fields"):
        Instance.from_json(path)


def test_transportation_lp_scaling_of_pubsub() -> None:
    # Demand can grow about 4.87 times before the access paths of P2 and P3 saturate.
    assert max_scaling(pubsub_instance()) == pytest.approx(4.8695, abs=1e-3)


def test_demand_that_cannot_fit_names_the_factor() -> None:
    # Both sources can only reach node u (capacity 5) but send 6 in total.
    inst = small(
        rates=[3.0, 3.0],
        node_capacity=[5.0, 100.0],
        access_capacity=[[10.0, 0.0], [10.0, 0.0]],
    )
    with pytest.raises(DemandDoesNotFitError, match=r"fits at most 0\.833333 times"):
        check_feasible(inst)


def test_headroom_start_is_feasible() -> None:
    inst = pubsub_instance()
    x, headroom = max_headroom_start(inst)
    assert headroom == pytest.approx(38.7705, abs=1e-3)
    assert np.allclose(x.sum(axis=1), inst.rates)
    assert np.all(x >= 0)
    assert np.all(x.sum(axis=0) <= inst.node_capacity - headroom + 1e-9)


def test_generator_is_seeded_and_feasible() -> None:
    first = generate(7, (12, 4))
    second = generate(7, (12, 4))
    other = generate(8, (12, 4))
    assert np.array_equal(first.access_capacity, second.access_capacity)
    assert not np.array_equal(first.access_capacity, other.access_capacity)
    assert first.total_rate == pytest.approx(0.5 * first.node_capacity.sum())
    assert max_scaling(first) > 1


def test_generator_sparse_paths() -> None:
    inst = generate(3, (30, 6), link_probability=0.4)
    assert (inst.access_capacity == 0).any()
    assert inst.links.sum(axis=1).min() >= 1


def test_generator_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        generate(0, "huge")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 8),
    m=st.integers(1, 4),
    load=st.floats(0.01, 0.99),
    link_probability=st.sampled_from([1.0, 0.6, 0.2]),
)
def test_generated_instances_fit_and_survive_json(
    seed: int, n: int, m: int, load: float, link_probability: float
) -> None:
    # Every accepted size, load and link probability must give a demand that fits.
    inst = generate(seed, (n, m), load=load, link_probability=link_probability)
    assert max_scaling(inst) > 1.0
    assert inst.total_rate == pytest.approx(
        load * throughput(inst.node_capacity, inst.access_capacity), rel=1e-9
    )
    again = Instance.from_json(inst.to_json())
    assert np.array_equal(again.rates, inst.rates)
    assert np.array_equal(again.access_capacity, inst.access_capacity)


@pytest.mark.parametrize(("size", "load"), [((1, 4), 0.4), ((1, 1), 0.99), ((2, 6), 0.95)])
def test_generator_fits_few_sources_at_high_load(size: tuple[int, int], load: float) -> None:
    # One source over four nodes at load 0.4 used to find no feasible draw in 50 tries.
    inst = generate(3, size, load=load)
    assert max_scaling(inst) > 1.0
    assert np.all(inst.rates < inst.access_capacity.sum(axis=1))


def test_generator_rejects_bad_load() -> None:
    with pytest.raises(ValueError, match="load must lie in"):
        generate(0, (2, 2), load=1.0)


def test_symmetric_instance_shape() -> None:
    inst = symmetric_instance()
    assert inst.num_sources == 5
    assert inst.num_nodes == 3
    assert inst.total_rate / inst.node_capacity.sum() == pytest.approx(0.75)
