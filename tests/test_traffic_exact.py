"""Exact solves of the traffic program: pinned optimum of the 5x3 case and KKT certificates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.models.traffic import (
    DemandDoesNotFitError,
    Instance,
    certify,
    generate,
    objective,
    pubsub_instance,
    solve_direct,
    solve_exact,
    symmetric_instance,
)
from gaplab.models.traffic.certificate import lower_bound
from gaplab.models.traffic.delay import (
    access_marginal,
    node_marginal,
    source_delay,
    utilization,
)
from gaplab.solvers import SolveOptions, get_backend
from gaplab.solvers.registry import UnknownBackendError

F_STAR = 2.0157473649138


@pytest.fixture(scope="module")
def optimum() -> np.ndarray:
    _, allocation = solve_direct(pubsub_instance())
    assert allocation is not None
    return allocation.flows


def backend_or_skip(name: str) -> str:
    try:
        backend = get_backend(name)
    except UnknownBackendError as error:
        pytest.skip(f"backend {name} is not registered yet: {error}")
    if not backend.check_available().available:
        pytest.skip(f"backend {name} is not available")
    return name


def test_direct_optimum_pinned(optimum: np.ndarray) -> None:
    assert objective(pubsub_instance(), optimum) == pytest.approx(F_STAR, rel=1e-8)


def test_direct_flows_pinned(optimum: np.ndarray) -> None:
    inst = pubsub_instance()
    expected = np.array(
        [
            [0.0, 0.0, 0.15625],
            [0.0, 0.0, 0.09765625],
            [15.175787, 4.884161, 9.998646],
            [10.245224, 9.881943, 9.882599],
            [0.0, 0.0, 0.107421875],
        ]
    )
    assert np.allclose(optimum, expected, atol=2e-6)
    loads = optimum.sum(axis=0)
    assert np.allclose(loads, [25.42101, 14.76610, 20.24257], atol=1e-5)
    assert np.allclose(utilization(inst, optimum), [0.158136, 0.138642, 0.102983], atol=1e-6)


def test_direct_prices_and_delays_pinned(optimum: np.ndarray) -> None:
    inst = pubsub_instance()
    assert np.allclose(
        node_marginal(inst, optimum.sum(axis=0)), [0.008777, 0.012655, 0.006323], atol=1e-6
    )
    assert np.allclose(
        source_delay(inst, optimum), [0.02895, 0.03048, 0.03297, 0.03380, 0.02500], atol=1e-5
    )
    assert objective(inst, optimum) / inst.total_rate == pytest.approx(0.0333569, abs=1e-7)


def test_certificate_at_optimum(optimum: np.ndarray) -> None:
    certificate = certify(pubsub_instance(), optimum, reference=F_STAR)
    assert certificate.failures() == []
    assert np.allclose(
        certificate.alpha, [0.029682, 0.031188, 0.041712, 0.041773, 0.025690], atol=1e-6
    )
    table = certificate.table()
    assert table.loc["active_stationarity", "value"] <= 1e-6
    assert table.loc["kkt_complementarity", "value"] <= 1e-8
    assert table.loc["inactive_complementarity", "value"] <= 1e-8


def test_certificate_flags_equal_split() -> None:
    inst = pubsub_instance()
    equal = np.repeat(inst.rates[:, None] / 3, 3, axis=1)
    certificate = certify(inst, equal, reference=F_STAR)
    assert "kkt_complementarity" in certificate.failures()
    assert "objective_gap" in certificate.failures()
    assert "conservation" not in certificate.failures()


def test_certificate_flags_overload() -> None:
    inst = pubsub_instance()
    overload = np.zeros((5, 3))
    overload[:, 0] = inst.rates
    overload[2, 0] = 0.0
    overload[2, 1] = 50.0  # above the access capacity 43.64 of P2 -> SN2
    residuals = certify(inst, overload).residuals
    assert residuals["conservation"] == pytest.approx(50.0 - inst.rates[2])
    assert residuals["access_capacity"] == pytest.approx(50.0 - inst.access_capacity[2, 1])
    assert residuals["fixed_point"] == float("inf")


def test_infeasible_demand_message() -> None:
    inst = Instance(
        name="cramped",
        sources=("a", "b"),
        nodes=("u", "v"),
        rates=[3.0, 3.0],
        node_capacity=[5.0, 100.0],
        access_capacity=[[10.0, 0.0], [10.0, 0.0]],
    )
    with pytest.raises(DemandDoesNotFitError, match="does not fit strictly"):
        solve_direct(inst)


def test_symmetric_oracle() -> None:
    inst = symmetric_instance(
        sources=4, nodes=3, rate=6.0, access_capacity=10.0, node_capacity=20.0
    )
    _, allocation = solve_direct(inst)
    assert allocation is not None
    assert np.allclose(allocation.flows, 2.0, atol=1e-7)
    expected = 4 * 6.0 * (1 / (10.0 - 2.0) + 1 / (20.0 - 8.0))
    assert objective(inst, allocation.flows) == pytest.approx(expected, rel=1e-9)
    alpha = 10.0 / (10.0 - 2.0) ** 2 + 20.0 / (20.0 - 8.0) ** 2
    assert np.allclose(certify(inst, allocation.flows).alpha, alpha, rtol=1e-9)


def test_sparse_paths_and_propagation() -> None:
    inst = generate(5, (15, 4), link_probability=0.5)
    delays = np.random.default_rng(0).uniform(0.0, 0.02, size=inst.access_capacity.shape)
    with_delay = Instance(
        name="delayed",
        sources=inst.sources,
        nodes=inst.nodes,
        rates=inst.rates,
        node_capacity=inst.node_capacity,
        access_capacity=inst.access_capacity,
        propagation=delays * inst.links,
    )
    _, allocation = solve_direct(with_delay)
    assert allocation is not None
    assert np.all(allocation.flows[~inst.links] == 0)
    assert certify(with_delay, allocation.flows).failures() == []
    assert objective(with_delay, allocation.flows) > objective(inst, allocation.flows)


def test_gaplab_cvxpy_backend_matches_direct(optimum: np.ndarray) -> None:
    backend = backend_or_skip("cvxpy:CLARABEL")
    result, allocation = solve_exact(pubsub_instance(), backend)
    assert allocation is not None
    assert result.termination.value in ("optimal", "locally_solved")
    assert objective(pubsub_instance(), allocation.flows) == pytest.approx(F_STAR, rel=1e-8)


def test_tangent_path_reports_gap() -> None:
    backend_or_skip("highs")
    pytest.importorskip("gaplab.solvers.tangent", reason="tangent cuts are not merged yet")
    result, allocation = solve_exact(
        pubsub_instance(), "highs", SolveOptions(convex_tolerance=1e-7)
    )
    assert allocation is not None
    assert result.approximation_gap is not None
    assert result.approximation_gap <= 1e-6 * F_STAR
    assert objective(pubsub_instance(), allocation.flows) == pytest.approx(F_STAR, rel=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), node=st.integers(0, 2), factor=st.floats(1.01, 2.0))
def test_more_node_capacity_never_hurts(seed: int, node: int, factor: float) -> None:
    inst = generate(seed, (6, 3))
    capacity = inst.node_capacity.copy()
    capacity[node] *= factor
    bigger = Instance(
        name="bigger",
        sources=inst.sources,
        nodes=inst.nodes,
        rates=inst.rates,
        node_capacity=capacity,
        access_capacity=inst.access_capacity,
    )
    _, base = solve_direct(inst)
    _, more = solve_direct(bigger)
    assert base is not None and more is not None
    assert objective(bigger, more.flows) <= objective(inst, base.flows) * (1 + 1e-9)


def test_lower_bound_brackets_optimum(optimum: np.ndarray) -> None:
    inst = pubsub_instance()
    equal = np.repeat(inst.rates[:, None] / 3, 3, axis=1)
    assert lower_bound(inst, equal) <= F_STAR <= objective(inst, equal)
    assert lower_bound(inst, optimum) == pytest.approx(F_STAR, rel=1e-12)
    result, _ = solve_direct(inst)
    assert result.gap is not None
    assert result.gap <= 1e-12


def test_marginal_costs_match_finite_differences() -> None:
    inst = generate(9, (4, 3), load=0.2)
    equal_split_flows = np.repeat(inst.rates[:, None] / 3, 3, axis=1)
    x = equal_split_flows
    assert np.isfinite(objective(inst, x))
    route = access_marginal(inst, x) + node_marginal(inst, x.sum(axis=0))[None, :]
    step = 1e-6
    for i in range(inst.num_sources):
        for j in range(inst.num_nodes):
            bumped = equal_split_flows.copy()
            bumped[i, j] += step
            lowered = equal_split_flows.copy()
            lowered[i, j] -= step
            slope = (objective(inst, bumped) - objective(inst, lowered)) / (2 * step)
            assert slope == pytest.approx(route[i, j], rel=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), factor=st.floats(0.3, 0.99))
def test_less_demand_lowers_optimum(seed: int, factor: float) -> None:
    inst = generate(seed, (6, 3))
    lighter = Instance(
        name="lighter",
        sources=inst.sources,
        nodes=inst.nodes,
        rates=inst.rates * factor,
        node_capacity=inst.node_capacity,
        access_capacity=inst.access_capacity,
    )
    _, base = solve_direct(inst)
    _, less = solve_direct(lighter)
    assert base is not None and less is not None
    assert objective(lighter, less.flows) < objective(inst, base.flows)


def test_cvxpy_result_holds_polished_point() -> None:
    backend = backend_or_skip("cvxpy:CLARABEL")
    inst = pubsub_instance()
    result, allocation = solve_exact(inst, backend)
    assert allocation is not None
    values = result.value("flow")
    assert values is not None
    assert np.array_equal(np.asarray(values).reshape(5, 3), allocation.flows)
    assert result.objective == pytest.approx(F_STAR, rel=1e-12)
    assert result.gap is not None
    assert result.gap <= 1e-12
