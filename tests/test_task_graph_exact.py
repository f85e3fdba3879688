"""Exact methods and metrics of the task-graph model: offline MILP, brute force, window MILP."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.heuristics.task_graph import BASES, last_k, place_heft
from gaplab.models.task_graph import (
    Instance,
    Network,
    TaskGraph,
    brute_force,
    compute_metrics,
    exact,
    makespan_lower_bound,
    milp_last_k,
    solve_offline,
    validate,
)
from gaplab.models.task_graph.exact import semi_active_horizon, solve_window
from gaplab.models.task_graph.generators import adversarial, generate_sized, stream
from gaplab.models.task_graph.metrics import alone_makespans, jain_index
from gaplab.models.task_graph.planning import Plan
from gaplab.solvers import SolutionStatus, SolveOptions, Termination, get_backend
from tests.test_task_graph_schedulers import diamond_instance, preemption_instance

OPTIONS = SolveOptions(time_limit=20, mip_rel_gap=1e-7)


def test_offline_milp_on_diamond_is_five():
    instance = diamond_instance()
    result, schedule = solve_offline(instance, "highs", OPTIONS)
    assert result.termination == Termination.OPTIMAL
    assert result.objective == pytest.approx(5.0, abs=1e-6)
    assert schedule is not None
    assert schedule.makespan(instance) == pytest.approx(5.0, abs=1e-6)
    assert validate(instance, schedule) == []


def test_offline_milp_on_preemption_instance():
    # The chain runs alone on one node from 0.5 to 4.5; the four unit tasks fill the other.
    instance = preemption_instance()
    result, schedule = solve_offline(instance, "highs", OPTIONS)
    assert result.objective == pytest.approx(4.5, abs=1e-6)
    assert brute_force(instance)[0] == pytest.approx(4.5)


@pytest.mark.parametrize("seed", range(5))
def test_offline_milp_equals_brute_force(seed):
    instance = generate_sized(seed, "tiny")
    result, schedule = solve_offline(instance, "highs", OPTIONS)
    optimum, brute = brute_force(instance)
    assert result.termination == Termination.OPTIMAL
    assert result.objective == pytest.approx(optimum, rel=1e-6)
    assert validate(instance, brute) == []
    assert validate(instance, schedule) == []
    assert brute.makespan(instance) == pytest.approx(optimum)


def test_brute_force_rejects_large_instances():
    with pytest.raises(ValueError, match="limited to 8 tasks"):
        brute_force(generate_sized(0, "small"))


@pytest.mark.parametrize(
    "instance",
    [
        generate_sized(1, "small"),
        adversarial(seed=0, rounds=2, nodes=2, width=2, chain_length=3),
        generate_sized(7, "tiny"),
    ],
    ids=["small-s1", "adversarial", "tiny-s7"],
)
def test_offline_bound_below_every_heuristic(instance):
    result, schedule = solve_offline(instance, "highs", OPTIONS)
    assert result.bound is not None
    assert schedule is not None
    assert validate(instance, schedule) == []
    lower = makespan_lower_bound(instance)
    assert lower <= result.bound + 1e-6
    for base in BASES:
        for k in (1, 2, 3, None):
            makespan = last_k(instance, base, k).makespan(instance)
            assert result.bound <= makespan + 1e-6, (base, k)


def test_window_milp_beats_heft_window():
    instance = generate_sized(2, "small")
    plan = Plan(instance)
    first = [int(t) for t in instance.flat.graph_tasks[0]]
    place_heft(plan, first, instance.flat.arrival)
    a_1 = instance.graphs[1].arrival
    started = [t for t in first if plan.start[t] < a_1]
    plan.remove([t for t in first if t not in started])
    tasks = sorted(
        set(range(instance.flat.size)) - set(started) - set(instance.flat.graph_tasks[2])
    )
    release = np.maximum(instance.flat.arrival, a_1)
    heuristic = plan.copy()
    place_heft(heuristic, tasks, release)
    heft_makespan = float(np.nanmax(heuristic.finish))
    result, placed = solve_window(plan, tasks, release, heft_makespan + 1e-6, "highs", OPTIONS)
    assert placed
    assert float(np.nanmax(plan.finish)) <= heft_makespan + 1e-6
    for t in started:
        assert plan.start[t] < a_1


def test_milp_last_k_on_adversarial():
    instance = adversarial(seed=0, rounds=1, nodes=2, width=2, chain_length=3)
    for k in (1, None):
        schedule = milp_last_k(instance, k, window_time_limit=10)
        assert validate(instance, schedule) == []
        assert schedule.info["fallbacks"] == 0
    full = milp_last_k(instance, None, window_time_limit=10).makespan(instance)
    assert full <= last_k(instance, "heft", 1).makespan(instance) + 1e-6


def test_metrics_ranges_and_definitions():
    instance = generate_sized(0, "medium")
    schedule = last_k(instance, "heft", 2)
    metrics = compute_metrics(instance, schedule)
    m = len(instance.graphs)
    assert 1.0 / m - 1e-12 <= metrics.jain_index <= 1.0 + 1e-12
    assert 0.0 < metrics.utilization <= 1.0
    assert metrics.makespan == pytest.approx(schedule.makespan(instance))
    assert metrics.max_slowdown >= metrics.mean_slowdown
    assert metrics.mean_slowdown >= 1.0 - 1e-9  # no graph beats HEFT alone by much here


def test_jain_index_values():
    assert jain_index(np.array([2.0, 2.0, 2.0])) == pytest.approx(1.0)
    assert jain_index(np.array([1.0, 0.0, 0.0, 0.0])) == pytest.approx(0.25)


def test_single_graph_slowdown_is_one_for_heft():
    graph = TaskGraph("solo", 3.0, ("a", "b"), (1.0, 2.0), (("a", "b", 1.0),))
    instance = Instance("solo", Network.complete([1.0, 2.0], 1.0), (graph,))
    metrics = compute_metrics(instance, last_k(instance, "heft", 1))
    assert metrics.max_slowdown == pytest.approx(1.0)
    assert metrics.mean_response == pytest.approx(1.5)


def test_window_milp_inserts_before_fixed_task():
    # One node: the fixed task occupies [5, 6]; the free unit task fits before it at 0.
    first = TaskGraph("A", 0.0, ("f",), (1.0,))
    second = TaskGraph("B", 0.0, ("t",), (1.0,))
    instance = Instance("gap", Network.complete([1.0], 1.0), (first, second))
    plan = Plan(instance)
    plan.place(0, 0, 5.0)
    result, placed = solve_window(plan, [1], instance.flat.arrival, 7.0, "highs", OPTIONS)
    assert placed
    assert result.objective == pytest.approx(6.0)
    assert plan.start[1] == pytest.approx(0.0)


@pytest.mark.parametrize("seed", range(3))
def test_milp_last_k_needs_no_fallback(seed):
    instance = adversarial(seed, rounds=2, nodes=2, width=2, chain_length=3)
    schedule = milp_last_k(instance, 1, window_time_limit=10)
    assert schedule.info["fallbacks"] == 0
    assert validate(instance, schedule) == []


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    graphs=st.integers(1, 2),
    tasks=st.integers(1, 3),
    nodes=st.integers(1, 3),
)
def test_brute_force_below_every_heuristic(seed, graphs, tasks, nodes):
    instance = stream(seed, graphs=graphs, tasks=tasks, nodes=nodes, mean_gap=1.0)
    optimum, schedule = brute_force(instance)
    assert validate(instance, schedule) == []
    assert optimum >= makespan_lower_bound(instance) - 1e-9
    for base in BASES:
        for k in (1, None):
            assert optimum <= last_k(instance, base, k).makespan(instance) + 1e-9


@pytest.mark.parametrize("seed", [0, 3])
def test_offline_fairness_objectives_bound_heuristics(seed):
    instance = generate_sized(seed, "tiny")
    alone = alone_makespans(instance)
    m = len(instance.graphs)
    response, by_response = solve_offline(instance, "highs", OPTIONS, objective="response")
    slowdown, by_slowdown = solve_offline(instance, "highs", OPTIONS, objective="max_slowdown")
    assert response.termination == Termination.OPTIMAL
    assert slowdown.termination == Termination.OPTIMAL
    assert validate(instance, by_response) == []
    assert validate(instance, by_slowdown) == []
    total = compute_metrics(instance, by_response, alone).mean_response * m
    assert total == pytest.approx(response.objective, rel=1e-6)
    worst = compute_metrics(instance, by_slowdown, alone).max_slowdown
    assert worst == pytest.approx(slowdown.objective, rel=1e-6)
    for base in BASES:
        for k in (1, 2, None):
            metrics = compute_metrics(instance, last_k(instance, base, k), alone)
            assert response.objective <= metrics.mean_response * m + 1e-6
            assert slowdown.objective <= metrics.max_slowdown + 1e-6


def test_fair_objective_hand_value():
    # Graph A (one 4-second task) at 0 and graph B (one 1-second task) at 0 on one node: running
    # B first gives responses 1 and 5 (sum 6), A first gives 4 and 5 (sum 9).
    first = TaskGraph("A", 0.0, ("a",), (4.0,))
    second = TaskGraph("B", 0.0, ("b",), (1.0,))
    instance = Instance("fair", Network.complete([1.0], 1.0), (first, second))
    result, schedule = solve_offline(instance, "highs", OPTIONS, objective="response")
    assert result.objective == pytest.approx(6.0)
    assert schedule.start == pytest.approx((1.0, 0.0))
    slowdown, _ = solve_offline(instance, "highs", OPTIONS, objective="max_slowdown")
    # Slowdowns are 5/4 and 1 with B first, 1 and 5 with A first.
    assert slowdown.objective == pytest.approx(1.25)


def test_unknown_objective_raises():
    with pytest.raises(ValueError, match="unknown objective"):
        solve_offline(diamond_instance(), "highs", OPTIONS, objective="energy")


def test_semi_active_horizon_bounds_heuristics():
    instance = generate_sized(2, "medium")
    horizon = semi_active_horizon(instance)
    for base in BASES:
        assert last_k(instance, base, 2).makespan(instance) <= horizon


class _RecordingBackend:
    """Delegate to HiGHS and record the MIP start of every solve."""

    def __init__(self) -> None:
        self.starts: list[np.ndarray | None] = []
        self.violations: list[float] = []

    def solve(self, compiled, options):
        self.starts.append(options.warm_start)
        if options.warm_start is not None:
            self.violations.append(compiled.max_violation(options.warm_start))
        return get_backend("highs").solve(compiled, options)


@pytest.mark.parametrize("objective", ["makespan", "response", "max_slowdown"])
def test_offline_milp_gets_heuristic_start(objective, monkeypatch):
    instance = generate_sized(2, "tiny")
    recorder = _RecordingBackend()
    monkeypatch.setattr(exact, "get_backend", lambda name: recorder)
    result, schedule = solve_offline(instance, "highs", OPTIONS, objective=objective)
    assert result.termination == Termination.OPTIMAL
    assert len(recorder.starts) == 1
    assert recorder.starts[0] is not None
    assert recorder.violations[0] <= 1e-6
    assert schedule is not None
    assert validate(instance, schedule) == []


def test_window_milps_get_heft_start(monkeypatch):
    instance = generate_sized(1, "small")
    recorder = _RecordingBackend()
    monkeypatch.setattr(exact, "get_backend", lambda name: recorder)
    schedule = milp_last_k(instance, 2, window_time_limit=5.0)
    assert len(recorder.starts) == len(instance.graphs)
    assert all(start is not None for start in recorder.starts)
    assert max(recorder.violations) <= 1e-6
    assert validate(instance, schedule) == []


def test_offline_time_limit_keeps_heuristic_incumbent():
    """At a short limit HiGHS returns the start instead of no point."""
    instance = generate_sized(3, "medium")
    heft = last_k(instance, "heft", None).makespan(instance)
    result, schedule = solve_offline(instance, "highs", SolveOptions(time_limit=1))
    assert result.solution_status == SolutionStatus.FEASIBLE_POINT
    assert schedule is not None
    assert validate(instance, schedule) == []
    assert schedule.makespan(instance) <= heft + 1e-6


def test_offline_rejects_model_too_large_for_limit():
    instance = generate_sized(3, "large")
    began = time.perf_counter()
    result, schedule = solve_offline(instance, "highs", SolveOptions(time_limit=3))
    assert time.perf_counter() - began < 3
    assert result.termination == Termination.TIME_LIMIT
    assert result.solution_status == SolutionStatus.NO_SOLUTION
    assert result.raw_status.startswith("not solved")
    assert result.backend == "highs"
    assert schedule is None
    assert result.bound == pytest.approx(makespan_lower_bound(instance))
    assert exact.estimated_nonzeros(instance) > exact.OFFLINE_NONZEROS_PER_SECOND * 3
