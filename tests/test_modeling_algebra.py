"""Expression algebra against dense numpy evaluation of the same expressions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.modeling import AlignmentError, IndexSet, LinExpr, Model, read_model


def evaluate(expr: LinExpr, x: np.ndarray) -> np.ndarray:
    """Value of every row of ``expr`` at the column vector ``x``, shaped like the expression."""
    width = expr.coef.shape[1]
    values = expr.coef @ x[:width] + expr.const
    return np.asarray(values).reshape(expr.shape)


@st.composite
def problems(draw):
    a = draw(st.integers(1, 6))
    b = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    return a, b, np.random.default_rng(seed)


def _model(a: int, b: int):
    m = Model("algebra")
    first = m.index("A", [f"a{i}" for i in range(a)])
    second = m.index("B", range(b))
    x = m.continuous("x", first, second, lower=-np.inf)
    y = m.continuous("y", first, lower=-np.inf)
    z = m.continuous("z", lower=-np.inf)
    return m, first, second, x, y, z


@settings(max_examples=60, deadline=None)
@given(problems())
def test_weighted_sum_matches_numpy(problem):
    a, b, rng = problem
    m, first, second, x, y, z = _model(a, b)
    values = rng.normal(size=m.num_cols)
    xa = values[: a * b].reshape(a, b)
    ya = values[a * b : a * b + a]
    weights = rng.normal(size=(a, b))
    scale = rng.normal(size=a)
    constant = float(rng.normal())

    expr = (x * weights).sum("B") + y * scale + constant
    expected = (xa * weights).sum(axis=1) + ya * scale + constant
    np.testing.assert_allclose(evaluate(expr, values), expected, atol=1e-12)
    assert expr.dims == ("A",)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_sums_and_scaling_match_numpy(problem):
    a, b, rng = problem
    m, first, second, x, y, z = _model(a, b)
    values = rng.normal(size=m.num_cols)
    xa = values[: a * b].reshape(a, b)
    za = values[-1]

    np.testing.assert_allclose(evaluate(x.sum("A"), values), xa.sum(axis=0), atol=1e-12)
    np.testing.assert_allclose(evaluate(x.sum(), values), xa.sum(), atol=1e-12)
    np.testing.assert_allclose(evaluate(-2.5 * x - z, values), -2.5 * xa - za, atol=1e-12)
    np.testing.assert_allclose(evaluate(x / 4.0 + 1, values), xa / 4.0 + 1, atol=1e-12)
    np.testing.assert_allclose(evaluate(3 - x, values), 3 - xa, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_broadcasting_matches_numpy(problem):
    a, b, rng = problem
    m, first, second, x, y, z = _model(a, b)
    values = rng.normal(size=m.num_cols)
    xa = values[: a * b].reshape(a, b)
    ya = values[a * b : a * b + a]

    both = x + y
    assert both.dims == ("A", "B")
    np.testing.assert_allclose(evaluate(both, values), xa + ya[:, None], atol=1e-12)
    flipped = y - x
    np.testing.assert_allclose(evaluate(flipped, values), ya[:, None] - xa, atol=1e-12)
    with pytest.raises(AlignmentError, match="neither has all the dimensions"):
        x.sum("A") + y
    swapped = x.sum("A").expand(first) + y  # dimensions B then A
    assert swapped.dims == ("B", "A")
    np.testing.assert_allclose(
        evaluate(swapped, values), xa.sum(axis=0)[:, None] + ya[None, :], atol=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(problems(), st.data())
def test_selection_matches_numpy(problem, data):
    a, b, rng = problem
    m, first, second, x, y, z = _model(a, b)
    values = rng.normal(size=m.num_cols)
    xa = values[: a * b].reshape(a, b)
    ya = values[a * b : a * b + a]

    columns = data.draw(st.lists(st.integers(0, b - 1), min_size=1, max_size=b, unique=True))
    picked = x.sel(B=columns)
    np.testing.assert_allclose(evaluate(picked, values), xa[:, columns], atol=1e-12)

    rows = data.draw(st.lists(st.integers(0, a - 1), min_size=1, max_size=8))
    arc = IndexSet("arc", range(len(rows)))
    labels = [f"a{i}" for i in rows]
    np.testing.assert_allclose(evaluate(y.at(labels, over=arc), values), ya[rows], atol=1e-12)
    np.testing.assert_allclose(
        evaluate(x.at(labels, over=arc, dim="A"), values), xa[rows, :], atol=1e-12
    )
    one = x[f"a{rows[0]}", columns[0]]
    assert one.size == 1
    assert evaluate(one, values).item() == pytest.approx(xa[rows[0], columns[0]])


@settings(max_examples=40, deadline=None)
@given(problems(), st.booleans())
def test_mps_round_trip_gives_same_model(tmp_path_factory, problem, integral):
    a, b, rng = problem
    m = Model("roundtrip")
    first = m.index("A", range(a))
    second = m.index("B", range(b))
    if integral:
        x = m.integer("x", first, second, upper=rng.integers(1, 9, size=(a, b)))
    else:
        x = m.continuous("x", first, second, upper=rng.uniform(1, 9, size=(a, b)))
    t = m.continuous("t", lower=-5.0)
    weights = np.round(rng.normal(size=(a, b)), 3)
    m.subject_to("rows", (x * weights).sum("B") <= rng.uniform(1, 5, size=a))
    m.subject_to("cols", (x.sum("A") - t).between(-3.0, 7.0))
    m.subject_to("fix", x.sum() + t == 4.0)
    m.minimize((x * np.round(rng.normal(size=(a, b)), 3)).sum() + 2 * t + 1.5)
    compiled = m.compile()

    folder = tmp_path_factory.mktemp("mps")
    path = compiled.to_mps(folder / "model.mps")
    again = read_model(path)
    assert again.equals(compiled, check_labels=False)
    assert [blk.name for blk in again.variables] == ["x", "t"]
    assert [blk.name for blk in again.constraints] == ["rows", "cols", "fix"]
    # LP files may store ranged rows differently, so compare what the two models solve to.
    lp_again = read_model(compiled.to_lp(folder / "model.lp"))
    assert lp_again.num_cols == compiled.num_cols
    original = compiled_solve(compiled)
    reread = compiled_solve(lp_again)
    assert reread.termination == original.termination
    if original.objective is not None:
        assert reread.objective == pytest.approx(original.objective, rel=1e-9, abs=1e-9)


def compiled_solve(model):
    from gaplab.solvers import solve

    return solve(model, "highs")


def test_compiled_model_pickles_and_compares():
    import pickle

    m, first, second, x, y, z = _model(3, 2)
    m.subject_to("link", x.sum("B") - y <= 1)
    m.minimize(z)
    compiled = m.compile()
    copy = pickle.loads(pickle.dumps(compiled))
    assert copy == compiled
    other = Model("algebra")
    other.index("A", ["a0", "a1", "a2"])
    assert other.compile() != compiled


def test_misaligned_sets_raise_naming_both():
    m = Model("align")
    full = m.index("tx", ["a", "b", "c"])
    x = m.continuous("x", full)
    subset = x.sel(tx=["a", "b"])
    with pytest.raises(AlignmentError, match=r"IndexSet\('tx', 2 labels.*IndexSet\('tx', 3 labels"):
        subset + x


def test_reindex_aligns_explicitly():
    m = Model("align")
    full = m.index("tx", ["a", "b", "c"])
    x = m.continuous("x", full)
    aligned = x.sel(tx=["c", "a"]).reindex(full)
    total = aligned + x
    assert total.dims == ("tx",)
    assert total.coef[1].nnz == 1  # "b" exists only on the right-hand side
    assert total.coef[0].toarray().ravel()[0] == 2.0


def test_nan_and_infinite_coefficients_raise():
    m = Model("bad")
    item = m.index("item", range(3))
    x = m.continuous("x", item)
    with pytest.raises(ValueError, match="NaN"):
        x * np.array([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="inf"):
        x * np.array([1.0, np.inf, 2.0])
    with pytest.raises(ValueError, match="item=1"):
        x + np.array([0.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="finite"):
        x * float("nan")


def test_series_align_by_label():
    m = Model("series")
    tx = m.index("tx", ["a", "b", "c"])
    x = m.continuous("x", tx)
    runtime = pd.Series({"c": 3.0, "a": 1.0, "b": 2.0}).rename_axis("tx")
    expr = x * runtime
    np.testing.assert_allclose(evaluate(expr, np.ones(3)), [1.0, 2.0, 3.0])
    with pytest.raises(AlignmentError, match="no values for labels"):
        x * pd.Series({"a": 1.0}).rename_axis("tx")


def test_bounds_by_label_and_crossed_bounds():
    m = Model("bounds")
    tx = m.index("tx", ["a", "b"])
    x = m.continuous("x", tx, upper=pd.Series({"b": 5.0, "a": 2.0}).rename_axis("tx"))
    np.testing.assert_array_equal(x.upper, [2.0, 5.0])
    with pytest.raises(ValueError, match="above upper bound"):
        m.continuous("y", tx, lower=3.0, upper=np.array([4.0, 1.0]))


def test_unknown_labels_and_scalar_bounds_messages():
    m = Model("messages")
    tx = m.index("tx", ["a", "b"])
    x = m.continuous("x", tx)
    with pytest.raises(KeyError, match=r"\['zz'\] are not in index set 'tx'"):
        x.at(["a", "zz"])
    with pytest.raises(ValueError, match="variable 'y' has lower bound 3.0 above upper bound 1.0"):
        m.continuous("y", lower=3.0, upper=1.0)


def test_nonlinear_products_and_chained_comparisons_raise():
    m = Model("errors")
    item = m.index("item", range(2))
    x = m.continuous("x", item)
    with pytest.raises(TypeError, match="not linear"):
        x * x
    with pytest.raises(TypeError, match="between"):
        m.subject_to("ranged", 0 <= x <= 1)
    with pytest.raises(ValueError, match="sum it first"):
        m.minimize(x)


def test_duplicate_labels_and_names_raise():
    m = Model("dups")
    with pytest.raises(ValueError, match="duplicate labels"):
        m.index("tx", ["a", "a"])
    m.index("tx", ["a"])
    with pytest.raises(ValueError, match="already has an index set"):
        m.index("tx", ["b"])


def test_index_sets_from_every_label_source():
    assert len(IndexSet("r", range(3))) == 3
    assert IndexSet("l", ["x", "y"]).index.tolist() == ["x", "y"]
    pairs = IndexSet("t", [(0, "a"), (1, "b")])
    assert isinstance(pairs.index, pd.MultiIndex)
    assert IndexSet("p", pd.Index([5, 7])).index.name == "p"
    multi = pd.MultiIndex.from_product([[1, 2], ["u", "v"]], names=["n", "s"])
    assert len(IndexSet("m", multi)) == 4
    with pytest.raises(TypeError, match="labels of index set"):
        IndexSet("bad", "abc")


@settings(max_examples=60, deadline=None)
@given(problems(), st.data())
def test_sum_into_matches_numpy(problem, data):
    a, b, rng = problem
    m, first, second, x, y, z = _model(a, b)
    values = rng.normal(size=m.num_cols)
    xa = values[: a * b].reshape(a, b)
    groups = data.draw(st.integers(1, 4))
    group = m.index("G", [f"g{k}" for k in range(groups)])
    owner = data.draw(st.lists(st.integers(0, groups - 1), min_size=a, max_size=a))

    summed = x.sum_into(group, by=[f"g{k}" for k in owner], dim="A")
    assert summed.dims == ("G", "B")
    expected = np.zeros((groups, b))
    for row, k in enumerate(owner):
        expected[k] += xa[row]
    np.testing.assert_allclose(evaluate(summed, values), expected, atol=1e-12)

    by_series = pd.Series([f"g{k}" for k in owner], index=first.index)
    again = x.sum_into(group, by=by_series.iloc[::-1], dim="A")
    np.testing.assert_allclose(evaluate(again, values), expected, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(problems(), st.data())
def test_pair_selection_matches_numpy(problem, data):
    a, b, rng = problem
    m, first, second, x, y, z = _model(a, b)
    values = rng.normal(size=m.num_cols)
    xa = values[: a * b].reshape(a, b)
    pairs = data.draw(
        st.lists(st.tuples(st.integers(0, a - 1), st.integers(0, b - 1)), min_size=1, max_size=6)
    )
    path = IndexSet("path", range(len(pairs)))
    labels = [(f"a{i}", j) for i, j in pairs]
    picked = x.at(labels, dim=("A", "B"), over=path)
    assert picked.dims == ("path",)
    expected = np.array([xa[i, j] for i, j in pairs])
    np.testing.assert_allclose(evaluate(picked, values), expected, atol=1e-12)

    frame = pd.DataFrame(
        {"B": [j for _, j in pairs], "A": [f"a{i}" for i, _ in pairs]},
        index=pd.Index(range(len(pairs)), name="path"),
    )
    swapped = x.at(frame, dim=("B", "A"))
    np.testing.assert_allclose(evaluate(swapped, values), expected, atol=1e-12)
