"""Instance, exact program, bounds and greedy rules of the moe-assign model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.heuristics.moe_assign import (
    HEURISTICS,
    all_cpu,
    cached_gpu,
    greedy,
    greedy_assign,
    greedy_ratio,
    lp_round,
)
from gaplab.models.moe_assign.bounds import brute_force, lp_bound, lp_relaxation
from gaplab.models.moe_assign.build import (
    build,
    runs_highs,
    solve_brute_force,
    solve_lp_relaxation,
    solve_milp,
)
from gaplab.models.moe_assign.hardware import SHAPES, cost_model
from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.suite import SHIPPED_DIR
from gaplab.models.moe_assign.validate import Assignment, evaluate, layer_time, validate
from gaplab.solvers import SolveOptions

TOL = 1e-9


@st.composite
def layers(draw: st.DrawFn, max_experts: int = 12, slots: bool = False) -> Instance:
    """Random layers: mixed fixed and per-token costs, some experts cached."""
    n = draw(st.integers(1, max_experts))
    ids = sorted(draw(st.sets(st.integers(0, 127), min_size=n, max_size=n)))
    unit = st.floats(0.0, 10.0, allow_nan=False)
    workload = draw(st.lists(st.integers(1, 64), min_size=n, max_size=n))
    cached = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    limit = draw(st.one_of(st.none(), st.integers(0, n))) if slots else None
    return Instance.create(
        ids,
        workload,
        cached,
        cpu_fixed_s=draw(st.lists(unit, min_size=n, max_size=n)),
        cpu_per_token_s=draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n)),
        gpu_fixed_s=draw(st.lists(unit, min_size=n, max_size=n)),
        gpu_per_token_s=draw(st.lists(st.floats(0.0, 0.1), min_size=n, max_size=n)),
        transfer_s=draw(st.lists(st.floats(0.0, 40.0), min_size=n, max_size=n)),
        gpu_base_s=draw(st.sampled_from([0.0, 0.0, 1.0])),
        num_experts=128,
        top_k=2,
        slot_limit=limit,
    )


def mixtral_layer(**changes: object) -> Instance:
    costs = cost_model("mixtral-8x7b")
    fields: dict[str, object] = {"costs": costs, "num_experts": 8, "top_k": 2}
    fields.update(changes)
    return Instance.create([0, 2, 3, 5], [3, 9, 1, 3], [True, False, False, True], **fields)


# ---------------------------------------------------------------------- instance


def test_shapes_match_model_table() -> None:
    assert (SHAPES["mixtral-8x7b"].layers, SHAPES["mixtral-8x7b"].experts) == (32, 8)
    assert SHAPES["mixtral-8x7b"].top_k == 2
    assert (SHAPES["deepseek-v2-lite"].layers, SHAPES["deepseek-v2-lite"].experts) == (27, 64)
    assert SHAPES["deepseek-v2-lite"].top_k == 6
    assert SHAPES["deepseek-v2-lite"].shared_experts == 2
    assert (SHAPES["qwen3-30b-a3b"].layers, SHAPES["qwen3-30b-a3b"].experts) == (48, 128)
    assert SHAPES["qwen3-30b-a3b"].top_k == 8


def test_mixtral_cost_model_pinned() -> None:
    costs = cost_model("mixtral-8x7b")
    # 3 * 4096 * 14336 bf16 parameters = 352 MB, copied at 25 GB/s plus 10 us.
    assert costs.expert_bytes == pytest.approx(352.3e6, rel=1e-3)
    assert costs.transfer_s == pytest.approx(352.3e6 / 25e9 + 10e-6, rel=1e-3)
    assert costs.cpu_fixed_s == pytest.approx(20e-6 + 352.3e6 / 50e9, rel=1e-3)
    assert costs.gpu_per_token_s < costs.cpu_per_token_s / 10


def test_costs_follow_affine_models() -> None:
    inst = mixtral_layer()
    costs = cost_model("mixtral-8x7b")
    assert inst.cpu_cost[1] == pytest.approx(costs.cpu_time(9))
    assert inst.gpu_cost[0] == pytest.approx(costs.gpu_time(3))
    assert inst.gpu_cost[1] == pytest.approx(costs.gpu_time(9) + costs.transfer_s)


def test_json_round_trip(tmp_path) -> None:
    inst = Instance.generate(seed=4, size="medium", slot_limit=3)
    path = tmp_path / "layer.json"
    inst.to_json(path)
    back = Instance.from_json(path)
    assert np.array_equal(back.experts, inst.experts)
    assert np.array_equal(back.cached, inst.cached)
    assert np.allclose(back.gpu_cost, inst.gpu_cost)
    assert back.slot_limit == 3
    assert back.tokens == inst.tokens


def test_generate_is_seeded() -> None:
    first = Instance.generate(seed=9, size="large")
    again = Instance.generate(seed=9, size="large")
    other = Instance.generate(seed=10, size="large")
    assert first.to_json() == again.to_json()
    assert first.to_json() != other.to_json()
    assert first.workload.sum() == first.tokens * 8


def test_negative_workload_rejected() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        mixtral_layer().replace(workload=np.array([3.0, -1.0, 1.0, 3.0]))


def test_zero_workload_rejected() -> None:
    with pytest.raises(ValueError, match="workload 0"):
        mixtral_layer().replace(workload=np.array([3.0, 0.0, 1.0, 3.0]))


def test_top_k_above_expert_count_rejected() -> None:
    with pytest.raises(ValueError, match="top_k=9 exceeds num_experts=8"):
        mixtral_layer(top_k=9)


def test_duplicate_expert_rejected() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        Instance.create([1, 1], [2, 2], costs=cost_model("mixtral-8x7b"), num_experts=8)


def test_expert_id_outside_layer_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        Instance.create([8], [2], costs=cost_model("mixtral-8x7b"), num_experts=8)


def test_negative_cost_rejected() -> None:
    with pytest.raises(ValueError, match="transfer_s of expert 0"):
        mixtral_layer(transfer_s=-1.0)


def test_infinite_cost_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        mixtral_layer(transfer_s=np.inf)


def test_workload_sum_checked_against_tokens() -> None:
    with pytest.raises(ValueError, match="tokens \\* top_k"):
        mixtral_layer(tokens=10)


def test_unknown_json_field_rejected() -> None:
    data = json.loads(mixtral_layer().to_json())
    data["colour"] = "red"
    with pytest.raises(ValueError, match="unknown fields"):
        Instance.from_dict(data)


def test_missing_json_field_rejected() -> None:
    data = json.loads(mixtral_layer().to_json())
    del data["workload"]
    with pytest.raises(ValueError, match="lacks"):
        Instance.from_dict(data)


def test_malformed_json_rejected() -> None:
    with pytest.raises(ValueError, match="malformed"):
        Instance.from_json("{not json")


# ---------------------------------------------------------------------- exact and bounds


def test_build_shape() -> None:
    compiled = build(mixtral_layer(slot_limit=1)).compile()
    assert compiled.num_cols == 5
    assert compiled.num_rows == 3
    assert compiled.is_mip


def test_milp_pinned_small_layer() -> None:
    inst = mixtral_layer()
    result, solution = solve_milp(inst)
    assert result.termination.value == "optimal"
    assert solution is not None
    assert validate(inst, solution) == []
    # Brute force over the 16 schedules of this layer.
    # evaluate() and the program measure milliseconds; brute force returns seconds.
    assert evaluate(inst, solution) == pytest.approx(brute_force(inst)[0] * 1e3, rel=1e-9)
    assert result.objective == pytest.approx(evaluate(inst, solution), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(layers(max_experts=16, slots=True))
def test_milp_equals_brute_force(inst: Instance) -> None:
    result, solution = solve_milp(inst, "highs", SolveOptions(time_limit=20))
    assert solution is not None
    assert validate(inst, solution) == []
    best, _ = brute_force(inst)
    assert evaluate(inst, solution) == pytest.approx(best * 1e3, rel=1e-7, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(layers(max_experts=12))
def test_sorted_lp_matches_highs_lp(inst: Instance) -> None:
    result = solve_lp_relaxation(inst)
    assert result.bound is not None
    assert lp_bound(inst) * 1e3 == pytest.approx(result.bound, rel=1e-7, abs=1e-9)
    rounded = lp_round(inst)
    assert validate(inst, rounded) == []
    assert rounded.lower_bound == pytest.approx(result.bound)
    assert evaluate(inst, rounded) >= result.bound * (1 - 1e-9) - 1e-9


@settings(max_examples=100, deadline=None)
@given(layers(max_experts=12))
def test_bound_chain(inst: Instance) -> None:
    optimum, _ = brute_force(inst)
    z_lp = lp_bound(inst)
    z_greedy = layer_time(inst, greedy(inst).on_gpu)
    z_cpu = layer_time(inst, all_cpu(inst).on_gpu)
    assert z_lp <= optimum * (1 + TOL) + TOL
    assert optimum <= z_greedy * (1 + TOL) + TOL
    assert z_greedy <= z_cpu * (1 + TOL) + TOL


@settings(max_examples=100, deadline=None)
@given(layers(max_experts=12))
def test_ratio_key_within_twice_optimum(inst: Instance) -> None:
    optimum, _ = brute_force(inst)
    z_ratio = layer_time(inst, greedy_ratio(inst).on_gpu)
    assert z_ratio <= 2 * optimum * (1 + TOL) + TOL
    value, x = lp_relaxation(inst)
    split = np.flatnonzero((x > 0) & (x < 1))
    if len(split):
        f = split[0]
        slack = min(inst.gpu_cost[f], inst.cpu_cost[f])
        assert z_ratio <= value + slack + 1e-9 * max(1.0, value)


@settings(max_examples=60, deadline=None)
@given(layers(max_experts=10, slots=True))
def test_heuristics_valid_with_slot_limit(inst: Instance) -> None:
    for name, heuristic in HEURISTICS.items():
        assert validate(inst, heuristic(inst)) == [], name


def test_greedy_beats_naive_when_cached_sort_first() -> None:
    inst = Instance.generate(seed=2, size="large")
    key = inst.cpu_cost - inst.gpu_cost
    assert key[inst.cached].min() > key[~inst.cached].max()
    assert evaluate(inst, greedy(inst)) <= evaluate(inst, cached_gpu(inst))


def test_free_transfer_sends_everything_to_faster_gpu() -> None:
    inst = Instance.generate(seed=5, size="small", phase="prefill")
    free = inst.replace(transfer_s=np.zeros(inst.n), gpu_base_s=0.0)
    # Each expert is far faster on the GPU than on the CPU, and the GPU total still beats
    # the cheapest CPU expert, so the best schedule leaves the CPU idle.
    assert free.gpu_cost.sum() < free.cpu_cost.min()
    assert greedy(free).on_gpu.all()
    _, solution = solve_milp(free)
    assert solution is not None and solution.on_gpu.all()


def test_huge_transfer_keeps_uncached_off_gpu() -> None:
    inst = Instance.generate(seed=5, size="medium", phase="prefill")
    slow = inst.replace(transfer_s=np.full(inst.n, 1e6))
    for name in ("greedy", "greedy-ratio", "static"):
        assert not HEURISTICS[name](slow).on_gpu[slow.uncached].any(), name
    _, solution = solve_milp(slow)
    assert solution is not None
    assert not solution.on_gpu[slow.uncached].any()


def test_greedy_ties_break_toward_lower_id() -> None:
    costs = cost_model("mixtral-8x7b")
    inst = Instance.create([1, 4, 6], [5, 5, 5], False, costs=costs, num_experts=8, top_k=2)
    # Three identical experts: moving one to the GPU is best, and it must be expert 1.
    assert greedy(inst).gpu_set() == [1]
    assert greedy(inst).gpu_set() == greedy(inst).gpu_set()


def test_greedy_ties_independent_of_listing_order() -> None:
    costs = cost_model("mixtral-8x7b")
    forward = Instance.create([1, 4, 6], [5, 5, 5], False, costs=costs, num_experts=8)
    backward = Instance.create([6, 4, 1], [5, 5, 5], False, costs=costs, num_experts=8)
    assert greedy(forward).gpu_set() == greedy(backward).gpu_set() == [1]


@settings(max_examples=60, deadline=None)
@given(layers(max_experts=12), st.randoms(use_true_random=False))
def test_greedy_invariant_to_relabelling(inst: Instance, random) -> None:
    order = list(range(inst.n))
    random.shuffle(order)
    shuffled = inst.replace(
        **{
            name: np.asarray(getattr(inst, name))[order]
            for name in (
                "experts",
                "workload",
                "cached",
                "cpu_fixed_s",
                "cpu_per_token_s",
                "gpu_fixed_s",
                "gpu_per_token_s",
                "transfer_s",
            )
        }
    )
    assert sorted(greedy(inst).gpu_set()) == sorted(greedy(shuffled).gpu_set())
    assert evaluate(inst, greedy(inst)) == pytest.approx(evaluate(shuffled, greedy(shuffled)))


def test_first_crossing_balance() -> None:
    # Replays the loop of the greedy rule with plain Python and checks greedy_assign against
    # it: at the first crossing the imbalance before or after the move is at most
    # (g_e + p_e) / 2, and the returned schedule is no worse than either side.
    rng = np.random.default_rng(0)
    crossings = 0
    for _ in range(50):
        g = rng.uniform(0.1, 5, 10)
        p = rng.uniform(0.1, 5, 10)
        on_gpu, value = greedy_assign(g, p, stop="first_crossing")
        assert value == pytest.approx(max(g[on_gpu].sum(), p[~on_gpu].sum()))

        gpu, cpu = 0.0, float(p.sum())
        for e in sorted(range(10), key=lambda e: (g[e] - p[e], e)):
            before = cpu - gpu
            before_time = max(gpu, cpu)
            gpu += g[e]
            cpu -= p[e]
            if gpu >= cpu:
                crossings += 1
                assert min(before, gpu - cpu) <= (g[e] + p[e]) / 2 + 1e-12
                assert value <= min(before_time, max(gpu, cpu)) + 1e-12
                break
    assert crossings > 40


def test_greedy_assign_rejects_unknown_key() -> None:
    with pytest.raises(ValueError, match="key must be one of"):
        greedy_assign(np.ones(2), np.ones(2), key="size")


def test_validator_flags_slot_overflow() -> None:
    inst = mixtral_layer(slot_limit=0)
    everything = Assignment.of(inst, np.ones(inst.n, dtype=bool))
    assert any("slot_limit" in problem for problem in validate(inst, everything))


def test_validator_flags_fractional_and_wrong_length() -> None:
    inst = mixtral_layer()
    half = Assignment(inst.experts, np.full(inst.n, 0.5))
    assert any("not 0 or 1" in problem for problem in validate(inst, half))
    short = Assignment(inst.experts[:2], np.zeros(2, dtype=bool))
    assert validate(inst, short)


def test_layer_time_is_max_of_loads() -> None:
    inst = mixtral_layer()
    x = np.array([True, False, False, True])
    gpu = inst.gpu_cost[x].sum()
    cpu = inst.cpu_cost[~x].sum()
    assert layer_time(inst, x) == pytest.approx(max(gpu, cpu))


def test_registered_heuristics_match_module() -> None:
    from gaplab.models.moe_assign import HEURISTIC_NAMES, SPEC

    assert tuple(HEURISTICS) == HEURISTIC_NAMES
    inst = mixtral_layer()
    for name in HEURISTIC_NAMES:
        assert SPEC.heuristics[name](inst).on_gpu.tolist() == HEURISTICS[name](inst).on_gpu.tolist()


@settings(max_examples=40, deadline=None)
@given(layers(max_experts=12, slots=True))
def test_overlap_milp_equals_brute_force(inst: Instance) -> None:
    overlapped = inst.replace(copy_overlap=True)
    result, solution = solve_milp(overlapped, "highs", SolveOptions(time_limit=20))
    assert solution is not None
    assert validate(overlapped, solution) == []
    best, _ = brute_force(overlapped)
    assert evaluate(overlapped, solution) == pytest.approx(best * 1e3, rel=1e-7, abs=1e-9)
    assert result.objective == pytest.approx(best * 1e3, rel=1e-6, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(layers(max_experts=10))
def test_overlap_bound_chain(inst: Instance) -> None:
    overlapped = inst.replace(copy_overlap=True)
    optimum, _ = brute_force(overlapped)
    z_greedy = layer_time(overlapped, greedy(overlapped).on_gpu)
    assert lp_bound(overlapped) <= optimum * (1 + 1e-7) + 1e-9
    assert optimum <= z_greedy * (1 + TOL) + TOL
    assert z_greedy <= layer_time(overlapped, all_cpu(overlapped).on_gpu) * (1 + TOL) + TOL
    # Overlap never makes a schedule slower than the serialized stream.
    assert optimum <= brute_force(inst)[0] * (1 + TOL) + TOL


def test_overlap_layer_time_pinned() -> None:
    costs = cost_model("mixtral-8x7b")
    inst = Instance.create(
        [0, 1, 2], [4, 4, 4], [True, False, False], costs=costs, num_experts=8, copy_overlap=True
    )
    x = np.array([True, True, True])
    kernels = 3 * costs.gpu_time(4)
    copies = 2 * costs.transfer_s
    assert layer_time(inst, x) == pytest.approx(max(copies, kernels + costs.transfer_s))


def test_overlap_round_trips_json() -> None:
    inst = mixtral_layer(copy_overlap=True)
    assert Instance.from_json(inst.to_json()).copy_overlap is True


def test_closed_form_lp_rejects_overlap() -> None:
    with pytest.raises(ValueError, match="overlaps copies"):
        lp_relaxation(mixtral_layer(copy_overlap=True))


MILP_BACKENDS = ("highs", "pulp:cbc", "cvxpy:HIGHS", "pyomo:scip", "cvxpy:SCIP")
"""HiGHS, CBC and cvxpy's HiGHS must be installed; the SCIP backends are optional."""
OPTIONAL_BACKENDS = ("pyomo:scip", "cvxpy:SCIP")


