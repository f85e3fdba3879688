"""Validator and online schedulers of the task-graph model: Last-K, HEFT, CPoP, MinMin, MaxMin."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.heuristics.task_graph import (
    BASES,
    fully_preemptive,
    last_k,
    non_preemptive,
    offline_list,
)
from gaplab.models.task_graph import Instance, Network, Placement, Schedule, TaskGraph, validate
from gaplab.models.task_graph.generators import adversarial, generate_sized, stream


def _same_plan(a: Schedule, b: Schedule) -> bool:
    return a.node == b.node and a.start == b.start and len(a.history) == len(b.history)


def diamond_instance() -> Instance:
    """Hand-solved: optimum 5 (see test_heft_matches_hand_optimum_on_diamond)."""
    graph = TaskGraph(
        "d",
        0.0,
        ("a", "b", "c", "d"),
        (1.0, 2.0, 2.0, 1.0),
        (("a", "b", 1.0), ("a", "c", 1.0), ("b", "d", 1.0), ("c", "d", 1.0)),
    )
    return Instance("diamond", Network.complete([1.0, 1.0], 1.0), (graph,))


def preemption_instance() -> Instance:
    """Four unit tasks at 0, then a chain of two 2-second tasks at 0.5, on two unit nodes."""
    wide = TaskGraph("wide", 0.0, ("w0", "w1", "w2", "w3"), (1.0,) * 4)
    chain = TaskGraph("chain", 0.5, ("c0", "c1"), (2.0, 2.0), (("c0", "c1", 0.0),))
    return Instance("preempt", Network.complete([1.0, 1.0], 1.0), (wide, chain))


# ---------------------------------------------------------------------- hand-known optima


def test_heft_matches_hand_optimum_on_chain():
    graph = TaskGraph(
        "c", 0.0, ("a", "b", "c"), (2.0, 4.0, 6.0), (("a", "b", 5.0), ("b", "c", 5.0))
    )
    instance = Instance("chain", Network.complete([1.0, 2.0], 1.0), (graph,))
    schedule = last_k(instance, "heft", 1)
    # Every task on the speed-2 node, back to back: (2 + 4 + 6) / 2.
    assert schedule.makespan(instance) == pytest.approx(6.0)
    assert schedule.node == (1, 1, 1)


def test_heft_matches_hand_optimum_on_fork():
    graph = TaskGraph(
        "f", 0.0, ("s", "x", "y"), (2.0, 4.0, 4.0), (("s", "x", 0.0), ("s", "y", 0.0))
    )
    instance = Instance("fork", Network.complete([1.0, 1.0], 1.0), (graph,))
    assert last_k(instance, "heft", 1).makespan(instance) == pytest.approx(6.0)


def test_heft_matches_hand_optimum_on_diamond():
    # Sharing one node costs 6; splitting b and c puts one of them behind a transfer, so the
    # sink cannot start before 4 and the optimum is 5.
    instance = diamond_instance()
    schedule = last_k(instance, "heft", 1)
    assert schedule.makespan(instance) == pytest.approx(5.0)
    assert validate(instance, schedule) == []


def test_last_k_hand_values_on_preemption_instance():
    instance = preemption_instance()
    # K = 1: the chain waits behind the planned unit tasks on both nodes, 2 + 2 + 2.
    assert last_k(instance, "heft", 1).makespan(instance) == pytest.approx(6.0)
    # K = 2: the unstarted unit tasks move behind the chain's first task.
    assert last_k(instance, "heft", 2).makespan(instance) == pytest.approx(5.0)


# ---------------------------------------------------------------------- K = 1 and K = all


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k1_equals_non_preemptive(base, seed):
    instance = generate_sized(seed, "medium")
    assert _same_plan(last_k(instance, base, 1), non_preemptive(instance, base))


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k_all_equals_fully_preemptive(base, seed):
    instance = generate_sized(seed, "medium")
    full = fully_preemptive(instance, base)
    m = len(instance.graphs)
    assert _same_plan(last_k(instance, base, m), full)
    assert _same_plan(last_k(instance, base, m + 3), full)
    assert _same_plan(last_k(instance, base, None), full)


def test_windows_differ_on_adversarial_stream():
    instance = adversarial(seed=0, rounds=2)
    k1 = last_k(instance, "heft", 1).makespan(instance)
    full = last_k(instance, "heft", None).makespan(instance)
    assert full < k1 - 1.0


def test_invalid_window_raises():
    with pytest.raises(ValueError, match="window size"):
        last_k(diamond_instance(), "heft", 0)
    with pytest.raises(ValueError, match="unknown base heuristic"):
        last_k(diamond_instance(), "nope", 1)


def test_schedulers_are_deterministic():
    instance = generate_sized(4, "medium")
    for base in BASES:
        assert _same_plan(last_k(instance, base, 2), last_k(instance, base, 2))


def test_scheduler_seconds_per_arrival():
    instance = generate_sized(0, "medium")
    schedule = last_k(instance, "heft", 2)
    assert len(schedule.scheduler_seconds) == len(instance.graphs)
    assert all(s >= 0 for s in schedule.scheduler_seconds)


# ---------------------------------------------------------------------- validator invariants


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    graphs=st.integers(1, 5),
    tasks=st.integers(1, 7),
    nodes=st.integers(1, 4),
    process=st.sampled_from(["poisson", "burst", "periodic"]),
    k=st.sampled_from([1, 2, 3, None]),
    base=st.sampled_from(sorted(BASES)),
)
def test_every_schedule_is_valid(seed, graphs, tasks, nodes, process, k, base):
    instance = stream(seed, graphs=graphs, tasks=tasks, nodes=nodes, process=process)
    schedule = last_k(instance, base, k)
    assert validate(instance, schedule) == []
    finish = schedule.finish(instance)
    # Frozen tasks are never moved: every re-placement happens before the old start.
    starts = {}
    for p in schedule.history:
        if p.task in starts:
            assert starts[p.task] >= p.decided - 1e-9
        starts[p.task] = p.start
    assert finish.max() >= max(g.arrival for g in instance.graphs)


def test_offline_list_schedule_is_valid():
    instance = generate_sized(3, "medium")
    assert validate(instance, offline_list(instance, "heft")) == []


def _valid_pair() -> tuple[Instance, Schedule]:
    instance = preemption_instance()
    return instance, last_k(instance, "heft", 2)


def test_validator_flags_overlap():
    instance, schedule = _valid_pair()
    start = list(schedule.start)
    node = list(schedule.node)
    node[1], start[1] = node[0], start[0]
    broken = dataclasses.replace(schedule, node=tuple(node), start=tuple(start), history=())
    assert any("overlap" in v for v in validate(instance, broken))


def test_validator_flags_release_and_precedence():
    instance, schedule = _valid_pair()
    start = list(schedule.start)
    start[5] = 0.0  # c1 before its graph arrives and before c0 ends
    broken = dataclasses.replace(schedule, start=tuple(start), history=())
    violations = validate(instance, broken)
    assert any("before its graph arrives" in v for v in violations)
    assert any("before its input" in v for v in violations)


def test_validator_flags_transfer_delay():
    instance = diamond_instance()
    # a on node 0 ends at 1; b on node 1 at 1 ignores the one-second transfer.
    schedule = Schedule(node=(0, 1, 0, 0), start=(0.0, 1.0, 1.0, 4.0))
    assert any("input from ('d', 'a')" in v for v in validate(instance, schedule))


def test_validator_flags_moved_started_task():
    instance, schedule = _valid_pair()
    task = schedule.history[0].task
    first = schedule.history[0]
    fake = Placement(task, 0.5, 1 - first.node, max(first.start, 0.5) + 10.0)
    history = schedule.history + (fake,)
    broken = dataclasses.replace(schedule, history=history)
    assert any("moved" in v for v in validate(instance, broken))


def test_validator_flags_wrong_lengths_and_nodes():
    instance, schedule = _valid_pair()
    assert "tasks" in validate(instance, dataclasses.replace(schedule, node=(0,), start=(0.0,)))[0]
    bad = dataclasses.replace(schedule, node=(9,) + schedule.node[1:], history=())
    assert "outside" in validate(instance, bad)[0]
    nan = dataclasses.replace(schedule, start=(math.nan,) + schedule.start[1:], history=())
    assert "start time" in validate(instance, nan)[0]


def test_original_release_rule_places_tasks_in_the_past():
    # z (cost 3) arrives at 0.5 and takes the fast node's slot. Re-planned with its own graph's
    # arrival 0 as release time, y then lands on the idle slow node at time 0.
    first = TaskGraph("A", 0.0, ("x", "y"), (2.0, 2.0))
    second = TaskGraph("B", 0.5, ("z",), (3.0,))
    instance = Instance("past", Network.complete([2.0, 1.0], 1.0), (first, second))
    loose = last_k(instance, "heft", 2, strict_release=False)
    assert any("in the past" in v for v in validate(instance, loose))
    strict = last_k(instance, "heft", 2)
    assert validate(instance, strict) == []
    assert strict.start[1] == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    zero_mask=st.lists(st.booleans(), min_size=12, max_size=12),
    k=st.sampled_from([1, 2, None]),
    base=st.sampled_from(sorted(BASES)),
)
def test_zero_cost_tasks_stay_valid(seed, zero_mask, k, base):
    instance = stream(seed, graphs=3, tasks=4, nodes=2, process="burst")
    graphs = []
    for i, graph in enumerate(instance.graphs):
        costs = tuple(0.0 if zero_mask[4 * i + j] else c for j, c in enumerate(graph.costs))
        edges = tuple((p, c, 0.0) for p, c, _ in graph.edges)
        graphs.append(dataclasses.replace(graph, costs=costs, edges=edges))
    zeroed = dataclasses.replace(instance, graphs=tuple(graphs))
    schedule = last_k(zeroed, base, k)
    assert validate(zeroed, schedule) == []
