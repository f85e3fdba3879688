"""The pyomo, PuLP and cvxpy backends against direct HiGHS and against published optima."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.typing import ArrayLike

from gaplab.modeling import Block, CompiledModel, Model, read_model
from gaplab.solvers import (
    Backend,
    Capability,
    Result,
    SolutionStatus,
    SolveOptions,
    Termination,
    UnknownBackendError,
    UnsupportedModelError,
    get_backend,
    solve,
)
from gaplab.solvers.base import Availability
from tests.conftest import require_data_file

# Published optimal objective values of these Netlib and MIPLIB 3 instances, as also listed
# in HiGHS' regression instances.
OPTIMA = {
    "afiro.mps": -464.7531429,
    "adlittle.mps": 225494.9632,
    "small_mip.mps": 3.236842105,
    "flugpl.mps": 1201500.0,
    "egout.mps": 568.1007,
    "lseu.mps": 1120.0,
    "gt2.mps": 21166.0,
    "rgn.mps": 82.2,
    "bell5.mps": 8966406.49,
    "p0548.mps": 8691.0,
    "sp150x300d.mps": 69.0,
    "enigma.mps": 0.0,
}
# CBC through PuLP takes 5 to 40 s on these, too long for the test suite.
SLOW_FOR_CBC = {"bell5.mps", "rgn.mps", "sp150x300d.mps"}
HIGHS_BASED = ["pulp:highs", "pyomo:highs", "cvxpy:HIGHS"]
MILP_BACKENDS = [
    "highs",
    "pulp:cbc",
    "pulp:highs",
    "pyomo:highs",
    "pyomo:appsi_highs",
    "pyomo:scip",
    "pyomo:cbc",
    "cvxpy:HIGHS",
    "cvxpy:SCIP",
]
TIME_LIMIT = 0.5
"""Wall seconds given to the market split instances, which no solver here finishes in them."""
LP_ONLY_BACKENDS = ["cvxpy:CLARABEL", "cvxpy:SCS"]
DUAL_BACKENDS = [
    "pulp:cbc",
    "pulp:highs",
    "pyomo:highs",
    "pyomo:appsi_highs",
    "pyomo:cbc",
    "cvxpy:HIGHS",
    "cvxpy:CLARABEL",
]


def available(name: str) -> Backend:
    backend = get_backend(name)
    state = backend.check_available()
    if not state.available:
        pytest.skip(f"{name} is not installed here: {state.detail}")
    return backend


def installed(names: list[str]) -> list[Backend]:
    """Return the backends among ``names`` that are installed here, so a loop skips the rest."""
    backends = [get_backend(name) for name in names]
    found = [b for b in backends if b.check_available().available]
    if not found:
        pytest.skip(f"none of {names} is installed here")
    return found


def relative_error(value: float | None, expected: float) -> float:
    assert value is not None
    return abs(value - expected) / max(1.0, abs(expected))


def arrays_model(
    A: np.ndarray,
    row_lower: ArrayLike,
    row_upper: ArrayLike,
    objective: ArrayLike,
    *,
    integer: np.ndarray | None = None,
    col_upper: np.ndarray | None = None,
    sense: str = "min",
    name: str = "arrays",
) -> CompiledModel:
    n = A.shape[1]
    rows = A.shape[0]
    return CompiledModel(
        name=name,
        variables=(Block("x", 0, n, pd.RangeIndex(n)),),
        constraints=(Block("row", 0, rows, pd.RangeIndex(rows), "linear"),),
        sense=sense,
        A=sp.csr_matrix(A),
        row_lower=np.asarray(row_lower, dtype=float),
        row_upper=np.asarray(row_upper, dtype=float),
        col_lower=np.zeros(n),
        col_upper=np.full(n, np.inf) if col_upper is None else col_upper,
        integrality=np.zeros(n, dtype=np.int8) if integer is None else integer.astype(np.int8),
        objective=np.asarray(objective, dtype=float),
    )


def market_split(*, slack: bool, rows: int = 4, cols: int = 30) -> CompiledModel:
    """A market split instance (Cornuejols and Dawande): tiny, and hard for branch and bound.

    Without slack columns, none of the solvers here finds a feasible point within a second.
    With them, the zero point is feasible at once, but proving optimality takes far longer.
    """
    rng = np.random.default_rng(1)
    a = rng.integers(0, 100, size=(rows, cols)).astype(float)
    target = np.floor(a.sum(axis=1) / 2)
    if slack:
        A = np.hstack([a, np.eye(rows), -np.eye(rows)])
        objective = np.r_[np.zeros(cols), np.ones(2 * rows)]
    else:
        A = a
        objective = np.ones(cols)
    n = A.shape[1]
    integer = np.r_[np.ones(cols), np.zeros(n - cols)]
    upper = np.r_[np.ones(cols), np.full(n - cols, np.inf)]
    return arrays_model(
        A, target, target, objective, integer=integer, col_upper=upper, name="market-split"
    )


def tiny_lp(sense: str) -> CompiledModel:
    m = Model(f"tiny-{sense}")
    item = m.index("item", ["a", "b"])
    x = m.continuous("x", item, upper=10)
    m.subject_to("capacity", (x * [1, 2]).sum() <= 8)
    m.subject_to("demand", x.sum() >= 3)
    m.subject_to("balance", (x * [1, -1]).sum().between(-1, 1))
    objective = (x * [1, 3]).sum() + 5
    if sense == "min":
        m.minimize(objective)
    else:
        m.maximize(objective)
    return m.compile()


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "valid"),
    [("pulp:gurobi", "cbc, highs"), ("pyomo:nosuch", "appsi_highs"), ("cvxpy:MOSEK", "CLARABEL")],
)
def test_unknown_solver_lists_valid_ones(name: str, valid: str) -> None:
    with pytest.raises(UnknownBackendError) as error:
        get_backend(name)
    assert name.split(":")[1] in str(error.value)
    assert valid in str(error.value)


def test_every_backend_reports_version_and_log() -> None:
    model = tiny_lp("min")
    for backend in installed(
        ["pulp:cbc", "pulp:highs", "pyomo:highs", "pyomo:appsi_highs", "cvxpy:CLARABEL"]
    ):
        name = backend.name
        result = backend.solve(model)
        assert result.termination == Termination.OPTIMAL, name
        assert result.solver_version, name
        assert result.raw_status, name
        assert result.log_tail.strip(), name
        assert result.value("x") is not None, name


# ---------------------------------------------------------------- cross-check on MPS files


@pytest.mark.parametrize("file_name", sorted(OPTIMA))
def test_mps_optimum_matches_across_backends(data_dir: Path, file_name: str) -> None:
    model = read_model(require_data_file(data_dir, f"milp/{file_name}"))
    names = ["highs", *HIGHS_BASED]
    if file_name not in SLOW_FOR_CBC:
        names.append("pulp:cbc")
    checked = 0
    for backend in installed(names):
        name = backend.name
        result = backend.solve(model, SolveOptions(mip_rel_gap=1e-9, time_limit=60))
        assert result.termination == Termination.OPTIMAL, f"{name}: {result.raw_status}"
        assert result.solution_status == SolutionStatus.FEASIBLE_POINT, name
        assert relative_error(result.objective, OPTIMA[file_name]) < 1e-6, name
        checked += 1
    assert checked >= 3


def one_sided_derivatives(model: CompiledModel, row: int, step: float) -> tuple[float, float]:
    """Change of the HiGHS optimum per unit of the row's active bound, moved down and up."""
    base = solve(model, "highs").objective
    assert base is not None
    slopes = []
    for delta in (-step, step):
        lower, upper = model.row_lower.copy(), model.row_upper.copy()
        if np.isfinite(lower[row]):
            lower[row] += delta
        if np.isfinite(upper[row]):
            upper[row] += delta
        moved = solve(dataclasses.replace(model, row_lower=lower, row_upper=upper), "highs")
        slopes.append(np.nan if moved.objective is None else (moved.objective - base) / delta)
    return slopes[0], slopes[1]