@pytest.mark.parametrize("backend", MILP_BACKENDS)
def test_milp_solves_on_backend(backend: str) -> None:
    from gaplab.solvers import get_backend

    if backend in OPTIONAL_BACKENDS:
        state = get_backend(backend).check_available()
        if not state.available:
            pytest.skip(f"{backend} is not installed here: {state.detail}")
    inst = Instance.from_json(SHIPPED_DIR / "qwen3-30b-a3b-decode-b32.json")
    result, solution = solve_milp(inst, backend, SolveOptions(time_limit=60))
    assert result.termination.value == "optimal", result.message
    assert solution is not None
    assert validate(inst, solution) == []
    reference, _ = solve_milp(inst)
    assert reference.objective is not None
    assert evaluate(inst, solution) == pytest.approx(reference.objective, rel=1e-6)


def test_highs_gap_only_for_highs() -> None:
    for backend in ("highs", "pyomo:highs", "pyomo:appsi_highs", "pulp:highs", "cvxpy:HIGHS"):
        assert runs_highs(backend), backend
    for backend in ("pulp:cbc", "pyomo:cbc", "pyomo:scip", "cvxpy:SCIP", "pyomo:gurobi"):
        assert not runs_highs(backend), backend


def test_brute_force_variant_small_layer() -> None:
    inst = mixtral_layer(slot_limit=1)
    result, solution = solve_brute_force(inst)
    assert result.termination.value == "optimal"
    assert result.backend == "brute-force"
    assert solution is not None
    assert validate(inst, solution) == []
    assert result.max_violation == pytest.approx(0.0, abs=1e-9)
    milp, _ = solve_milp(inst)
    assert result.objective == pytest.approx(milp.objective, rel=1e-9)
    assert evaluate(inst, solution) == pytest.approx(result.objective, rel=1e-12)


def test_brute_force_variant_declines_large_layer() -> None:
    inst = Instance.from_json(SHIPPED_DIR / "qwen3-30b-a3b-decode-b32.json")
    result, solution = solve_brute_force(inst)
    assert solution is None
    assert result.termination.value == "other"
    assert result.solution_status.value == "no_solution"
    assert "use the milp variant" in result.message
