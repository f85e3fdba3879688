"""Best response, the distributed pricing iteration and its windowed stochastic variant."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from gaplab.models.traffic import (
    Instance,
    certify,
    generate,
    objective,
    pubsub_instance,
    symmetric_instance,
)
from gaplab.models.traffic.best_response import best_response
from gaplab.models.traffic.delay import node_marginal
from gaplab.sim.traffic_pricing import run_pricing
from gaplab.sim.traffic_windowed import run_windowed
from tests.conftest import require_data_file

F_STAR = 2.0157473649138


def test_best_response_symmetric_split() -> None:
    inst = Instance("two", ("s",), ("u", "v"), [4.0], [100.0, 100.0], [[10.0, 10.0]])
    flows, alpha = best_response(inst, np.array([1.0, 1.0]))
    assert np.allclose(flows, [[2.0, 2.0]])
    assert alpha[0] == pytest.approx(1.0 + 10.0 / 8.0**2)


def test_best_response_threshold_rule() -> None:
    inst = generate(4, (6, 4))
    prices = np.array([0.0, 0.05, 0.2, 1.0])
    flows, alpha = best_response(inst, prices)
    threshold = prices[None, :] + 1.0 / inst.access_capacity
    used = flows > 0
    assert np.array_equal(used, alpha[:, None] > threshold)
    assert np.allclose(flows.sum(axis=1), inst.rates, rtol=0, atol=1e-12 * inst.rates.max())


def test_best_response_matches_slsqp() -> None:
    inst = generate(11, (3, 4))
    prices = np.array([0.01, 0.03, 0.0, 0.02])
    flows, _ = best_response(inst, prices)
    for i in range(inst.num_sources):
        mu = inst.access_capacity[i]

        def cost(x: np.ndarray, mu: np.ndarray = mu) -> float:
            return float(np.sum(x / (mu - x) + prices * x))

        found = minimize(
            cost,
            np.full(4, inst.rates[i] / 4),
            method="SLSQP",
            bounds=[(0.0, m * 0.999) for m in mu],
            constraints=[{"type": "eq", "fun": lambda x, r=inst.rates[i]: x.sum() - r}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
        assert cost(flows[i]) <= found.fun + 1e-10
        assert np.allclose(flows[i], found.x, atol=1e-4)


def test_best_response_survives_huge_prices() -> None:
    inst = pubsub_instance()
    flows, _ = best_response(inst, np.array([7e19, 1e18, 8e19]))
    assert np.allclose(flows.sum(axis=1), inst.rates)
    assert np.all(flows[:, 1] > 0)


def test_pricing_reaches_optimum_in_about_70_iterations() -> None:
    run = run_pricing(pubsub_instance())
    assert run.status == "converged"
    assert abs(run.iterations - 70) <= 5
    assert run.objective_history[-1] == pytest.approx(F_STAR, abs=1e-9)


def test_pricing_trajectory_shape() -> None:
    run = run_pricing(pubsub_instance(), reference=F_STAR)
    assert run.start_objective == pytest.approx(2.0512, abs=2e-3)
    assert run.objective_history[0] == pytest.approx(2.0345, abs=1e-3)
    assert run.objective_history[9] < 2.0159
    assert run.price_history.shape == (run.iterations, 3)
    assert np.all(run.step_history == 1.0)
    assert 1e-6 in run.gap_reached_at


def test_pricing_fixed_point_is_certified() -> None:
    inst = pubsub_instance()
    run = run_pricing(inst)
    certificate = certify(inst, run.flows, run.prices, reference=F_STAR)
    assert certificate.failures() == []
    assert certificate.residuals["price_consistency"] <= 1e-8


def test_certificate_stopping_rule() -> None:
    inst = pubsub_instance()
    run = run_pricing(inst, stop="certificate")
    assert run.converged
    prices = node_marginal(inst, run.flows.sum(axis=0))
    assert np.max(np.abs(run.prices - prices)) <= 1e-8


def test_pricing_invariants_every_iterate() -> None:
    inst = generate(6, (20, 5), load=0.7)
    run = run_pricing(inst, eta=0.1, gamma=0.2, max_iter=300)
    assert np.all(run.load_history <= inst.node_capacity - 1e-8 + 1e-9)
    assert np.allclose(run.flows.sum(axis=1), inst.rates)
    assert np.all(np.isfinite(run.objective_history))


def test_symmetric_large_steps_cycle() -> None:
    run = run_pricing(symmetric_instance(), eta=0.25, gamma=0.5)
    assert run.status == "cycle"
    assert "smaller steps" in run.message
    assert "eta=0.025" in run.message
    swing = np.abs(run.load_history[-1] - run.load_history[-2]).max()
    assert swing > 1.0


def test_symmetric_small_steps_converge() -> None:
    inst = symmetric_instance()
    run = run_pricing(inst, eta=0.01, gamma=0.02)
    assert run.status == "converged"
    assert np.allclose(run.flows, 3.0, atol=1e-6)
    oracle = 5 * 9.0 * (1 / (10.0 - 3.0) + 1 / (20.0 - 15.0))
    assert objective(inst, run.flows) == pytest.approx(oracle, rel=1e-9)


def test_iteration_limit_reported() -> None:
    run = run_pricing(pubsub_instance(), max_iter=10)
    assert run.status == "iteration_limit"
    assert "iteration limit 10" in run.message


def test_pricing_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="eta and gamma must lie in"):
        run_pricing(pubsub_instance(), eta=1.5)


def test_windowed_run_tracks_deterministic_utilization() -> None:
    run = run_windowed(pubsub_instance(), seed=0)
    deterministic = np.array([0.158136, 0.138642, 0.102983])
    assert run.utilization_history.shape == (60, 3)
    assert np.all(np.abs(run.mean_utilization / deterministic - 1) < 0.06)
    assert np.allclose(run.mean_flows.sum(axis=1), pubsub_instance().rates)
    assert np.all(run.backlog_history == 0)


def test_windowed_split_close_to_optimum() -> None:
    inst = pubsub_instance()
    run = run_windowed(inst, seed=1)
    assert objective(inst, run.mean_flows) == pytest.approx(F_STAR, rel=1e-3)


def test_windowed_rejects_bad_window() -> None:
    with pytest.raises(ValueError, match="window"):
        run_windowed(pubsub_instance(), window=0.0)


def test_unscaled_safe_step_same_on_pubsub() -> None:
    # The safe step never binds on this instance, so both forms take identical steps.
    scaled = run_pricing(pubsub_instance())
    unscaled = run_pricing(pubsub_instance(), safe_step="unscaled")
    assert unscaled.iterations == scaled.iterations
    assert np.allclose(unscaled.flows, scaled.flows, atol=1e-12)


def test_unscaled_safe_step_keeps_margin() -> None:
    inst = generate(6, (20, 5), load=0.9)
    run = run_pricing(inst, safe_step="unscaled", max_iter=200)
    assert np.all(run.load_history <= inst.node_capacity - 1e-8 + 1e-9)


def test_adaptive_steps_escape_cycle() -> None:
    inst = symmetric_instance()
    run = run_pricing(inst, adaptive=True)
    assert run.status == "converged"
    assert run.adjustments
    assert run.adjustments[0][1:] == (0.125, 0.25)
    assert np.allclose(run.flows, 3.0, atol=1e-6)


def test_adaptive_steps_unused_when_converging() -> None:
    run = run_pricing(pubsub_instance(), adaptive=True)
    assert run.adjustments == []
    assert run.iterations == run_pricing(pubsub_instance()).iterations


def test_default_pricing_heuristic_converges_where_fixed_steps_cycle() -> None:
    from gaplab.heuristics.traffic import HEURISTICS

    inst = symmetric_instance()
    fixed = HEURISTICS["pricing-fixed"](inst)
    assert fixed.status == "cycle"
    default = HEURISTICS["pricing"](inst)
    assert default.status == "converged"
    assert default.info["halvings"] >= 1
    assert np.allclose(default.flows, 3.0, atol=1e-6)


def test_unconverged_run_stays_valid_and_says_so() -> None:
    # validate() judges feasibility only; the status carries the convergence verdict.
    from gaplab.models.registry import get_model, run_heuristic

    spec = get_model("traffic")
    outcome = run_heuristic(spec, symmetric_instance(), "symmetric", "pricing-fixed")
    assert outcome.valid
    assert outcome.solution.status == "cycle"
    assert outcome.solution.to_json()["status"] == "cycle"


def test_cycle_warning_logged_once_per_instance(caplog: pytest.LogCaptureFixture) -> None:
    inst = dataclasses.replace(symmetric_instance(), name="warn-once")
    with caplog.at_level(logging.INFO, logger="gaplab.sim.traffic_pricing"):
        for _ in range(3):
            run_pricing(inst)
    levels = [r.levelno for r in caplog.records if "cycling" in r.getMessage()]
    assert levels == [logging.WARNING, logging.INFO, logging.INFO]


def test_default_pricing_converges_on_generated_instances() -> None:
    from gaplab.heuristics.traffic import pricing

    for seed, size, load in ((1, (40, 8), 0.5), (2, (3, 4), 0.8)):
        allocation = pricing(generate(seed, size, load=load))
        assert allocation.status == "converged", allocation.info["message"]


@pytest.mark.parametrize(
    "name",
    [
        "repetita_Abilene.graph",
        "repetita_AttMpls.graph",
        "repetita_Geant2012.graph",
        "topologyzoo_Abilene.graphml",
        "topologyzoo_Geant2012.graphml",
    ],
)
def test_default_pricing_converges_on_real_networks(data_dir: Path, name: str) -> None:
    from gaplab.heuristics.traffic import pricing
    from gaplab.models.traffic import import_network, solve_direct

    inst = import_network(require_data_file(data_dir, f"network/{name}"))
    allocation = pricing(inst)
    assert allocation.status == "converged", allocation.info["message"]
    _, best = solve_direct(inst)
    assert best is not None
    optimum = objective(inst, best.flows)
    assert objective(inst, allocation.flows) == pytest.approx(optimum, rel=1e-7)