@pytest.mark.parametrize("file_name", ["afiro.mps", "adlittle.mps"])
def test_lp_duals_agree_where_unique(data_dir: Path, file_name: str) -> None:
    model = read_model(require_data_file(data_dir, f"milp/{file_name}"))
    unique = []
    for row in range(model.num_rows):
        left, right = one_sided_derivatives(model, row, 1e-4)
        if (
            np.isfinite(left)
            and np.isfinite(right)
            and abs(left - right) <= 1e-6 * max(1, abs(left))
        ):
            unique.append(row)
    assert len(unique) > model.num_rows // 2
    reference = solve(model, "highs").row_duals
    assert reference is not None
    for backend in installed(DUAL_BACKENDS):
        name = backend.name
        result = backend.solve(model)
        assert result.row_duals is not None, name
        difference = np.abs(result.row_duals[unique] - reference[unique])
        scale = np.maximum(1.0, np.abs(reference[unique]))
        # Clarabel is an interior-point method and stops at a relative accuracy near 1e-8.
        tolerance = 1e-4 if name == "cvxpy:CLARABEL" else 1e-5
        assert np.max(difference / scale) < tolerance, name


@pytest.mark.parametrize("sense", ["min", "max"])
def test_duals_follow_highs_sign(sense: str) -> None:
    model = tiny_lp(sense)
    reference = solve(model, "highs")
    assert reference.row_duals is not None and reference.objective is not None
    for backend in installed([*DUAL_BACKENDS, "cvxpy:SCS"]):
        name = backend.name
        result = backend.solve(model)
        assert result.row_duals is not None, name
        np.testing.assert_allclose(result.row_duals, reference.row_duals, atol=1e-4, err_msg=name)
        assert relative_error(result.objective, reference.objective) < 1e-6, name


# ---------------------------------------------------------------- statuses


def infeasible_model(integer: bool) -> CompiledModel:
    flags = np.ones(2) if integer else None
    return arrays_model(
        np.ones((1, 2)), [25.0], [np.inf], [1.0, 1.0], integer=flags, col_upper=np.full(2, 10.0)
    )


