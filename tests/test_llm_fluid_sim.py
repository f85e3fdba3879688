"""llm-fluid simulator and policies: exact on a small chain, convergence to the LP, invariants."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from gaplab.heuristics.llm_fluid import (
    POLICY_NAMES,
    make_policy,
    plan_start,
    run_policy,
    solo_share,
)
from gaplab.models.llm_fluid import SPEC
from gaplab.models.llm_fluid.checks import bound_violation, clip_to_bound
from gaplab.models.llm_fluid.compare import extras, policy_table
from gaplab.models.llm_fluid.importers import instance_from_profile
from gaplab.models.llm_fluid.instance import Instance, ServiceLevels, two_class_instance
from gaplab.models.llm_fluid.solve import solve_fluid
from gaplab.models.registry import run_heuristic
from gaplab.sim.llm_fluid import simulate
from gaplab.sim.llm_fluid_policies import Policy
from tests.conftest import require_data_file

R_BUNDLED = 297.70317


@pytest.fixture(scope="module")
def inst() -> Instance:
    return two_class_instance()


def one_gpu_instance() -> Instance:
    """One class on one GPU with B = 2: the decode slot is the bottleneck."""
    return replace(
        two_class_instance(1),
        classes=("only",),
        prompt_tokens=(300.0,),
        output_tokens=(100.0,),
        arrival_rate=(1.0,),
        patience_rate=(0.5,),
        batch_size=2,
    )


def exact_one_gpu_revenue(instance: Instance, limit: int = 40) -> float:
    """Solve the chain of gate-and-route on one GPU with one reserved prefill slot and one
    decode slot: state (prefill queue, prefill busy, decode busy, decode buffer)."""
    lam = instance.lam[0]
    theta = instance.theta[0]
    mu_p, mu_m, mu_s = instance.mu_prefill[0], instance.mu_mixed[0], instance.mu_solo[0]
    states = [
        (q, p, d, b)
        for q in range(limit + 1)
        for p in (0, 1)
        for d in (0, 1)
        for b in range(limit + 1)
        if not (p == 0 and q > 0) and not (d == 0 and b > 0)
    ]
    index = {s: k for k, s in enumerate(states)}
    rows, cols, rates = [], [], []

    def move(source, target, rate):
        if rate > 0 and target in index:
            rows.append(index[source])
            cols.append(index[target])
            rates.append(rate)

    for s in states:
        q, p, d, b = s
        move(s, (q, 1, d, b) if p == 0 else (q + 1, p, d, b), lam)
        move(s, (q - 1, p, d, b), theta * q)
        move(s, (q, p, d, b - 1), theta * b)
        if p:
            after = (q - 1, 1) if q > 0 else (0, 0)
            move(s, (*after, 1, b) if d == 0 else (*after, d, b + 1), mu_p)
        if d:
            move(s, (q, p, 1, b - 1) if b > 0 else (q, p, 0, 0), mu_m if p else mu_s)
    size = len(states)
    generator = sp.csr_matrix((rates, (rows, cols)), shape=(size, size)).tolil()
    generator.setdiag(-np.asarray(generator.sum(axis=1)).ravel())
    system = generator.T.tolil()
    system[0, :] = 1.0
    rhs = np.zeros(size)
    rhs[0] = 1.0
    pi = spsolve(system.tocsr(), rhs)
    decode_rate = sum(pi[index[s]] * (mu_m if s[1] else mu_s) for s in states if s[2])
    return float(instance.bundled_price[0] * decode_rate)


def test_simulator_matches_exact_chain():
    instance = one_gpu_instance()
    policy, _ = make_policy("GG-SP", instance)
    assert policy.partition_size(1) == 1
    exact = exact_one_gpu_revenue(instance)
    sim = simulate(instance, policy, gpus=1, horizon=40000, warmup=100, seed=5)
    assert abs(sim.revenue - exact) <= max(3 * sim.revenue_ci, 0.01 * exact)
    assert sim.revenue_ci < 0.02 * exact


def test_same_seed_reproduces(inst):
    policy, _ = make_policy("GG-SP", inst)
    first = simulate(inst, policy, gpus=20, horizon=100, seed=7)
    second = simulate(inst, policy, gpus=20, horizon=100, seed=7)
    third = simulate(inst, policy, gpus=20, horizon=100, seed=8)
    assert first.revenue == second.revenue
    assert first.events == second.events
    assert np.array_equal(first.series["x"], second.series["x"])
    assert third.revenue != first.revenue


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_policy_capacity_every_event(inst, name):
    policy, _ = make_policy(name, inst)
    pricing = "separate" if name == "PR-SP" else "bundled"
    sim = simulate(
        inst, policy, gpus=7, horizon=80, seed=2, pricing=pricing, check_every_event=True
    )
    assert sim.capacity_violations == []
    assert (sim.counts["in_system"] >= 0).all()
    assert sim.events > 500


def test_gate_and_route_approaches_lp_value(inst):
    policy, plan = make_policy("GG-SP", inst)
    small = [simulate(inst, policy, gpus=5, horizon=600, seed=s).revenue for s in (1, 2, 3)]
    large = simulate(inst, policy, gpus=500, horizon=250, seed=1, start=plan_start(plan))
    gap_small = (R_BUNDLED - np.mean(small)) / R_BUNDLED
    gap_large = (R_BUNDLED - large.revenue) / R_BUNDLED
    assert gap_large < gap_small
    assert abs(gap_large) < 0.04
    assert large.revenue_ci < 0.015 * R_BUNDLED
    means = large.means()
    assert means["x"] == pytest.approx(plan.x, abs=0.005)
    assert means["q_d"].sum() < 0.1 * (means["y_m"].sum() + means["y_s"].sum())


def test_hold_variant_keeps_buffer_empty(inst):
    policy, plan = make_policy("GG-SP-hold", inst)
    sim = simulate(inst, policy, gpus=500, horizon=250, seed=1, start=plan_start(plan))
    means = sim.means()
    assert means["q_d"].sum() < 0.01
    assert means["q_p"][0] == pytest.approx(plan.q_p[0], abs=0.15)  # the marginal class waits
    assert (R_BUNDLED - sim.revenue) / R_BUNDLED < 0.02


def test_occupancy_spread_shrinks_with_n(inst):
    policy, plan = make_policy("GG-SP", inst)
    spread = []
    for n in (20, 500):
        sim = simulate(inst, policy, gpus=n, horizon=200, seed=4, start=plan_start(plan))
        keep = sim.times >= sim.warmup
        spread.append(sim.series["x"][keep].sum(axis=1).std())
    assert spread[1] < spread[0] / 2


def test_sli_router_tracks_solo_share(inst):
    policy, plan = make_policy("SLI-GG", inst)
    assert policy.router == "randomized"
    sim = simulate(inst, policy, gpus=200, horizon=300, seed=3)
    means = sim.means()
    assert means["x"] == pytest.approx(plan.x, abs=0.01)
    target = np.array(solo_share(inst, plan))
    solo_rate = means["y_s"] * inst.mu_solo
    observed = solo_rate / (solo_rate + means["y_m"] * inst.mu_mixed)
    assert observed == pytest.approx(target, abs=0.1)


def test_separate_pricing_keeps_decode_backlog(inst):
    outcome = run_policy("PR-SP", inst, gpus=200, horizon=300, seed=1)
    means = outcome.sim.means()
    assert outcome.policy.priority == (0, 1)  # decode-heavy has the larger D/P
    assert means["q_d"].sum() > 0.2
    assert outcome.sim.revenue == pytest.approx(298.587, rel=0.05)


def test_policy_rejects_inconsistent_options():
    with pytest.raises(ValueError, match="randomized router"):
        Policy("bad", "gate", partition=False, router="randomized")
    with pytest.raises(ValueError, match="admission"):
        Policy("bad", "lottery", partition=True)


def test_simulate_rejects_bad_arguments(inst):
    policy, _ = make_policy("GG-SP", inst)
    with pytest.raises(ValueError, match="horizon"):
        simulate(inst, policy, horizon=0)
    with pytest.raises(ValueError, match="warmup"):
        simulate(inst, policy, horizon=10, warmup=20)
    with pytest.raises(ValueError, match="pricing"):
        simulate(inst, policy, horizon=10, pricing="free")


def test_heuristics_through_spec(inst):
    small = inst.with_gpus(20)
    for name in ("GG-SP", "FI-WSP"):
        outcome = SPEC.heuristics[name](small)
        assert SPEC.validate(small, outcome) == []
        clipped = min(outcome.sim.revenue, R_BUNDLED)
        assert SPEC.evaluate(small, outcome) == pytest.approx(clipped)
        assert outcome.bound == pytest.approx(R_BUNDLED, rel=1e-6)


def test_outcome_bound_by_pricing(inst):
    small = inst.with_gpus(5)
    separate = run_policy("PR-SP", small, horizon=20)
    assert separate.bound == pytest.approx(298.58656, rel=1e-6)
    leveled = replace(small, service_levels=ServiceLevels(decode_fairness=0.5))
    sli = run_policy("SLI-GG", leveled, horizon=20)
    assert sli.plan.objective < R_BUNDLED - 1
    assert sli.bound == pytest.approx(R_BUNDLED, rel=1e-6)


def test_bound_violation_rule():
    assert bound_violation(101.0, 2.0, 100.0) is None
    assert bound_violation(102.0, 2.0, 100.0) is None
    message = bound_violation(102.5, 2.0, 100.0)
    assert message is not None
    assert "exceeds the LP bound 100" in message
    assert bound_violation(100.0 + 1e-8, float("nan"), 100.0) is None
    assert bound_violation(100.5, float("nan"), 100.0) is not None
    assert clip_to_bound(102.5, 100.0) == 100.0
    assert clip_to_bound(97.0, 100.0) == 97.0


def test_outcome_above_bound_within_noise(inst):
    outcome = run_policy("GG-SP", inst.with_gpus(20), horizon=30)
    estimate, half_width = outcome.estimate, outcome.ci95
    assert half_width > 0
    noisy = replace(outcome, bound=estimate - 0.5 * half_width)
    assert SPEC.validate(inst, noisy) == []
    assert SPEC.evaluate(inst, noisy) == pytest.approx(noisy.bound)
    assert noisy.to_json()["estimate"] == estimate
    assert noisy.to_json()["objective"] == pytest.approx(noisy.bound)
    broken = replace(outcome, bound=estimate - 2 * half_width)
    problems = SPEC.validate(inst, broken)
    assert len(problems) == 1
    assert "confidence half-width" in problems[0]


def test_vidur_heuristic_not_above_optimum(data_dir):
    path = require_data_file(data_dir, "llm_serving/vidur_h100_Llama-2-7b-hf_mlp.csv")
    instance = instance_from_profile(path)
    result, plan = solve_fluid(instance)
    assert plan is not None
    outcome = SPEC.heuristics["GG-SP"](instance)
    # The fluid LP serves every arrival here, so the estimate lands above it by noise alone.
    assert outcome.estimate > plan.objective
    assert SPEC.validate(instance, outcome) == []
    assert SPEC.evaluate(instance, outcome) == pytest.approx(plan.objective)


def test_heuristic_row_labelled_estimate(inst):
    row = run_heuristic(SPEC, inst.with_gpus(5), "two-class", "FI-WSP")
    assert row.status == "simulated-estimate"
    assert row.valid is True


def test_policy_table_columns(inst):
    table = policy_table(inst, gpus=(5,), horizon=40, policies=("GG-SP", "PR-SP"))
    assert list(table["policy"]) == ["GG-SP", "PR-SP"]
    assert table.loc[1, "lp_value"] == pytest.approx(298.58656, rel=1e-5)
    assert (table["events"] > 0).all()


def test_extras_write_plots(inst, tmp_path):
    leveled = replace(inst, service_levels=ServiceLevels(decode_fairness=4.0))
    rows = extras(leveled, tmp_path, quick=True)
    assert any(row["method"].startswith("sim:GG-SP") for row in rows)
    assert any(row["method"].startswith("lp:tpot") for row in rows)
    simulated = [row for row in rows if row["method"].startswith("sim:")]
    for row in simulated:
        assert row["status"] == "simulated-estimate"
        assert row["objective"] == min(row["estimate"], row["bound"])
        assert row["valid"] is True
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == [
        "llm-fluid-two-class-occupancy.png",
        "llm-fluid-two-class-revenue-vs-n.png",
        "llm-fluid-two-class-service-levels.png",
    ]


def test_suite_lists_shipped_instance():
    quick = SPEC.suite(True, None)
    assert [s.name for s in quick] == ["two-class"]
    result, plan = solve_fluid(quick[0].instance)
    assert plan.objective == pytest.approx(R_BUNDLED, rel=1e-5)


def test_suite_with_real_data(data_dir):
    names = [s.name for s in SPEC.suite(False, data_dir)]
    assert "azure-code-k3" in names
    assert "two-class-vidur" in names
