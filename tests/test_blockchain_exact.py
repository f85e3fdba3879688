"""Exact blockchain models against brute force, and plain against strengthened formulations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gaplab.heuristics import blockchain as heur
from gaplab.models.blockchain import build_milp, exec_milp
from gaplab.models.blockchain.ethereum import import_block
from gaplab.models.blockchain.generate import generate
from gaplab.models.blockchain.graph import bounds
from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.spec import BUILD_HEURISTICS
from gaplab.models.blockchain.validate import validate
from gaplab.solvers.result import Result, SolutionStatus, SolveOptions, Termination
from tests.conftest import require_data_file

OPTIONS = SolveOptions(time_limit=20)
BACKENDS = ["highs", "pulp:cbc"]


def _core_labelings(k: int, p: int):
    """Core assignments of k jobs up to renaming of identical cores."""

    def grow(prefix, used):
        if len(prefix) == k:
            yield tuple(prefix)
            return
        for c in range(min(used + 1, p)):
            yield from grow(prefix + [c], max(used, c + 1))

    yield from grow([], 0)


def brute_exec(instance: BlockInstance) -> float:
    """Minimum makespan over every order consistent with the arcs and every core labelling."""
    n, t, graph = instance.n, instance.times, instance.graph
    best = float(instance.times.sum())
    for order in itertools.permutations(range(n)):
        position = {j: k for k, j in enumerate(order)}
        if any(position[a] > position[b] for a, b in zip(graph.src, graph.dst, strict=True)):
            continue
        for cores in _core_labelings(n, instance.cores):
            free = [0.0] * instance.cores
            end = [0.0] * n
            for j, c in zip(order, cores, strict=True):
                begin = max([free[c]] + [end[i] for i in graph.pred(j).tolist()])
                end[j] = begin + t[j]
                free[c] = end[j]
            best = min(best, max(end, default=0.0))
    return best


def brute_build(instance: BlockInstance) -> float:
    """Maximum reward over every subset that some order and core labelling fit within B."""
    n, t, w, budget = instance.n, instance.times, instance.rewards, instance.budget
    graph = instance.graph
    best = 0.0
    for size in range(n + 1):
        for subset in itertools.combinations(range(n), size):
            value = float(w[list(subset)].sum())
            if value <= best or not _fits(subset, t, graph, instance.cores, budget):
                continue
            best = value
    return best


def _fits(subset, t, graph, p, budget) -> bool:
    for order in itertools.permutations(subset):
        for cores in _core_labelings(len(order), p):
            free = [0.0] * p
            end: dict[int, float] = {}
            ok = True
            for j, c in zip(order, cores, strict=True):
                begin = max([free[c]] + [end[i] for i in graph.neighbours(j).tolist() if i in end])
                end[j] = begin + t[j]
                free[c] = end[j]
                if end[j] > budget + 1e-9:
                    ok = False
                    break
            if ok:
                return True
    return False


def _tiny(seed: int, n: int, p: int, workload: str, problem: str = "block-exec", budget=None):
    instance = generate(
        seed, n=n, cores=p, workload=workload, problem=problem, hot_share=0.6, budget=budget
    )
    return instance


CASES = [(seed, n, p) for seed in range(3) for n, p in [(4, 2), (5, 2), (5, 3), (6, 2)]]


@pytest.mark.parametrize("seed, n, p", CASES)
@pytest.mark.parametrize("workload", ["homogeneous", "heterogeneous"])
def test_exec_optimum_equals_brute_force(seed, n, p, workload):
    instance = _tiny(seed, n, p, workload)
    optimum = brute_exec(instance)
    assert heur.h1(instance).makespan(instance) >= optimum - 1e-9
    assert heur.sol_batches(instance).makespan(instance) >= optimum - 1e-9
    formulations = ["continuous"] + (["rounds"] if workload == "homogeneous" else [])
    for formulation in formulations:
        for strengthened in (True, False):
            result, schedule = exec_milp.solve_exec(
                instance, "highs", OPTIONS, strengthened=strengthened, formulation=formulation
            )
            assert result.termination == Termination.OPTIMAL
            assert schedule is not None and validate(instance, schedule) == []
            assert schedule.makespan(instance) == pytest.approx(optimum)
            assert result.objective == pytest.approx(optimum, rel=1e-6)


@pytest.mark.parametrize("seed, n, p", [c for c in CASES if c[1] <= 5])
@pytest.mark.parametrize("workload", ["homogeneous", "heterogeneous"])
def test_build_optimum_equals_brute_force(seed, n, p, workload):
    budget = 2.0 if workload == "homogeneous" else None
    instance = _tiny(seed, n, p, workload, "block-build", budget)
    optimum = brute_build(instance)
    for strengthened in (True, False):
        result, schedule = build_milp.solve_build(
            instance, "highs", OPTIONS, strengthened=strengthened
        )
        assert result.termination == Termination.OPTIMAL
        assert schedule is not None and validate(instance, schedule) == []
        assert schedule.reward(instance) == pytest.approx(optimum, rel=1e-6)
    lp, _ = build_milp.solve_lp_relaxation(instance, "highs", OPTIONS)
    tight = build_milp.solve_lp_bound(instance, "highs", OPTIONS)
    assert optimum <= tight.objective * (1 + 1e-7) + 1e-6
    assert tight.objective <= lp.objective * (1 + 1e-7) + 1e-6
    assert heur.h2(instance).reward(instance) <= optimum * (1 + 1e-9) + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_unit_continuous_and_rounds_agree(seed):
    instance = generate(seed, n=14, cores=3, workload="homogeneous", hot_share=0.5)
    rounds, _ = exec_milp.solve_exec(instance, "highs", OPTIONS, formulation="rounds")
    continuous, _ = exec_milp.solve_exec(instance, "highs", OPTIONS, formulation="continuous")
    assert rounds.objective == pytest.approx(continuous.objective)
    build = generate(
        seed,
        n=10,
        cores=2,
        workload="homogeneous",
        problem="block-build",
        budget=3.0,
        hot_share=0.5,
    )
    r, _ = build_milp.solve_build(build, "highs", OPTIONS, formulation="rounds")
    c, _ = build_milp.solve_build(build, "highs", OPTIONS, formulation="continuous")
    assert r.objective == pytest.approx(c.objective, rel=1e-6)


@pytest.mark.parametrize("seed", range(2))
def test_plain_and_strengthened_agree_where_both_finish(seed):
    instance = generate(seed, n=7, cores=2, hot_share=0.4)
    plain, p_schedule = exec_milp.solve_exec(instance, "highs", OPTIONS, strengthened=False)
    strong, s_schedule = exec_milp.solve_exec(instance, "highs", OPTIONS, strengthened=True)
    assert plain.termination == strong.termination == Termination.OPTIMAL
    assert p_schedule.makespan(instance) == pytest.approx(s_schedule.makespan(instance))
    lower = bounds(instance).makespan_lower
    assert lower <= s_schedule.makespan(instance) <= heur.h1(instance).makespan(instance)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exec_bound_proof_reports_a_feasible_point(backend):
    instance = generate(0, n=40, cores=2, workload="homogeneous", hot_share=0.0)
    result, schedule = exec_milp.solve_exec(instance, backend, OPTIONS)
    assert result.termination == Termination.OPTIMAL
    assert result.solution_status == SolutionStatus.FEASIBLE_POINT
    assert result.backend == backend
    assert result.raw_status.startswith("proved by bound")
    assert result.x is not None
    assert result.max_violation is not None and result.max_violation <= 1e-6
    assert result.objective == pytest.approx(20)
    assert result.bound == pytest.approx(20)
    assert schedule is not None
    assert schedule.makespan(instance) == 20


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("workload", ["homogeneous", "heterogeneous"])
def test_build_bound_proof_reports_a_feasible_point(backend, workload):
    budget = 4.0 if workload == "homogeneous" else 10.0**7
    instance = generate(
        0, n=6, cores=2, problem="block-build", workload=workload, hot_share=0.0, budget=budget
    )
    result, schedule = build_milp.solve_build(instance, backend, OPTIONS)
    assert result.termination == Termination.OPTIMAL
    assert result.solution_status == SolutionStatus.FEASIBLE_POINT
    assert result.backend == backend
    assert result.raw_status.startswith("proved by bound")
    assert result.max_violation is not None and result.max_violation <= 1e-6
    assert schedule is not None
    assert result.objective == pytest.approx(schedule.reward(instance))


START_CASES = [
    (seed, workload) for seed in range(6) for workload in ("homogeneous", "heterogeneous")
]


@pytest.mark.parametrize("seed, workload", START_CASES)
def test_heuristic_starts_are_feasible_points(seed, workload):
    """The MIP start of every strengthened model satisfies it and has the heuristic's value."""
    instance = generate(seed, n=12, cores=3, workload=workload, hot_share=0.4)
    heuristic = exec_milp.warm_start(instance)
    upper = heuristic.makespan(instance)
    points = [
        (
            exec_milp.build_continuous(instance, strengthened=True, upper=upper),
            exec_milp.continuous_start(instance, heuristic),
        )
    ]
    if instance.unit:
        model = exec_milp.build_rounds(instance, strengthened=True, upper=int(upper))
        points.append((model, exec_milp.rounds_start(instance, heuristic)))
    for model, values in points:
        compiled = model.compile()
        x = compiled.column_vector(values)
        assert compiled.max_violation(x) <= 1e-9, model.name
        assert compiled.objective_value(x) == pytest.approx(upper), model.name

    budget = 3.0 if instance.unit else 60_000.0
    build = generate(
        seed, n=12, cores=3, workload=workload, problem="block-build", hot_share=0.4, budget=budget
    )
    heuristic = build_milp.warm_start(build)
    reward = heuristic.reward(build)
    points = [
        (
            build_milp.build_continuous(build, strengthened=True, lower=reward),
            build_milp.continuous_start(build, heuristic),
        )
    ]
    if build.unit:
        model = build_milp.build_rounds(build, strengthened=True, lower=reward)
        points.append((model, build_milp.rounds_start(build, heuristic)))
    for model, values in points:
        compiled = model.compile()
        x = compiled.column_vector(values)
        assert compiled.max_violation(x) <= 1e-6, model.name
        assert compiled.objective_value(x) == pytest.approx(reward), model.name


