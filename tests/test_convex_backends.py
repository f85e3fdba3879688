"""Separable convex terms: native in cvxpy, tangent cuts on the LP and MILP backends."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from gaplab.modeling import CompiledModel, ConvexTerm, Model, exp, mm1, piecewise, power, square
from gaplab.solvers import (
    Result,
    SolveOptions,
    Termination,
    UnsupportedModelError,
    get_backend,
)
from gaplab.solvers._convex_domain import ConvexDomainError

CAPACITY = np.array([3.0, 5.0, 8.0])
"""Service rates of three parallel M/M/1 queues, jobs per second."""
ARRIVALS = 10.0
"""Total arrival rate split over the queues, jobs per second."""
TANGENT_BACKENDS = ["highs", "pulp:cbc", "pulp:highs", "pyomo:highs", "cvxpy:HIGHS"]


def solve_with(name: str, model: CompiledModel, **options: Any) -> Result:
    backend = get_backend(name)
    state = backend.check_available()
    if not state.available:
        pytest.skip(f"{name} is not installed here: {state.detail}")
    return backend.solve(model, SolveOptions(**options))


def queue_split(integer: bool = False) -> CompiledModel:
    m = Model("queue-split")
    queue = m.index("queue", range(CAPACITY.size))
    rate = (m.integer if integer else m.continuous)("rate", queue)
    m.subject_to("all_arrivals", rate.sum() == ARRIVALS)
    m.minimize(mm1(rate, CAPACITY))
    return m.compile()


def queue_split_optimum() -> tuple[float, np.ndarray]:
    """Minimum of sum x_i / (c_i - x_i) with sum x_i = lambda.

    Setting the derivatives c_i / (c_i - x_i)^2 equal gives c_i - x_i proportional to
    sqrt(c_i), so x_i = c_i - sqrt(c_i) * (sum c - lambda) / sum sqrt(c). The formula holds
    when every x_i comes out positive, as it does for these rates.
    """
    spare = (CAPACITY.sum() - ARRIVALS) / np.sqrt(CAPACITY).sum()
    rates = CAPACITY - np.sqrt(CAPACITY) * spare
    return float(np.sum(rates / (CAPACITY - rates))), rates


def test_queue_split_exact_through_cvxpy() -> None:
    optimum, rates = queue_split_optimum()
    result = solve_with("cvxpy:CLARABEL", queue_split())
    assert result.termination == Termination.OPTIMAL
    assert result.objective == pytest.approx(optimum, rel=1e-6)
    values = result.value("rate")
    assert isinstance(values, pd.Series)
    np.testing.assert_allclose(values.to_numpy(), rates, rtol=1e-4)
    assert result.approximation_gap is None


@pytest.mark.parametrize("name", TANGENT_BACKENDS)
def test_queue_split_within_gap_through_cuts(name: str) -> None:
    optimum, _ = queue_split_optimum()
    tolerance = 1e-6
    result = solve_with(name, queue_split(), convex_tolerance=tolerance)
    assert result.termination == Termination.OPTIMAL, result.message
    assert result.bound is not None
    assert result.objective is not None
    assert result.bound <= optimum + 1e-9
    assert result.objective >= optimum - 1e-9
    assert result.approximation_gap is not None
    assert result.approximation_gap <= tolerance * max(1.0, abs(result.objective)) * 1.0001
    assert result.objective == pytest.approx(optimum, rel=tolerance)
    assert "tangent cuts" in result.log_tail


def test_queue_split_dual_is_marginal_delay() -> None:
    # At the optimum every queue has the same marginal number in system c / (c - x)^2, which
    # is the dual of the row that splits the arrivals.
    _, rates = queue_split_optimum()
    marginal = float(CAPACITY[0] / (CAPACITY[0] - rates[0]) ** 2)
    native = solve_with("cvxpy:CLARABEL", queue_split())
    cuts = solve_with("highs", queue_split())
    assert native.dual("all_arrivals") == pytest.approx(marginal, rel=1e-4)
    assert cuts.dual("all_arrivals") == pytest.approx(marginal, rel=1e-3)


def test_looser_tolerance_needs_fewer_cuts() -> None:
    loose = solve_with("highs", queue_split(), convex_tolerance=1e-2)
    tight = solve_with("highs", queue_split(), convex_tolerance=1e-8)
    assert loose.approximation_gap is not None and loose.objective is not None
    assert tight.approximation_gap is not None and tight.objective is not None
    assert loose.approximation_gap <= 1e-2 * loose.objective
    assert tight.approximation_gap <= 1e-8 * tight.objective
    assert cut_count(loose) < cut_count(tight)


def cut_count(result: Result) -> int:
    last_line = result.log_tail.splitlines()[-1]
    return int(last_line.split(",")[1].split()[0])


@pytest.mark.parametrize("name", ["highs", "pulp:cbc"])
def test_integer_queue_split(name: str) -> None:
    best = min(
        sum(x / (c - x) for x, c in zip(split, CAPACITY, strict=True))
        for split in itertools.product(range(8), repeat=3)
        if sum(split) == ARRIVALS and all(x < c for x, c in zip(split, CAPACITY, strict=True))
    )
    result = solve_with(name, queue_split(integer=True), convex_tolerance=1e-7)
    assert result.termination == Termination.OPTIMAL, result.message
    assert result.objective == pytest.approx(best, rel=1e-7)


def every_kind(kind: str, sense: str) -> CompiledModel:
    m = Model(f"{kind}-{sense}")
    item = m.index("item", range(3))
    lower = -5.0 if kind in ("square", "exp") else 0.0
    x = m.continuous("x", item, lower=lower, upper=10)
    m.subject_to("total", x.sum() == 7)
    linear = (x * [1.0, -2.0, 0.5]).sum()
    if kind == "square":
        term = square(x - 1, [1, 2, 3])
    elif kind == "exp":
        term = exp(x * 0.5, [1, 1, 2])
    elif kind == "power":
        term = power(x, 1.5, [1, 2, 3])
    elif kind == "pwl":
        term = piecewise(x, [0, 1, 3], [0, -1, -5])
    else:
        term = mm1(x, [4, 5, 6])
    if sense == "min":
        m.minimize(term + linear)
    else:
        m.maximize(-term + linear)
    return m.compile()


@pytest.mark.parametrize("sense", ["min", "max"])
@pytest.mark.parametrize("kind", ["square", "exp", "power", "pwl", "mm1"])
def test_every_kind_agrees_native_and_cuts(kind: str, sense: str) -> None:
    model = every_kind(kind, sense)
    native = solve_with("cvxpy:CLARABEL", model)
    assert native.termination == Termination.OPTIMAL
    assert native.objective is not None
    for name in ("highs", "pulp:cbc"):
        cuts = solve_with(name, model, convex_tolerance=1e-6)
        assert cuts.termination == Termination.OPTIMAL, f"{name}: {cuts.message}"
        assert cuts.objective is not None and cuts.bound is not None, name
        scale = max(1.0, abs(native.objective))
        assert abs(cuts.objective - native.objective) <= 2e-6 * scale, name
        # The bound of the cut model never passes the true optimum.
        if sense == "min":
            assert cuts.bound <= native.objective + 1e-6 * scale, name
        else:
            assert cuts.bound >= native.objective - 1e-6 * scale, name


def test_argument_far_from_origin_grows_box() -> None:
    m = Model("far")
    x = m.continuous("x", lower=-np.inf)
    m.minimize(square(x) + x * -1e5)
    result = solve_with("highs", m.compile())
    assert result.termination == Termination.OPTIMAL
    assert result.value("x") == pytest.approx(5e4, rel=1e-3)
    assert result.objective == pytest.approx(-2.5e9, rel=1e-6)


def test_unbounded_through_convex_term() -> None:
    m = Model("unbounded")
    x = m.continuous("x", lower=-np.inf)
    m.minimize(piecewise(x, [0, 0.5], [0, 0]) + x * -1.0)
    model = m.compile()
    for name in ("highs", "pulp:cbc", "cvxpy:CLARABEL"):
        result = solve_with(name, model)
        assert result.termination == Termination.UNBOUNDED, name
        assert result.x is None, name


def test_infeasible_through_cuts() -> None:
    m = Model("infeasible")
    x = m.continuous("x", upper=1)
    m.subject_to("too_much", x >= 2)
    m.minimize(square(x))
    result = solve_with("highs", m.compile())
    assert result.termination == Termination.INFEASIBLE
    assert result.x is None


@pytest.mark.parametrize("name", ["highs", "cvxpy:CLARABEL", "pulp:cbc"])
def test_load_above_capacity_rejected(name: str) -> None:
    m = Model("overload")
    x = m.continuous("x", lower=5, upper=8)
    m.minimize(mm1(x, 4.0))
    with pytest.raises(ConvexDomainError, match=r"outside the domain \[0, 4\)"):
        solve_with(name, m.compile())


def test_power_below_one_rejected() -> None:
    base = queue_split()
    term = ConvexTerm(
        "root",
        "power",
        sp.identity(base.num_cols, format="csr"),
        np.zeros(base.num_cols),
        np.ones(base.num_cols),
        {"exponent": np.full(base.num_cols, 0.5)},
    )
    model = CompiledModel(
        name="root",
        sense="min",
        A=base.A,
        row_lower=base.row_lower,
        row_upper=base.row_upper,
        col_lower=base.col_lower,
        col_upper=base.col_upper,
        integrality=base.integrality,
        objective=base.objective,
        variables=base.variables,
        constraints=base.constraints,
        convex=(term,),
    )
    with pytest.raises(ConvexDomainError, match="exponent of 0.5"):
        solve_with("highs", model)


def test_negative_weight_rejected() -> None:
    base = queue_split()
    term = base.convex[0]
    flipped = ConvexTerm(term.name, term.kind, term.A, term.b, -term.weight, term.params)
    model = dataclasses.replace(base, convex=(flipped,))
    for name in ("highs", "cvxpy:CLARABEL"):
        with pytest.raises(ConvexDomainError, match="not nonnegative"):
            solve_with(name, model)


def test_integer_convex_rejected_by_clarabel() -> None:
    with pytest.raises(UnsupportedModelError, match="milp"):
        solve_with("cvxpy:CLARABEL", queue_split(integer=True))


def test_cut_time_limit_keeps_point() -> None:
    result = solve_with("highs", queue_split(), convex_tolerance=1e-12, time_limit=0.05)
    assert result.termination in {
        Termination.TIME_LIMIT,
        Termination.OPTIMAL,
        Termination.NUMERICAL_ERROR,
    }
    if result.termination == Termination.TIME_LIMIT:
        assert result.objective is not None
        assert not result.is_optimal
