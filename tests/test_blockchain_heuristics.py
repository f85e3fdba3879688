"""Heuristics, baselines and the one validator of the blockchain models."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaplab.heuristics import blockchain as heur
from gaplab.models.blockchain.generate import generate
from gaplab.models.blockchain.graph import bounds, fractional_knapsack
from gaplab.models.blockchain.instance import BlockInstance, Transaction
from gaplab.models.blockchain.schedule import Schedule
from gaplab.models.blockchain.validate import validate

EXEC_HEURISTICS = [
    heur.h1,
    heur.h1_time,
    heur.h1_unit,
    heur.sol_batches,
    heur.sol_declared,
    heur.sequential,
]
BUILD_HEURISTICS = [heur.h2, heur.h2_unit, heur.h2_time, heur.reward_greedy, heur.reward_greedy_tip]


@st.composite
def instances(draw, problem="block-exec"):
    n = draw(st.integers(0, 30))
    keys = [f"k{k}" for k in range(draw(st.integers(1, 8)))]
    txs = []
    for i in range(n):
        writes = draw(st.sets(st.sampled_from(keys), max_size=2))
        reads = draw(st.sets(st.sampled_from(keys), max_size=2))
        gas = draw(st.integers(1, 200_000))
        reward = draw(st.floats(0, 1e6, allow_nan=False))
        txs.append(Transaction(f"t{i}", frozenset(reads), frozenset(writes), gas, reward))
    workload = draw(st.sampled_from(["homogeneous", "heterogeneous"]))
    cores = draw(st.sampled_from([1, 2, 3, 4, 8]))
    budget = None
    if problem == "block-build":
        if workload == "homogeneous":
            budget = float(draw(st.integers(1, 12)))
        else:
            budget = float(draw(st.integers(1, 400_000)))
    return BlockInstance(problem, "drawn", cores, workload, tuple(txs), budget)


FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(instances())
def test_every_exec_schedule_is_valid_and_bounded(instance):
    b = bounds(instance)
    for heuristic in EXEC_HEURISTICS:
        schedule = heuristic(instance)
        assert validate(instance, schedule) == [], heuristic.__name__
        cmax = schedule.makespan(instance)
        if instance.n:
            assert b.makespan_lower - 1e-6 <= cmax <= (instance.n if instance.unit else b.work)
    h1 = heur.h1(instance)
    if instance.n:
        cmax = h1.makespan(instance)
        speedup = b.work / cmax
        assert speedup <= min(instance.cores, b.work / b.critical_path) + 1e-9
        if instance.cores == 1:
            assert cmax == pytest.approx(b.work)
        assert cmax <= b.graham + 1e-6 or instance.unit
    # Determinism: the same input gives the identical schedule.
    again = heur.h1(instance)
    assert np.array_equal(again.core, h1.core) and np.array_equal(again.start, h1.start)


@FAST
@given(instances("block-build"))
def test_every_build_schedule_is_valid_and_bounded(instance):
    for heuristic in BUILD_HEURISTICS:
        if heuristic is heur.h2_unit and not instance.unit:
            continue
        schedule = heuristic(instance)
        assert validate(instance, schedule) == [], heuristic.__name__
        reward = schedule.reward(instance)
        times, w = instance.times, instance.rewards
        fits = times <= instance.budget
        assert (
            reward
            <= fractional_knapsack(w[fits], times[fits], instance.cores * instance.budget)
            * (1 + 1e-9)
            + 1e-6
        )
        if instance.unit:
            assert schedule.selected.sum() <= instance.rounds * instance.cores


def test_unit_rounds_without_conflicts_fill_the_cores():
    txs = tuple(Transaction(f"t{i}", writes=frozenset({f"k{i}"})) for i in range(10))
    instance = BlockInstance("block-exec", "free", 3, "homogeneous", txs)
    assert heur.h1_unit(instance).makespan(instance) == math.ceil(10 / 3)
    assert heur.sol_batches(instance).makespan(instance) == math.ceil(10 / 3)


def test_h1_follows_the_critical_path():
    # t0 -> t2 is a long chain; t1 is free. H1 must start t0 first on two cores.
    txs = (
        Transaction("a", writes=frozenset({"k"}), gas=10),
        Transaction("b", writes=frozenset({"x"}), gas=10),
        Transaction("c", writes=frozenset({"k"}), gas=30),
        Transaction("d", writes=frozenset({"y"}), gas=5),
    )
    instance = BlockInstance("block-exec", "cp", 1, "heterogeneous", txs)
    assert heur.h1_time(instance).makespan(instance) == 55
    two = instance.with_changes(cores=2)
    schedule = heur.h1_time(two)
    assert schedule.makespan(two) == 40
    assert schedule.start.tolist() == [0, 0, 10, 10]


def test_sol_batches_use_lpt_when_a_batch_is_larger_than_p():
    txs = tuple(
        Transaction(f"t{i}", writes=frozenset({f"k{i}"}), gas=g)
        for i, g in enumerate([5, 3, 3, 2, 2])
    )
    instance = BlockInstance("block-exec", "lpt", 2, "heterogeneous", txs)
    schedule = heur.sol_batches(instance)
    assert validate(instance, schedule) == []
    assert schedule.makespan(instance) == 8  # LPT: {5, 2} and {3, 3, 2}... = max(7, 8)


def test_sol_declared_treats_reads_as_writes():
    txs = (Transaction("a", reads=frozenset({"k"})), Transaction("b", reads=frozenset({"k"})))
    instance = BlockInstance("block-exec", "reads", 2, "homogeneous", txs)
    assert heur.sol_batches(instance).makespan(instance) == 1
    assert heur.sol_declared(instance).makespan(instance) == 2


def test_h2_unit_prefers_low_degree_and_rg_prefers_reward():
    # a conflicts with b and c; b and c do not conflict. One round, two cores.
    txs = (
        Transaction("a", writes=frozenset({"k1", "k2"}), reward=8.0),
        Transaction("b", writes=frozenset({"k1"}), reward=6.0),
        Transaction("c", writes=frozenset({"k2"}), reward=6.0),
    )
    instance = BlockInstance("block-build", "star", 2, "homogeneous", txs, budget=1.0)
    assert heur.h2_unit(instance).reward(instance) == 12.0
    assert heur.reward_greedy(instance).reward(instance) == 8.0


def test_h2_time_respects_the_budget_and_running_conflicts():
    instance = generate(3, n=60, cores=3, problem="block-build", budget=150_000)
    schedule = heur.h2_time(instance)
    assert validate(instance, schedule) == []
    assert np.all(schedule.end(instance)[schedule.selected] <= 150_000)


def _exec_fixture():
    txs = (
        Transaction("a", writes=frozenset({"k"}), gas=10),
        Transaction("b", writes=frozenset({"k"}), gas=10),
        Transaction("c", writes=frozenset({"x"}), gas=10),
        Transaction("d", writes=frozenset({"y"}), gas=10),
    )
    return BlockInstance("block-exec", "fixture", 2, "heterogeneous", txs)


@pytest.mark.parametrize(
    "core, start, message",
    [
        ([0, 1, 0, 1], [10, 0, 0, 10], "conflict order broken"),
        ([0, 1, 0, 1], [0, 10, 5, 20], "overlap on one core"),
        ([0, 1, 2, 1], [0, 10, 0, 0], "core outside"),
        ([0, -1, 0, 1], [0, 10, 10, 0], "has no core"),
        ([0, 1, 1, 0], [0, 10, 0, -3], "negative"),
        ([0, 0, 1, 1], [0, 10, 0, 100], "exceeds the sequential time"),
    ],
)
def test_validator_catches_broken_exec_schedules(core, start, message):
    instance = _exec_fixture()
    problems = validate(instance, Schedule(np.array(core), np.array(start, dtype=float)))
    assert any(message in p for p in problems), problems


def test_validator_counts_running_transactions():
    instance = _exec_fixture()
    # Core ids are fine but three run at once on two cores only if cores repeat; use p=1 view.
    one = instance.with_changes(cores=1)
    problems = validate(one, Schedule(np.zeros(4), np.array([0.0, 10, 0, 0])))
    assert any("run at once" in p for p in problems)


def test_validator_checks_graham_for_list_schedules():
    instance = _exec_fixture()
    slow = Schedule(np.zeros(4), np.array([0.0, 10, 20, 30]), list_scheduled=True)
    assert any("Graham" in p for p in validate(instance, slow))
    assert not any("Graham" in p for p in validate(instance, Schedule(slow.core, slow.start)))


def test_validator_catches_broken_build_schedules():
    txs = (
        Transaction("a", writes=frozenset({"k"}), gas=10, reward=1.0),
        Transaction("b", writes=frozenset({"k"}), gas=10, reward=1.0),
        Transaction("c", writes=frozenset({"x"}), gas=10, reward=1.0),
    )
    instance = BlockInstance("block-build", "b", 2, "heterogeneous", txs, budget=20.0)
    ok = Schedule(np.array([0, 1, 1]), np.array([0.0, 10, 0]))
    assert validate(instance, ok) == []
    clash = Schedule(np.array([0, 1, -1]), np.array([0.0, 5, np.nan]))
    assert any("conflicting transactions overlap" in p for p in validate(instance, clash))
    late = Schedule(np.array([0, 1, 1]), np.array([0.0, 10, 15]))
    assert any("runtime limit" in p for p in validate(instance, late))