def _no_point(compiled, backend, **options):
    return Result(compiled.name, backend, Termination.TIME_LIMIT, SolutionStatus.NO_SOLUTION)


@pytest.mark.parametrize("problem", ["block-exec", "block-build"])
def test_exact_returns_no_schedule_without_solver_point(problem, monkeypatch):
    """A time-out without a point must not turn the warm start into the exact solution."""
    if problem == "block-exec":
        instance = generate(2, n=8, cores=2, hot_share=0.5)
        heuristic = exec_milp.warm_start(instance).makespan(instance)
        assert heuristic > bounds(instance).makespan_lower  # so the MILP must be solved
        monkeypatch.setattr(exec_milp, "solve", _no_point)
        result, schedule = exec_milp.solve_exec(instance, "highs", OPTIONS)
    else:
        instance = generate(2, n=8, cores=2, problem=problem, hot_share=0.5, budget=60_000.0)
        monkeypatch.setattr(build_milp, "solve", _no_point)
        result, schedule = build_milp.solve_build(instance, "highs", OPTIONS)
    assert result.solution_status == SolutionStatus.NO_SOLUTION
    assert schedule is None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("problem", ["block-exec", "block-build"])
def test_exact_keeps_the_requested_backend(backend, problem):
    budget = None if problem == "block-exec" else 60_000.0
    instance = generate(1, n=7, cores=2, problem=problem, hot_share=0.5, budget=budget)
    solve = exec_milp.solve_exec if problem == "block-exec" else build_milp.solve_build
    result, schedule = solve(instance, backend, OPTIONS)
    assert result.backend == backend
    assert result.termination == Termination.OPTIMAL
    assert result.solution_status == SolutionStatus.FEASIBLE_POINT
    assert schedule is not None and validate(instance, schedule) == []
    evaluate = schedule.makespan if problem == "block-exec" else schedule.reward
    assert result.objective == pytest.approx(evaluate(instance), rel=1e-6)


