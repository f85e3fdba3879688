"""Baselines of the traffic model, the registered ModelSpec and its comparison report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaplab.heuristics.traffic import (
    HEURISTICS,
    access_only,
    equal_split,
    pricing_small_steps,
    proportional_split,
    server_node_loads,
    server_only,
    single_path,
)
from gaplab.models.registry import get_model, run_exact, run_heuristic
from gaplab.models.traffic import Allocation, generate, pubsub_instance, symmetric_instance
from gaplab.models.traffic.delay import mean_delay, objective, utilization
from gaplab.models.traffic.report import comparison_rows, extras
from gaplab.solvers import SolveOptions

F_STAR = 2.0157473649138


@pytest.mark.parametrize(
    ("policy", "total", "mean"),
    [
        (access_only, 2.031526, 0.033618),
        (proportional_split, 2.045126, 0.033843),
        (equal_split, 2.064015, 0.034156),
        (single_path, 3.114873, 0.051545),
    ],
)
def test_baseline_table_pinned(policy, total: float, mean: float) -> None:  # type: ignore[no-untyped-def]
    inst = pubsub_instance()
    flows = policy(inst).flows
    assert objective(inst, flows) == pytest.approx(total, abs=1e-6)
    assert mean_delay(inst, flows) == pytest.approx(mean, abs=1e-6)


def test_access_only_utilization_pinned() -> None:
    inst = pubsub_instance()
    assert np.allclose(
        utilization(inst, access_only(inst).flows), [0.1532, 0.1801, 0.0845], atol=1e-4
    )


def test_server_only_loads_unique() -> None:
    loads = server_node_loads(pubsub_instance())
    assert loads.sum() == pytest.approx(60.4296875)
    assert loads[1] == pytest.approx(0.0, abs=1e-6)
    assert loads[0] == pytest.approx(19.7676, abs=1e-3)


def test_server_only_within_its_optimal_set() -> None:
    # The server-only optimum is not unique in the split; the reference table reports one
    # split at F = 2.4367, and the least-access-delay split returned here is the lowest F.
    inst = pubsub_instance()
    total = objective(inst, server_only(inst).flows)
    assert total == pytest.approx(2.435534, abs=2e-5)
    assert total <= 2.4367
    loads = server_node_loads(inst)
    node_proportional = np.outer(inst.rates, loads / loads.sum())
    assert objective(inst, node_proportional) >= 2.4367


def test_baseline_order_on_pubsub() -> None:
    inst = pubsub_instance()
    values = [
        objective(inst, policy(inst).flows)
        for policy in (access_only, proportional_split, equal_split, server_only, single_path)
    ]
    assert values[0] > F_STAR
    assert values == sorted(values)


def test_every_heuristic_is_valid_on_pubsub() -> None:
    spec = get_model("traffic")
    inst = pubsub_instance()
    for name in spec.heuristics:
        outcome = run_heuristic(spec, inst, "pubsub", name)
        assert outcome.valid, (name, outcome.violations)
        assert outcome.objective is not None
        assert outcome.objective >= F_STAR * (1 - 1e-9)


def test_small_steps_reach_symmetric_optimum() -> None:
    allocation = pricing_small_steps(symmetric_instance())
    assert allocation.info["status"] == "converged"
    assert np.allclose(allocation.flows, 3.0, atol=1e-6)


def test_spec_registered_with_variants() -> None:
    spec = get_model("traffic")
    assert set(spec.exact) == {"convex", "cvxpy", "direct"}
    assert spec.exact_default == "convex"
    assert set(spec.heuristics) == set(HEURISTICS)
    assert spec.sense == "min"


@pytest.mark.parametrize("variant", ["direct", "cvxpy", "convex"])
def test_exact_variants_validate(variant: str) -> None:
    spec = get_model("traffic")
    outcome = run_exact(
        spec, pubsub_instance(), "pubsub", variant, "highs", SolveOptions(time_limit=30)
    )
    assert outcome.valid, outcome.violations
    tolerance = 1e-8 if variant != "convex" else 1e-5
    assert outcome.objective == pytest.approx(F_STAR, rel=tolerance)


@pytest.mark.parametrize(
    ("backend", "ran", "tolerance"),
    [
        ("highs", "highs", 1e-5),
        ("cvxpy:CLARABEL", "cvxpy:CLARABEL", 1e-8),
        ("pulp:cbc", "pulp:cbc", 1e-5),
    ],
)
def test_default_variant_uses_the_backend(backend: str, ran: str, tolerance: float) -> None:
    spec = get_model("traffic")
    outcome = run_exact(
        spec, pubsub_instance(), "pubsub", spec.exact_default, backend, SolveOptions(time_limit=30)
    )
    assert outcome.result is not None
    assert outcome.result.backend == ran
    assert outcome.valid, outcome.violations
    assert outcome.objective == pytest.approx(F_STAR, rel=tolerance)
    # LP backends reach the convex terms through tangent cuts and say how far off they may be.
    if not backend.startswith("cvxpy"):
        assert outcome.result.approximation_gap is not None


@pytest.mark.parametrize(
    ("variant", "ran"), [("cvxpy", "cvxpy:CLARABEL"), ("direct", "cvxpy-direct")]
)
def test_cross_check_variants_name_the_backend_that_ran(variant: str, ran: str) -> None:
    spec = get_model("traffic")
    outcome = run_exact(spec, pubsub_instance(), "pubsub", variant, "pulp:cbc", SolveOptions())
    assert outcome.result is not None
    assert outcome.result.backend.startswith(ran)


def test_validate_reports_each_violation() -> None:
    spec = get_model("traffic")
    inst = pubsub_instance()
    flows = equal_split(inst).flows.copy()
    flows[0, 0] += 1.0
    flows[1, 1] = -0.5
    flows[2, 0] = 60.0
    problems = spec.validate(inst, Allocation(flows))
    text = "\n".join(problems)
    assert "conservation: source 'P0'" in text
    assert "nonnegativity" in text
    assert "access capacity" in text
    assert spec.validate(inst, Allocation(np.zeros((2, 2)))) == [
        "flows have shape (2, 2), expected (5, 3) (sources x nodes)"
    ]


def test_validate_rejects_flow_on_missing_path() -> None:
    inst = generate(3, (10, 4), link_probability=0.4)
    flows = equal_split(inst).flows.copy()
    i, j = np.argwhere(~inst.links)[0]
    flows[i, j] = 0.1
    assert any("missing path" in p for p in get_model("traffic").validate(inst, flows))


def test_comparison_rows_against_optimum() -> None:
    rows = comparison_rows(pubsub_instance(), quick=True)
    by_method = {row["method"]: row for row in rows}
    assert by_method["optimum"]["total_delay"] == pytest.approx(F_STAR, rel=1e-9)
    assert by_method["equal-split"]["excess_percent"] == pytest.approx(
        100 * (2.064015 / F_STAR - 1), abs=1e-3
    )
    assert by_method["optimum"]["node_utilization"] == "0.1581 0.1386 0.1030"


def test_extras_writes_convergence_plot(tmp_path: Path) -> None:
    rows = extras(pubsub_instance(), tmp_path, quick=True)
    png = tmp_path / "traffic-pubsub-5x3-convergence.png"
    assert png.is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pricing = next(row for row in rows if row["method"] == "pricing")
    assert pricing["status"] == "converged"


def test_extras_without_folder_writes_nothing(tmp_path: Path) -> None:
    extras(pubsub_instance(), None, quick=True)
    assert list(tmp_path.iterdir()) == []


def test_quick_suite_is_small() -> None:
    suite = get_model("traffic").suite(True, None)
    assert [item.name for item in suite] == ["pubsub-5x3"]
    assert suite[0].source == "shipped"


def test_cvxpy_variant_bound_below_objective() -> None:
    spec = get_model("traffic")
    outcome = run_exact(spec, pubsub_instance(), "pubsub", "cvxpy", "highs", SolveOptions())
    assert outcome.bound is not None
    assert outcome.objective is not None
    assert outcome.bound <= outcome.objective
    assert outcome.bound == pytest.approx(F_STAR, rel=1e-10)