def unbounded_model(integer: bool) -> CompiledModel:
    flags = np.ones(2) if integer else None
    return arrays_model(
        np.array([[1.0, -1.0]]), [-np.inf], [3.0], [1.0, 1.0], integer=flags, sense="max"
    )


@pytest.mark.parametrize("integer", [False, True])
def test_infeasible_same_everywhere(integer: bool) -> None:
    names = MILP_BACKENDS + ([] if integer else LP_ONLY_BACKENDS)
    for backend in installed(names):
        name = backend.name
        result = backend.solve(infeasible_model(integer))
        assert result.termination == Termination.INFEASIBLE, name
        assert result.solution_status == SolutionStatus.NO_SOLUTION, name
        assert result.x is None, name


def test_unbounded_lp_same_everywhere() -> None:
    for backend in installed(MILP_BACKENDS + LP_ONLY_BACKENDS):
        name = backend.name
        result = backend.solve(unbounded_model(False))
        assert result.termination == Termination.UNBOUNDED, name


def test_unbounded_milp_detected_everywhere() -> None:
    # Branch and bound proves only that the relaxation is unbounded, and HiGHS reports just that.
    detected = {Termination.UNBOUNDED, Termination.INFEASIBLE_OR_UNBOUNDED}
    for backend in installed(MILP_BACKENDS):
        name = backend.name
        result = backend.solve(unbounded_model(True))
        assert result.termination in detected, name
        assert result.x is None or name == "highs", name


@pytest.mark.parametrize("sense", ["min", "max"])
def test_time_limit_with_incumbent(sense: str) -> None:
    model = market_split(slack=True)
    if sense == "max":
        model = dataclasses.replace(model, sense="max", objective=-model.objective, offset=7.0)
    for backend in installed(MILP_BACKENDS):
        name = backend.name
        result = backend.solve(model, SolveOptions(time_limit=TIME_LIMIT))
        assert result.termination == Termination.TIME_LIMIT, f"{name}: {result.raw_status}"
        assert result.solution_status == SolutionStatus.FEASIBLE_POINT, name
        assert result.objective is not None, name
        assert not result.is_optimal, name
        if result.bound is None:
            continue
        # Slacks are nonnegative, so every bound lies between the incumbent and 0 slack: the
        # objective 0 when minimizing, and the offset 7 when maximizing.
        if sense == "min":
            assert result.bound >= -1e-6, name
            assert result.bound <= result.objective + 1e-6, name
        else:
            assert result.bound <= 7.0 + 1e-6, name
            assert result.bound >= result.objective - 1e-6, name


def test_time_limit_without_incumbent() -> None:
    model = market_split(slack=False)
    for backend in installed(MILP_BACKENDS):
        name = backend.name
        result = backend.solve(model, SolveOptions(time_limit=TIME_LIMIT))
        assert result.termination == Termination.TIME_LIMIT, f"{name}: {result.raw_status}"
        assert result.solution_status == SolutionStatus.NO_SOLUTION, name
        assert result.x is None, name
        assert result.objective is None, name
        assert result.value("x") is None, name


# ---------------------------------------------------------------- contract checks


class LyingBackend(Backend):
    """Claims optimality for a point that breaks the first row."""

    family = "lying"
    capabilities = frozenset({Capability.LP, Capability.MILP})

    def check_available(self) -> Availability:
        return Availability(True, "test double")

    def _solve(self, model: CompiledModel, options: SolveOptions) -> Result:
        return Result(
            model_name=model.name,
            backend=self.name,
            termination=Termination.OPTIMAL,
            solution_status=SolutionStatus.FEASIBLE_POINT,
            x=np.zeros(model.num_cols),
        )


class CrashingBackend(LyingBackend):
    family = "crashing"

    def _solve(self, model: CompiledModel, options: SolveOptions) -> Result:
        raise RuntimeError("segfault simulated in the solver library")


def test_violating_point_is_caught() -> None:
    result = LyingBackend().solve(infeasible_model(False))
    assert result.solution_status == SolutionStatus.INFEASIBLE_POINT
    assert result.max_violation == pytest.approx(25.0)


def test_solver_fault_is_contained() -> None:
    result = CrashingBackend().solve(tiny_lp("min"))
    assert result.termination == Termination.ERROR
    assert "segfault simulated" in result.message
    assert result.x is None


@pytest.mark.parametrize("name", LP_ONLY_BACKENDS)
def test_milp_rejected_by_continuous_solver(name: str) -> None:
    with pytest.raises(UnsupportedModelError) as error:
        available(name).solve(infeasible_model(True))
    assert "milp" in str(error.value)
    assert "cvxpy:HIGHS" in str(error.value)


@pytest.mark.parametrize(
    "name",
    ["pulp:cbc", "pulp:highs", "pyomo:highs", "pyomo:appsi_highs", "pyomo:cbc", "cvxpy:HIGHS"],
)
def test_unknown_solver_option_is_error(name: str) -> None:
    options = SolveOptions(solver_options={"no_such_option": 1})
    result = available(name).solve(tiny_lp("min"), options)
    assert result.termination == Termination.ERROR
    assert "no_such_option" in result.message
    assert result.x is None
