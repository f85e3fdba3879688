"""Routing traces, popularity files, cache policies, prefetch and the end-to-end replay."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.heuristics.moe_assign import greedy
from gaplab.models.moe_assign.hardware import ModelShape
from gaplab.models.moe_assign.importers import (
    Popularity,
    hit_mass,
    instances_from_popularity,
    load_popularity,
    popularity_files,
)
from gaplab.models.moe_assign.traces import (
    build_gate_model,
    cap_shares,
    generate_trace,
    zipf_popularity,
)
from gaplab.models.moe_assign.validate import validate
from gaplab.sim.moe_cache import (
    LFU,
    WindowCache,
    make_policy,
    popular_initial,
    replay_cache,
)
from gaplab.sim.moe_prefetch import precision_at_1, prefetch_candidate
from gaplab.sim.moe_replay import NAIVE, simulate, speedups
from tests.conftest import require_data_file


@pytest.fixture(scope="module")
def deepseek_trace():
    return generate_trace("deepseek-v2-lite", seed=3, batch=8, decode_steps=24, sequences=2)


# ---------------------------------------------------------------------- traces


def test_trace_is_seeded() -> None:
    first = generate_trace("mixtral-8x7b", seed=1, decode_steps=4)
    again = generate_trace("mixtral-8x7b", seed=1, decode_steps=4)
    other = generate_trace("mixtral-8x7b", seed=2, decode_steps=4)
    assert np.array_equal(first.workload, again.workload)
    assert not np.array_equal(first.workload, other.workload)


def test_trace_phases_and_token_counts(deepseek_trace) -> None:
    trace = deepseek_trace
    assert trace.workload.shape == (2 * 25, 27, 64)
    assert list(trace.phase[:2]) == ["prefill", "decode"]
    assert trace.tokens[0] == 8 * 64
    assert trace.tokens[1] == 8
    # Every token picks top_k distinct experts in every layer.
    assert np.all(trace.workload.sum(axis=2) == trace.tokens[:, None] * 6)
    assert trace.workload.max() <= trace.tokens.max()


def test_trace_temporal_correlation() -> None:
    options = {"seed": 4, "batch": 4, "prompt_tokens": 0, "decode_steps": 16}
    correlated = generate_trace("deepseek-v2-lite", **options)
    independent = generate_trace("deepseek-v2-lite", temporal_correlation=0.0, **options)

    def overlap(trace) -> float:
        active = trace.workload > 0
        shared = (active[1:] & active[:-1]).sum()
        return shared / active[1:].sum()

    assert overlap(correlated) > overlap(independent) + 0.05


def test_trace_follows_target_popularity() -> None:
    rng = np.random.default_rng(0)
    target = cap_shares(np.stack([zipf_popularity(64, 1.2, rng) for _ in range(27)]), 6)
    trace = generate_trace("deepseek-v2-lite", seed=5, popularity=target, decode_steps=8)
    observed = trace.workload.sum(axis=0)
    observed = observed / observed.sum(axis=1, keepdims=True)
    distance = np.abs(observed - target).sum(axis=1).mean()
    uniform = np.abs(1 / 64 - target).sum(axis=1).mean()
    assert distance < 0.5 * uniform


def test_cap_shares_respects_top_k() -> None:
    shares = cap_shares(np.array([[0.7, 0.1, 0.1, 0.1]]), 2)
    assert shares.max() <= 0.45 + 1e-12
    assert shares.sum() == pytest.approx(1.0)


def test_trace_rejects_wrong_popularity_shape() -> None:
    with pytest.raises(ValueError, match="expected \\(32, 8\\)"):
        generate_trace("mixtral-8x7b", popularity=np.ones((32, 7)))


def test_trace_rejects_unknown_shape() -> None:
    with pytest.raises(KeyError, match="unknown model shape"):
        generate_trace("gpt-5")


# ---------------------------------------------------------------------- prefetch


def test_residual_predictor_beats_plain(deepseek_trace) -> None:
    plain = precision_at_1(deepseek_trace, "plain")
    residual = precision_at_1(deepseek_trace, "residual")
    assert residual > plain + 0.03
    assert precision_at_1(deepseek_trace, "oracle") == 1.0


def test_zero_residual_reduces_to_plain() -> None:
    rng = np.random.default_rng(7)
    popularity = cap_shares(np.full((6, 16), 1.0), 2)
    gate = build_gate_model(popularity, 2, rng, calibration_tokens=128)
    states = gate.hidden_states(rng.normal(size=(32, gate.dim)), rng)
    zero = np.zeros_like(gate.residual)
    assert np.array_equal(gate.predict_next(states, zero), gate.predict_next(states))
    assert not np.array_equal(gate.predict_next(states, gate.residual), gate.predict_next(states))


def test_prefetch_candidate_skips_residents() -> None:
    predicted = np.array([5, 9, 9, 0])
    resident = np.array([False, True, False, False])
    assert prefetch_candidate(predicted, resident) == 2
    assert prefetch_candidate(np.zeros(4), resident) is None


def test_precision_rejects_unknown_predictor(deepseek_trace) -> None:
    with pytest.raises(KeyError, match="unknown predictor"):
        precision_at_1(deepseek_trace, "crystal-ball")


# ---------------------------------------------------------------------- caches


@pytest.mark.parametrize("name", ["warc", "lru", "lfu", "score"])
def test_cache_invariants(deepseek_trace, name: str) -> None:
    capacity = 16
    initial = popular_initial(deepseek_trace.popularity, capacity)
    policy = make_policy(name, 27, 64, capacity, initial)
    stats = replay_cache(deepseek_trace, policy)
    assert stats.sizes_constant
    assert stats.hits + stats.misses == deepseek_trace.routed_events
    assert (policy.resident.sum(axis=1) == capacity).all()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 10_000))
def test_warc_swaps_only_at_window_ends(window: int, swaps: int, seed: int) -> None:
    trace = generate_trace("mixtral-8x7b", seed=seed, batch=2, prompt_tokens=0, decode_steps=12)
    policy = WindowCache(32, 8, 2, window=window, swaps=swaps)
    stats = replay_cache(trace, policy)
    assert stats.sizes_constant
    assert stats.hits + stats.misses == trace.routed_events
    assert all(step % window == 0 for _, step in policy.swap_steps)


def test_warc_window_one_keeps_last_step() -> None:
    trace = generate_trace("deepseek-v2-lite", seed=8, batch=2, prompt_tokens=0, decode_steps=6)
    capacity = 16
    policy = WindowCache(27, 64, capacity, window=1, swaps=capacity)
    for step in range(trace.steps):
        for layer in range(trace.layers):
            workload = trace.workload[step, layer]
            policy.observe(layer, workload, np.zeros(64, dtype=bool))
            active = workload > 0
            assert active.sum() <= capacity
            assert policy.resident[layer][active].all()


def test_stationary_trace_warc_not_below_lfu() -> None:
    trace = generate_trace(
        "deepseek-v2-lite",
        seed=11,
        batch=8,
        prompt_tokens=0,
        decode_steps=32,
        temporal_correlation=0.0,
        zipf=1.2,
    )
    initial = popular_initial(trace.popularity, 16)
    warc = replay_cache(trace, WindowCache(27, 64, 16, initial, window=4, swaps=2)).hit_rate
    lfu = replay_cache(trace, LFU(27, 64, 16, initial)).hit_rate
    assert warc >= lfu - 0.03


def test_cache_replay_is_reproducible(deepseek_trace) -> None:
    first = replay_cache(deepseek_trace, make_policy("warc", 27, 64, 16))
    again = replay_cache(deepseek_trace, make_policy("warc", 27, 64, 16))
    assert first.step_hit_rate == again.step_hit_rate
    assert first.loads == again.loads


def test_cache_replay_counts_ceiling(deepseek_trace) -> None:
    capacity = 16
    initial = popular_initial(deepseek_trace.popularity, capacity)
    for name in ("warc", "lru", "lfu", "score"):
        stats = replay_cache(deepseek_trace, make_policy(name, 27, 64, capacity, initial))
        assert stats.hits <= stats.max_hits, name
        assert stats.hit_rate <= stats.max_hit_rate, name
        assert stats.replacements >= stats.loads, name
    lru = replay_cache(deepseek_trace, make_policy("lru", 27, 64, capacity, initial))
    assert lru.loads == 0
    assert lru.replacements > 0


def test_cache_ceiling_when_all_active() -> None:
    trace = generate_trace("mixtral-8x7b", seed=5, batch=64, prompt_tokens=0, decode_steps=4)
    assert (trace.workload > 0).all()
    stats = replay_cache(trace, make_policy("lru", 32, 8, 2))
    assert stats.max_hit_rate == pytest.approx(2 / 8)
    assert stats.hit_rate == pytest.approx(2 / 8)
    assert stats.replacements == 0


def test_cache_rejects_bad_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        make_policy("lru", 2, 8, 9)
    with pytest.raises(KeyError, match="unknown cache policy"):
        make_policy("fifo", 2, 8, 2)


# ---------------------------------------------------------------------- end-to-end replay


def test_replay_accounting(deepseek_trace) -> None:
    result = simulate(deepseek_trace, assignment="greedy", prefetch="residual", cache="warc")
    assert result.min_layer_bound_ok
    assert result.hits + result.misses == deepseek_trace.routed_events
    copies = result.demand_copies + result.prefetches + result.cache_loads
    assert result.pcie_bytes == pytest.approx(copies * 3 * 2048 * 1408 * 2)
    # At most one prefetch per layer boundary and step.
    assert result.prefetches <= deepseek_trace.steps * (deepseek_trace.layers - 1)
    assert len(result.step_seconds) == deepseek_trace.steps


def test_naive_combination_copies_nothing(deepseek_trace) -> None:
    naive = simulate(deepseek_trace, assignment=NAIVE[0], prefetch=NAIVE[1], cache=NAIVE[2])
    assert naive.pcie_bytes == 0.0


def test_greedy_speeds_up_over_naive(deepseek_trace) -> None:
    rows = speedups(deepseek_trace, [("greedy", "none", "lru"), ("greedy", "residual", "warc")])
    assert all(row["speedup"] > 1.0 for row in rows)


# ---------------------------------------------------------------------- popularity files


def test_popularity_wrong_shape_rejected(tmp_path) -> None:
    path = tmp_path / "expert_popularity_bad.json"
    path.write_text(json.dumps({"total_input_tokens": 3, "expert_popularity": [[1, 1]] * 32}))
    with pytest.raises(ValueError, match="has shape \\(32, 2\\), expected \\(32, 8\\)"):
        load_popularity(path)


def test_popularity_missing_matrix_rejected(tmp_path) -> None:
    path = tmp_path / "expert_popularity_bad.json"
    path.write_text(json.dumps({"total_input_tokens": 3}))
    with pytest.raises(ValueError, match="lacks the 'expert_popularity'"):
        load_popularity(path)


def test_popularity_unequal_rows_rejected(tmp_path) -> None:
    rows = [[2, 2, 2, 2, 2, 2, 2, 2]] * 31 + [[2, 2, 2, 2, 2, 2, 2, 4]]
    path = tmp_path / "expert_popularity_bad.json"
    path.write_text(json.dumps({"expert_popularity": rows}))
    with pytest.raises(ValueError, match="one positive sum"):
        load_popularity(path)


def test_popularity_malformed_json_rejected(tmp_path) -> None:
    path = tmp_path / "expert_popularity_bad.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_popularity(path)


def test_popularity_missing_file_rejected(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_popularity(tmp_path / "absent.json")


def test_popularity_real_file(data_dir) -> None:
    path = require_data_file(
        data_dir,
        "moe/fiddler_mixtral_8x7b_instruct/expert_popularity_college_computer_science.json",
    )
    popularity = load_popularity(path)
    assert popularity.counts.shape == (32, 8)
    # Rows sum to 14,398 picks: 7,199 routed tokens at top-2.
    assert popularity.counts[0].sum() == 14398
    assert popularity.routed_tokens == 7199
    assert popularity.total_input_words == 5064
    assert len(popularity_files(data_dir)) == 7


def test_popularity_instances_valid(data_dir) -> None:
    for path in popularity_files(data_dir):
        popularity = load_popularity(path)
        for inst in instances_from_popularity(popularity, batch=16, layers=[0, 31]):
            assert inst.workload.sum() == 16 * 2
            assert inst.cached.sum() <= 2
            assert inst.meta["subject"] == popularity.subject
            assert validate(inst, greedy(inst)) == []


def test_static_cache_choices_pinned() -> None:
    counts = np.array([[1, 5, 3, 1]] * 31 + [[9, 1, 0, 0]], dtype=np.int64)
    shape = ModelShape(
        "toy",
        layers=32,
        experts=4,
        top_k=2,
        shared_experts=0,
        hidden_size=8,
        expert_intermediate_size=8,
    )
    popularity = Popularity(counts, shape, "toy")
    per_layer = popularity.resident_top(1)
    assert per_layer[0].tolist() == [False, True, False, False]
    assert per_layer[31].tolist() == [True, False, False, False]
    shared = popularity.resident_global(32)
    assert shared.sum() == 32
    # Layer 31's favourite (share 0.9) beats every other layer's 0.5.
    assert shared[31, 0]
    assert hit_mass(per_layer, popularity.shares) == pytest.approx((31 * 0.5 + 0.9) / 32)


def test_static_cache_transfers_across_subjects(data_dir) -> None:
    subjects = [load_popularity(path) for path in popularity_files(data_dir)]
    chosen = subjects[0].resident_top(2)
    own = hit_mass(chosen, subjects[0].shares)
    others = [hit_mass(chosen, other.shares) for other in subjects[1:]]
    # Two of eight experts hold more than the uniform 25 % of the picks on every subject.
    assert own > 0.25
    assert min(others) > 0.25
    assert own >= max(others) - 0.02
