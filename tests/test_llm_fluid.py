"""llm-fluid: instance checks, the fluid LPs, their duals and service-level sweeps, importers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gaplab.models.llm_fluid import SPEC
from gaplab.models.llm_fluid.importers import (
    classes_from_trace,
    exponential_fit,
    fit_profile,
    instance_from_profile,
)
from gaplab.models.llm_fluid.instance import (
    Instance,
    InstanceError,
    ServiceLevels,
    dump,
    generate,
    load,
    two_class_instance,
)
from gaplab.models.llm_fluid.solution import admission, evaluate, revenue, validate
from gaplab.models.llm_fluid.solve import solve_fluid, sweep
from gaplab.solvers import SolveOptions
from tests.conftest import require_data_file

REL = 1e-5
R_BUNDLED = 297.70317
R_SEPARATE = 298.58656
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "llm-fluid" / "two-class.json"


@pytest.fixture(scope="module")
def inst() -> Instance:
    return two_class_instance()


@pytest.fixture(scope="module")
def bundled(inst):
    result, plan = solve_fluid(inst, "bundled")
    result.raise_for_status()
    return plan


@pytest.fixture(scope="module")
def separate(inst):
    result, plan = solve_fluid(inst, "separate")
    result.raise_for_status()
    return plan


# ---------------------------------------------------------------- instance


def test_derived_rates_pinned(inst):
    assert inst.tau == pytest.approx(0.033272, rel=1e-6)
    assert inst.solo_speedup == pytest.approx(1.5122, rel=1e-4)
    assert inst.mu_prefill == pytest.approx([25.6472, 2.56472], rel=1e-5)
    assert inst.mu_mixed == pytest.approx([0.0300553, 0.0751383], rel=1e-5)
    assert inst.mu_solo == pytest.approx([0.04545, 0.113625], rel=1e-5)
    assert inst.bundled_price == pytest.approx([230, 380])
    assert inst.mu_solo / inst.mu_mixed == pytest.approx([inst.solo_speedup] * 2)


def test_shipped_json_is_two_class():
    assert load(SHIPPED) == two_class_instance(100)


def test_json_round_trip(tmp_path):
    original = replace(generate(seed=3, size="medium"), service_levels=ServiceLevels(tpot=0.03))
    path = tmp_path / "instance.json"
    dump(original, path)
    assert load(path) == original


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arrival_rate": (-0.5, 0.5)}, "arrival_rate"),
        ({"patience_rate": (0.1, -1.0)}, "patience_rate"),
        ({"batch_size": 1}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"prompt_tokens": (0.0, 3000.0)}, "prompt_tokens"),
        ({"gamma": float("nan")}, "gamma"),
        ({"output_tokens": (1.0,)}, "output_tokens"),
        ({"gpus": 0}, "gpus"),
        ({"classes": ("a", "a")}, "distinct"),
    ],
)
def test_invalid_instance_rejected(inst, change, message):
    with pytest.raises(InstanceError, match=message):
        replace(inst, **change)


def test_json_unknown_field_rejected(inst):
    data = inst.to_dict()
    data["speed"] = 3
    with pytest.raises(InstanceError, match="unknown fields"):
        Instance.from_json(json.dumps(data))


def test_json_missing_field_rejected(inst):
    data = inst.to_dict()
    del data["gamma"]
    with pytest.raises(InstanceError, match="missing"):
        Instance.from_json(json.dumps(data))


def test_json_not_json_rejected(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(InstanceError, match="not valid JSON"):
        load(path)


# ---------------------------------------------------------------- LPs: pinned values


def test_bundled_value_pinned(bundled):
    assert bundled.objective == pytest.approx(R_BUNDLED, rel=REL)


def test_separate_value_pinned(separate):
    assert separate.objective == pytest.approx(R_SEPARATE, rel=REL)


def test_bundled_plan_pinned(bundled):
    assert bundled.x == pytest.approx([0.01826, 0.19495], abs=1e-5)
    assert bundled.prefilling == pytest.approx(0.213211, abs=1e-6)
    assert bundled.q_p == pytest.approx([0.31725, 0.0], abs=1e-5)
    assert bundled.q_d == pytest.approx([0.0, 0.0], abs=1e-9)
    assert bundled.y_m.sum() == pytest.approx(3.19817, abs=1e-5)
    assert bundled.y_s.sum() == pytest.approx(12.58862, abs=1e-5)


def test_separate_plan_pinned(separate):
    assert separate.x == pytest.approx([0.01950, 0.19495], abs=1e-5)
    assert separate.y_m.sum() == pytest.approx(3.21673, abs=1e-5)
    assert separate.y_s.sum() == pytest.approx(12.56883, abs=1e-5)
    assert separate.q_d.sum() > 0.3  # a decode backlog is part of the optimum


def test_partition_sizes_pinned(bundled):
    sizes = [bundled.partition(n) for n in (5, 20, 50, 200, 500)]
    assert sizes == [2, 5, 11, 43, 107]


# ---------------------------------------------------------------- LP identities


def test_plans_validate_and_evaluate(inst, bundled, separate):
    for plan in (bundled, separate):
        assert validate(inst, plan) == []
        assert evaluate(inst, plan) == pytest.approx(plan.objective, rel=1e-9)


def test_flow_balance_identities(inst, bundled):
    prefill = bundled.x * inst.mu_prefill
    decode = bundled.y_m * inst.mu_mixed + bundled.y_s * inst.mu_solo
    assert inst.lam - inst.theta * bundled.q_p == pytest.approx(prefill, abs=1e-9)
    assert decode.sum() == pytest.approx((prefill - inst.theta * bundled.q_d).sum(), abs=1e-9)
    assert revenue(inst, bundled) == pytest.approx(inst.bundled_price @ decode, rel=1e-12)


def test_value_below_demand_bound(inst, bundled):
    demand = float(inst.lam @ inst.bundled_price)
    assert demand == pytest.approx(305.0)
    assert bundled.objective < demand


def test_dual_relations(inst, bundled):
    duals = bundled.duals
    assert duals is not None
    assert duals.mixed_slots == pytest.approx(6.839, abs=1e-3)
    assert duals.solo_slots == pytest.approx(10.342, abs=1e-3)
    assert duals.solo_slots == pytest.approx(duals.mixed_slots * inst.solo_speedup, rel=1e-7)
    assert duals.decode_value == pytest.approx([2.452, 288.98], abs=1e-2)
    derived = inst.bundled_price - duals.solo_slots * inst.output / inst.gamma
    assert duals.decode_value == pytest.approx(derived, rel=1e-7)


def test_admission_reading(inst, bundled):
    table = admission(inst, bundled)
    assert list(table["status"]) == ["partial", "full"]
    assert table.loc["decode-heavy", "admitted_share"] == pytest.approx(0.9365, abs=1e-4)
    assert table.loc["decode-heavy", "index"] == pytest.approx(table["kappa"].iloc[0], rel=1e-7)
    assert table.loc["decode-heavy", "kappa"] == pytest.approx(62.88, abs=1e-2)
    assert table.loc["prefill-heavy", "index"] > table.loc["prefill-heavy", "kappa"]
    assert "marginal" in table.loc["decode-heavy", "reason"]


def test_admission_rejects_low_value_class(inst):
    # A very long output costs more decode-slot time (at the solo slot price) than it pays.
    cheap = replace(
        inst,
        classes=(*inst.classes, "cheap"),
        prompt_tokens=(*inst.prompt_tokens, 100.0),
        output_tokens=(*inst.output_tokens, 5000.0),
        arrival_rate=(*inst.arrival_rate, 0.5),
        patience_rate=(*inst.patience_rate, 0.1),
    )
    _, plan = solve_fluid(cheap)
    table = admission(cheap, plan)
    assert table.loc["cheap", "status"] == "none"
    assert table.loc["cheap", "index"] < table.loc["cheap", "kappa"]


def test_zero_decode_buffer_property(inst, bundled):
    assert inst.zero_buffer_condition
    _, fixed = solve_fluid(inst, "bundled", zero_decode_buffer=True)
    assert fixed.objective == pytest.approx(bundled.objective, rel=1e-9)
    _, separate_fixed = solve_fluid(inst, "separate", zero_decode_buffer=True)
    assert separate_fixed.objective == pytest.approx(R_BUNDLED, rel=REL)


def test_separate_value_invariant_to_class_labels(inst, separate):
    swapped = replace(
        inst,
        classes=inst.classes[::-1],
        prompt_tokens=inst.prompt_tokens[::-1],
        output_tokens=inst.output_tokens[::-1],
    )
    _, plan = solve_fluid(swapped, "separate")
    assert plan.objective == pytest.approx(separate.objective, rel=1e-9)


def test_underloaded_variant_admits_all(inst):
    _, plan = solve_fluid(replace(inst, arrival_rate=(0.25, 0.25)))
    assert plan.objective == pytest.approx(152.5, rel=REL)


def test_qwen4b_variant_admits_all(inst):
    qwen4b = replace(inst, alpha=0.0152, beta=3.6e-5, gamma=52.63)
    _, plan = solve_fluid(qwen4b)
    assert plan.objective == pytest.approx(305.0, rel=REL)


def test_zero_patience_overload_infeasible(inst):
    result, plan = solve_fluid(replace(inst, arrival_rate=(5.0, 5.0), patience_rate=(0.0, 0.0)))
    assert result.termination.value in ("infeasible", "infeasible_or_unbounded")
    assert plan is None


# ---------------------------------------------------------------- service levels


@pytest.mark.parametrize(
    ("field", "bounds", "expected"),
    [
        ("prefill_fairness", (0.2, 0.15, 0.1, 0.05, 0.0), (297.70, 280.19, 231.46, 182.73, 134.00)),
        ("decode_fairness", (8, 6, 4, 2, 0), (297.70, 297.70, 297.70, 278.68, 257.40)),
        (
            "tpot",
            (0.025, 0.024, 0.0235, 0.023, 0.0225, 0.0221),
            (297.70, 278.13, 232.95, 187.50, 141.78, 54.57),
        ),
    ],
)
def test_service_level_sweep_pinned_and_monotone(inst, field, bounds, expected):
    frame = sweep(inst, field, bounds)
    values = frame["revenue"].to_numpy(dtype=float)
    assert values == pytest.approx(expected, abs=0.01)
    assert (np.diff(values) <= 1e-9).all()


def test_hard_tpot_bound_holds(inst):
    _, plan = solve_fluid(inst, service_levels=ServiceLevels(tpot=0.023))
    assert validate(inst, plan) == []
    assert plan.q_d.sum() == 0


def test_tpot_penalty_exact_after_refinement(inst):
    levels = ServiceLevels(tpot_weight=100.0)
    _, plan = solve_fluid(inst, service_levels=levels)
    assert evaluate(inst, plan) == pytest.approx(plan.objective, rel=1e-9)
    assert plan.objective < R_BUNDLED


def test_fairness_penalties_lower_value(inst):
    prefill_levels = ServiceLevels(prefill_fairness_weight=10.0)
    decode_levels = ServiceLevels(decode_fairness_weight=10.0)
    _, prefill_plan = solve_fluid(inst, service_levels=prefill_levels)
    _, decode_plan = solve_fluid(inst, service_levels=decode_levels)
    assert evaluate(inst, prefill_plan) == pytest.approx(prefill_plan.objective, rel=1e-9)
    assert evaluate(inst, decode_plan) == pytest.approx(decode_plan.objective, rel=1e-9)
    assert prefill_plan.objective < R_BUNDLED
    assert decode_plan.objective < R_BUNDLED


def test_penalties_rise_with_weight(inst):
    values = [
        solve_fluid(inst, service_levels=ServiceLevels(tpot_weight=w))[1].objective
        for w in (0.0, 100.0, 1000.0, 5000.0)
    ]
    assert (np.diff(values) <= 1e-9).all()


def test_service_levels_reject_separate(inst):
    with pytest.raises(ValueError, match="bundled pricing only"):
        solve_fluid(inst, "separate", service_levels=ServiceLevels(tpot=0.03))


# ---------------------------------------------------------------- spec


def test_spec_exact_variants_validate(inst):
    options = SolveOptions(time_limit=10)
    leveled = replace(inst, service_levels=ServiceLevels(decode_fairness=2.0))
    for variant, instance in (("bundled", inst), ("separate", inst), ("sli", leveled)):
        result, plan = SPEC.exact[variant](instance, "highs", options)
        assert result.is_optimal
        assert SPEC.validate(instance, plan) == []
        assert SPEC.evaluate(instance, plan) == pytest.approx(result.objective, rel=1e-7)


def test_spec_generate_sizes():
    for size in SPEC.sizes:
        instance = SPEC.generate(seed=1, size=size)
        result, plan = SPEC.exact["bundled"](instance, "highs", SolveOptions())
        assert result.is_optimal
        assert SPEC.validate(instance, plan) == []


# ---------------------------------------------------------------- importers


def test_trace_missing_columns_rejected(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text("TIMESTAMP,ContextTokens\n2023-11-16 18:17:03,100\n")
    with pytest.raises(InstanceError, match="GeneratedTokens"):
        classes_from_trace(path, 2)


def test_trace_bad_value_rejected(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03,100,5\n2023-11-16 18:17:04,abc,6\n"
    )
    with pytest.raises(InstanceError, match="ContextTokens"):
        classes_from_trace(path, 1)


def test_trace_missing_file_rejected(tmp_path):
    with pytest.raises(InstanceError, match="not found"):
        classes_from_trace(tmp_path / "absent.csv", 2)


def test_profile_missing_columns_rejected(tmp_path):
    path = tmp_path / "mlp.csv"
    path.write_text("num_tokens,num_tensor_parallel_workers\n1,1\n")
    with pytest.raises(InstanceError, match="missing the columns"):
        fit_profile(path)


def test_trace_small_file_clusters(tmp_path):
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for k in range(40):
        prompt, output = (100, 500) if k % 2 else (3000, 20)
        lines.append(f"2023-11-16 18:17:{k:02d}.5,{prompt + k},{output + k}")
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(lines) + "\n")
    instance = classes_from_trace(path, 2, gpus=2)
    assert instance.size == 2
    assert instance.prompt_tokens[0] < 200
    assert sum(instance.arrival_rate) == pytest.approx(40 / 39 / 2)


def test_azure_trace_import(data_dir):
    path = require_data_file(data_dir, "llm_serving/AzureLLMInferenceTrace_code.csv")
    instance = classes_from_trace(path, 3)
    assert instance.size == 3
    assert sum(instance.arrival_rate) == pytest.approx(8819 / 3436.0, rel=1e-3)
    assert list(instance.prompt_tokens) == sorted(instance.prompt_tokens)
    result, plan = solve_fluid(instance)
    assert result.is_optimal
    assert validate(instance, plan) == []
    fit = exponential_fit(path, 3)
    assert fit["requests"].sum() == 8819


def test_vidur_profile_fit(data_dir):
    path = require_data_file(data_dir, "llm_serving/vidur_h100_Llama-2-7b-hf_mlp.csv")
    fit = fit_profile(path)
    assert fit.r2 > 0.99
    assert 0.004 < fit.c < 0.008  # about 5.6 ms for 32 layers at one token
    instance = instance_from_profile(path)
    assert instance.alpha == pytest.approx(fit.alpha)
    assert instance.gamma == pytest.approx(1 / fit.c)
    result, _ = solve_fluid(instance)
    assert result.is_optimal


def test_csv_importer_reads_header(data_dir, tmp_path):
    profile = require_data_file(data_dir, "llm_serving/vidur_h100_Llama-2-7b-hf_mlp.csv")
    trace = require_data_file(data_dir, "llm_serving/AzureLLMInferenceTrace_code.csv")
    from_profile = SPEC.pick_importer(profile)(profile)
    assert from_profile == instance_from_profile(profile)
    from_trace = SPEC.pick_importer(trace)(trace)
    assert from_trace == classes_from_trace(trace)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(InstanceError, match="neither an Azure LLM inference trace"):
        SPEC.pick_importer(other)(other)


def test_json_scalar_for_list_rejected(inst):
    data = inst.to_dict()
    data["arrival_rate"] = 0.5
    with pytest.raises(InstanceError, match="arrival_rate must be a JSON list"):
        Instance.from_json(json.dumps(data))