@pytest.mark.data
def test_real_block_exact_beats_every_heuristic(data_dir):
    """HiGHS keeps the MIP start as its incumbent when it times out."""
    path = require_data_file(data_dir, "blockchain/pevm_mainnet_19932148_block.json")
    build = import_block(path, problem="block-build")
    best = max(run(build).reward(build) for run in BUILD_HEURISTICS.values())
    result, schedule = build_milp.solve_build(build, "highs", SolveOptions(time_limit=2))
    assert result.solution_status == SolutionStatus.FEASIBLE_POINT
    assert schedule is not None and validate(build, schedule) == []
    assert schedule.reward(build) >= best
    assert result.objective == pytest.approx(schedule.reward(build), rel=1e-6)


def test_plain_lp_relaxation_ignores_cores():
    """Derived fact of the note: for p >= 2 the plain LP bound does not depend on p."""
    instance = generate(4, n=7, cores=2, problem="block-build", hot_share=0.5)
    values = []
    for p in (2, 3, 4):
        lp, _ = build_milp.solve_lp_relaxation(instance.with_changes(cores=p), "highs", OPTIONS)
        values.append(lp.objective)
    assert np.allclose(values, values[0], rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1])
@pytest.mark.parametrize("problem", ["block-exec", "block-build"])
def test_empty_and_single_transaction_instances(n, problem):
    instance = generate(0, n=n, cores=2, problem=problem, budget=50_000 if n else 1.0)
    solve = exec_milp.solve_exec if problem == "block-exec" else build_milp.solve_build
    for strengthened in (True, False):
        result, schedule = solve(instance, "highs", OPTIONS, strengthened=strengthened)
        assert result.termination == Termination.OPTIMAL
        assert schedule is not None and validate(instance, schedule) == []
