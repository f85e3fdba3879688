"""The direct HiGHS backend: standard instances, limits, infeasibility, results by label."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gaplab.experiments.gap import build_gap, generate_gap
from gaplab.experiments.milp_files import KNOWN_OPTIMA
from gaplab.modeling import Model, read_model
from gaplab.modeling.fileio import ModelFileError
from gaplab.solvers import (
    SolutionStatus,
    SolveError,
    SolveOptions,
    Termination,
    UnknownBackendError,
    get_backend,
    solve,
)
from tests.conftest import require_data_file


@pytest.mark.parametrize("name", sorted(KNOWN_OPTIMA))
def test_mps_file_reaches_published_optimum(data_dir, name):
    path = require_data_file(data_dir, f"milp/{name}.mps")
    result = solve(read_model(path), "highs", time_limit=60)
    assert result.termination == Termination.OPTIMAL
    assert result.solution_status == SolutionStatus.FEASIBLE_POINT
    assert result.objective == pytest.approx(KNOWN_OPTIMA[name], rel=1e-6, abs=1e-6)
    assert result.max_violation is not None
    assert result.max_violation < 1e-5


def test_every_milp_file_has_a_known_optimum(data_dir):
    files = sorted(p.stem for p in (data_dir / "milp").glob("*.mps"))
    assert files == sorted(KNOWN_OPTIMA)


def test_time_limit_never_reports_optimal():
    data = generate_gap(400, 20, seed=3, slack=1.05)
    result = build_gap(data).solve("highs", time_limit=0.3)
    assert result.termination == Termination.TIME_LIMIT
    if result.x is None:
        assert result.solution_status == SolutionStatus.NO_SOLUTION
        assert result.value("x") is None
        assert result.objective is None
    else:
        assert result.solution_status == SolutionStatus.FEASIBLE_POINT
        assert result.gap is not None
        assert result.gap > 0
        assert result.bound is not None
    assert not result.is_optimal
    with pytest.raises(SolveError) as raised:
        result.raise_for_status()
    assert raised.value.result is result


def test_values_and_duals_come_back_by_label():
    m = Model("diet")
    food = m.index("food", ["bread", "milk"])
    nutrient = m.index("nutrient", ["energy", "protein"])
    amount = m.continuous("amount", food)
    content = np.array([[4.0, 1.0], [2.0, 3.0]])  # food x nutrient
    need = np.array([8.0, 6.0])
    m.subject_to("needs", (amount.expand(nutrient) * content).sum("food") >= need)
    m.minimize((amount * np.array([2.0, 3.0])).sum())
    result = m.solve()
    amounts = result.value(amount)
    assert list(amounts.index) == ["bread", "milk"]
    assert amounts.sum() > 0
    duals = result.dual("needs")
    assert list(duals.index) == ["energy", "protein"]

    # Each dual is the change of the optimum per unit increase of the requirement.
    for k, label in enumerate(["energy", "protein"]):
        bumped = Model("diet")
        f = bumped.index("food", ["bread", "milk"])
        bumped.index("nutrient", ["energy", "protein"])
        a = bumped.continuous("amount", f)
        more = need.copy()
        more[k] += 1e-3
        rows = []
        for j in range(2):
            rows.append((a * content[:, j]).sum() >= more[j])
        bumped.subject_to("energy", rows[0])
        bumped.subject_to("protein", rows[1])
        bumped.minimize((a * np.array([2.0, 3.0])).sum())
        slope = (bumped.solve().objective - result.objective) / 1e-3
        assert duals[label] == pytest.approx(slope, rel=1e-4, abs=1e-6)


def test_infeasible_model_reports_irreducible_subset():
    m = Model("clash")
    job = m.index("job", ["a", "b", "c"])
    x = m.continuous("x", job, upper=1.0)
    m.subject_to("demand", x.sum() >= 5)
    m.subject_to("loose", x.sel(job="a") <= 10)
    m.minimize(x.sum())
    result = m.solve()
    assert result.termination == Termination.INFEASIBLE
    assert result.solution_status == SolutionStatus.NO_SOLUTION
    assert result.value(x) is None
    assert result.iis is not None
    assert "demand" in result.iis
    assert "loose" not in result.iis
    assert sorted(result.iis["bounds of x"]) == ["a", "b", "c"]


def test_irreducible_subset_spans_several_rows():
    m = Model("clash")
    job = m.index("job", ["a", "b", "c"])
    x = m.continuous("x", job, upper=1.0)
    m.subject_to("cap", x.sum() <= 1)
    m.subject_to("need", x >= [0.6, 0.6, 0.0])
    m.minimize(x.sum())
    result = m.solve()
    assert result.termination == Termination.INFEASIBLE
    assert result.iis is not None
    assert result.iis["cap"] == [None]
    assert sorted(result.iis["need"]) == ["a", "b"]
    assert result.iis.get("bounds of x") == ["c"]


def test_unbounded_model_is_reported():
    m = Model("open")
    x = m.continuous("x")
    m.maximize(x)
    result = m.solve()
    assert result.termination in (Termination.UNBOUNDED, Termination.INFEASIBLE_OR_UNBOUNDED)
    assert not result.is_optimal
    assert result.value(x) is None
    assert result.objective is None


def test_linear_plus_convex_objective():
    from gaplab.modeling import square

    m = Model("fit")
    x = m.continuous("x", lower=-10.0)
    m.minimize(-4.0 * x + square(x))  # the linear part may come first
    result = m.solve("highs", convex_tolerance=1e-8)
    assert result.value(x) == pytest.approx(2.0, abs=1e-3)
    assert result.objective == pytest.approx(-4.0, abs=1e-6)


def test_infeasibility_of_model_without_blocks():
    import scipy.sparse as sp

    from gaplab.modeling import CompiledModel

    bare = CompiledModel(
        name="bare",
        sense="min",
        A=sp.csr_matrix(np.array([[1.0, 1.0]])),
        row_lower=np.array([5.0]),
        row_upper=np.array([np.inf]),
        col_lower=np.zeros(2),
        col_upper=np.ones(2),
        integrality=np.zeros(2, dtype=np.int8),
        objective=np.ones(2),
    )
    result = solve(bare, "highs")
    assert result.termination == Termination.INFEASIBLE
    assert result.iis is not None
    assert result.iis["rows"] == [0]


def test_result_repr_and_html_are_readable():
    m = Model("tiny")
    x = m.integer("x", upper=3)
    m.maximize(x * 2)
    result = m.solve()
    text = repr(result)
    assert "termination      optimal" in text
    assert "objective        6" in text
    assert "<table>" in result._repr_html_()
    assert result.value(x) == 3.0
    assert result.to_dict()["termination"] == "optimal"


def test_bad_options_and_backend_names_raise():
    with pytest.raises(ValueError, match="time_limit must be a positive number"):
        SolveOptions(time_limit=-1)
    with pytest.raises(ValueError, match="threads"):
        SolveOptions(threads=0)
    with pytest.raises(UnknownBackendError, match="unknown backend 'gurobi-direct'"):
        get_backend("gurobi-direct")
    with pytest.raises(UnknownBackendError, match="takes no solver name"):
        get_backend("highs:ipm")


def test_unknown_solver_option_is_an_error_result():
    m = Model("opt")
    x = m.continuous("x", upper=1)
    m.maximize(x)
    result = m.solve(solver_options={"no_such_option": 1})
    assert result.termination == Termination.ERROR
    assert "no_such_option" in result.message
    assert result.value(x) is None


def test_missing_and_malformed_model_files_raise(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        read_model(tmp_path / "absent.mps")
    broken = tmp_path / "broken.mps"
    broken.write_text("NAME broken\nROWS\n Q  what\nCOLUMNS\n x what 1 2 3 4\n")
    with pytest.raises(ModelFileError, match="could not read"):
        read_model(broken)
    with pytest.raises(ModelFileError, match="expected a name ending in .mps or .lp"):
        read_model(tmp_path / "model.txt")


def test_empty_model_solves_to_its_constant():
    m = Model("empty")
    m.minimize(4.5)
    result = m.solve()
    assert result.termination == Termination.OPTIMAL
    assert math.isclose(result.objective, 4.5)


def test_warm_start_is_accepted_and_checked():
    data = generate_gap(40, 5, seed=1)
    compiled = build_gap(data).compile()
    assignment = np.zeros((40, 5))
    assignment[np.arange(40), np.argmin(data.cost, axis=1)] = 1.0
    start = compiled.column_vector({"x": assignment.ravel()})
    assert start.shape == (compiled.num_cols,)
    result = solve(compiled, "highs", warm_start=start, time_limit=30)
    assert result.termination == Termination.OPTIMAL
    with pytest.raises(ValueError, match="finite"):
        SolveOptions(warm_start=np.array([np.nan]))
    wrong = solve(compiled, "highs", warm_start=np.zeros(3))
    assert wrong.termination == Termination.ERROR
    assert "warm_start has 3 values" in wrong.message
