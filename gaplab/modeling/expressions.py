"""Vectorized linear expressions over labelled index sets.

An expression over index sets ``S1 x ... x Sk`` has one row per label tuple, in row-major
order. Its linear part is a sparse matrix ``coef`` (rows by global variable columns) and its
constant part a dense vector ``const``, so no Python object exists per term. Every operation is
a sparse-matrix operation on those arrays.

Alignment rules:

1. Operands over the same dimensions (same set names and labels) combine row by row.
2. An operand whose dimensions are a subset of the other's is broadcast over the missing ones,
   like numpy broadcasting by name. Operands where each has a dimension the other lacks raise
   :class:`AlignmentError`; ``expand()`` states such a product explicitly.
3. Two operands that share a dimension name but not its labels raise :class:`AlignmentError`
   naming both sets. Use :meth:`LinExpr.reindex` to align them explicitly.
4. Data (numpy arrays) must broadcast to the expression's shape; pandas Series align by label to
   the dimension named by their index. NaN and infinite values raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gaplab.modeling.sets import AlignmentError, IndexSet

if TYPE_CHECKING:
    from gaplab.modeling.model import Model

Operand = Any


class LinExpr:
    """A block of affine expressions ``coef @ x + const`` indexed by ``sets``."""

    __slots__ = ("model", "sets", "coef", "const")
    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(
        self, model: Model, sets: tuple[IndexSet, ...], coef: sp.csr_matrix, const: np.ndarray
    ) -> None:
        self.model = model
        self.sets = sets
        self.coef = coef
        self.const = const

    # ------------------------------------------------------------------ shape

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.sets)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sets)

    @property
    def size(self) -> int:
        return int(self.coef.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.coef.nnz)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        over = " x ".join(f"{s.name}[{len(s)}]" for s in self.sets) or "scalar"
        return f"LinExpr({over}, {self.nnz} terms)"

    def _set(self, dim: str) -> IndexSet:
        for s in self.sets:
            if s.name == dim:
                return s
        raise KeyError(f"expression has no dimension {dim!r}; its dimensions are {self.dims}")

    # ------------------------------------------------------------------ arithmetic

    def __add__(self, other: Operand) -> LinExpr:
        if getattr(other, "is_convex_expression", False):
            return NotImplemented  # ConvexExpr.__radd__ adds the linear part
        return _combine(self, other, 1.0)

    def __radd__(self, other: Operand) -> LinExpr:
        return _combine(self, other, 1.0)

    def __sub__(self, other: Operand) -> LinExpr:
        if getattr(other, "is_convex_expression", False):
            return NotImplemented
        return _combine(self, other, -1.0)

    def __rsub__(self, other: Operand) -> LinExpr:
        return _combine(self.scaled(-1.0), other, 1.0)

    def __neg__(self) -> LinExpr:
        return self.scaled(-1.0)

    def __pos__(self) -> LinExpr:
        return self

    def __mul__(self, other: Operand) -> LinExpr:
        if isinstance(other, LinExpr):
            raise TypeError(
                "the product of two expressions is not linear; multiply an expression by "
                "numbers or data instead"
            )
        if _is_scalar(other):
            return self.scaled(_check_number(other, "multiplier"))
        return self.scaled(_data_array(self, other, "multiplier"))

    __rmul__ = __mul__

    def __truediv__(self, other: Operand) -> LinExpr:
        if isinstance(other, LinExpr):
            raise TypeError("dividing by an expression is not linear")
        if _is_scalar(other):
            divisor = _check_number(other, "divisor")
            if divisor == 0:
                raise ZeroDivisionError("division of an expression by zero")
            return self.scaled(1.0 / divisor)
        factor = _data_array(self, other, "divisor")
        if np.any(factor == 0):
            raise ZeroDivisionError("division of an expression by data that contains zeros")
        return self.scaled(1.0 / factor)

    def scaled(self, factor: float | np.ndarray) -> LinExpr:
        """Multiply every row by ``factor`` (a number or one value per row)."""
        old = self.coef
        unit = has_unit_rows(old)
        if np.ndim(factor) == 0 or unit:
            data = old.data * factor  # one term per row, as in a plain variable block
        else:
            data = old.data * np.repeat(factor, np.diff(old.indptr))
        # The new matrix shares the index arrays, which no operation modifies in place.
        coef = sp.csr_matrix((data, old.indices, old.indptr), shape=old.shape)
        coef.gaplab_unit_rows = unit
        return LinExpr(self.model, self.sets, coef, _scaled_const(self.const, factor))

    # ------------------------------------------------------------------ comparisons

    def __le__(self, other: Operand) -> Constraint:
        return _constraint(self, other, "<=")

    def __ge__(self, other: Operand) -> Constraint:
        return _constraint(self, other, ">=")

    def __eq__(self, other: Operand) -> Constraint:  # type: ignore[override]
        return _constraint(self, other, "==")

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "an expression has no truth value; compare it with <=, >= or == inside Model.subject_to"
        )

    def between(self, lower: Operand, upper: Operand) -> Constraint:
        """Return the ranged constraint ``lower <= self <= upper``."""
        lo = _bound_against(self, lower, "lower bound")
        hi = _bound_against(self, upper, "upper bound")
        return Constraint(self, lo - self.const, hi - self.const)

    # ------------------------------------------------------------------ reductions

    def sum(self, dims: str | Sequence[str] | None = None) -> LinExpr:
        """Sum over the named dimensions, or over all of them when ``dims`` is None."""
        if dims is None:
            drop = set(self.dims)
        else:
            drop = {dims} if isinstance(dims, str) else set(dims)
            for dim in drop:
                self._set(dim)
        keep = tuple(s for s in self.sets if s.name not in drop)
        if len(keep) == len(self.sets):
            return self
        kept_axes = [i for i, s in enumerate(self.sets) if s.name not in drop]
        dropped_axes = [i for i, s in enumerate(self.sets) if s.name in drop]
        order = None
        if kept_axes != list(range(len(kept_axes))):
            # Reorder rows so that the rows summed into one result row are contiguous.
            grid = np.arange(self.size, dtype=np.int64).reshape(self.shape)
            order = grid.transpose(kept_axes + dropped_axes).ravel()
        group = int(np.prod([len(self.sets[i]) for i in dropped_axes]))
        return _group_rows(self, keep, order, group)

    def sum_into(self, into: IndexSet, by: Any, *, dim: str | None = None) -> LinExpr:
        """Sum the rows along ``dim`` into the labels of ``into`` given by ``by``.

        ``by`` names, for every label of ``dim`` in order, the label of ``into`` that its row
        adds to (a list or array, or a Series indexed by the labels of ``dim``). Labels of
        ``into`` that receive nothing become empty rows. This is a group-by sum, for example
        flows summed by destination: ``flow.sum_into(node, by=arcs.dst, dim="arc")``.
        """
        if dim is None:
            if len(self.sets) != 1:
                raise ValueError(
                    f"sum_into() on an expression over {self.dims} needs dim= to say which "
                    "dimension to sum"
                )
            dim = self.dims[0]
        axis = self.dims.index(self._set(dim).name)
        source = self.sets[axis]
        if isinstance(by, pd.Series):
            missing = source.index.difference(by.index)
            if len(missing):
                raise AlignmentError(
                    f"sum_into(): the Series has no target for labels {missing[:5].tolist()} "
                    f"of {source.describe()}"
                )
            by = by.loc[source.index].to_numpy()
        targets = into.positions(by)
        if len(targets) != len(source):
            raise ValueError(
                f"sum_into(): by= has {len(targets)} entries, expected one per label of "
                f"{source.describe()}"
            )
        stride = int(np.prod(self.shape[axis + 1 :], dtype=np.int64))
        rows = np.arange(self.size, dtype=np.int64)
        outer, position, inner = (
            rows // (len(source) * stride),
            (rows // stride) % len(source),
            rows % stride,
        )
        new_sets = self.sets[:axis] + (into,) + self.sets[axis + 1 :]
        new_size = int(np.prod([len(s) for s in new_sets], dtype=np.int64))
        target_rows = (outer * len(into) + targets[position]) * stride + inner
        summing = sp.csr_matrix(
            (np.ones(self.size), (target_rows, rows)), shape=(new_size, self.size)
        )
        coef = (summing @ self.coef).tocsr()
        coef.sum_duplicates()
        return LinExpr(self.model, new_sets, coef, summing @ self.const)

    # ------------------------------------------------------------------ selection

    def sel(self, **selection: Any) -> LinExpr:
        """Select rows by label along named dimensions.

        A single label drops the dimension. A list of unique labels keeps it as a subset: a new
        set with the same name, which no longer aligns with the full set.
        """
        expr = self
        for dim, labels in selection.items():
            axis = expr.dims.index(expr._set(dim).name)
            full = expr.sets[axis]
            if _is_label(labels, full):
                positions = full.positions([labels])
                new_sets = expr.sets[:axis] + expr.sets[axis + 1 :]
            else:
                positions = full.positions(labels)
                subset = IndexSet(full.name, full.index[positions])
                new_sets = expr.sets[:axis] + (subset,) + expr.sets[axis + 1 :]
            expr = _take_along(expr, axis, positions, new_sets)
        return expr

    def at(
        self,
        labels: Any,
        *,
        over: IndexSet | str | None = None,
        dim: str | tuple[str, ...] | None = None,
    ) -> LinExpr:
        """Pick one row per entry of ``labels`` along ``dim``, which may repeat labels.

        The picked dimension is replaced by ``over``: an IndexSet with one label per entry. When
        ``labels`` is a pandas Series with a named index, that index is used. This is how arc
        constraints are written, for example ``start.at(arcs.dst) >= start.at(arcs.src)``.

        With a tuple of dimensions, ``labels`` contains one tuple per entry (or is a DataFrame
        with one column per dimension), which picks pairs such as (source, node) out of a
        two-dimensional expression: ``flow.at(paths[["source", "node"]], dim=("source",
        "node"))``.
        """
        if isinstance(dim, tuple):
            return self._at_tuples(labels, dim, over)
        if dim is None:
            if len(self.sets) != 1:
                raise ValueError(
                    f"at() on an expression over {self.dims} needs dim= to say which dimension "
                    "the labels refer to"
                )
            dim = self.dims[0]
        axis = self.dims.index(self._set(dim).name)
        positions = self.sets[axis].positions(labels)
        target = _selection_set(labels, over, self.model)
        if len(target) != len(positions):
            raise ValueError(
                f"over= has {len(target)} labels but the selection has {len(positions)} entries"
            )
        new_sets = self.sets[:axis] + (target,) + self.sets[axis + 1 :]
        return _take_along(self, axis, positions, new_sets)

    def _at_tuples(
        self, labels: Any, dims: tuple[str, ...], over: IndexSet | str | None
    ) -> LinExpr:
        axes = [self.dims.index(self._set(d).name) for d in dims]
        if len(set(axes)) != len(axes):
            raise ValueError(f"at() got the dimensions {dims}, which repeat")
        if isinstance(labels, pd.DataFrame):
            if labels.shape[1] != len(dims):
                raise ValueError(
                    f"at() needs one DataFrame column per dimension {dims}, got "
                    f"{labels.shape[1]} columns"
                )
            columns = [labels.iloc[:, k].to_numpy() for k in range(len(dims))]
            if over is None and labels.index.name:
                over = IndexSet(str(labels.index.name), labels.index)
        else:
            entries = list(labels)
            if any(not isinstance(e, tuple) or len(e) != len(dims) for e in entries):
                raise ValueError(f"at() with dim={dims} needs one {len(dims)}-tuple per entry")
            columns = [np.array([e[k] for e in entries], dtype=object) for k in range(len(dims))]
        target = _selection_set(labels, over, self.model)
        positions = [self.sets[a].positions(col) for a, col in zip(axes, columns, strict=True)]
        if len(target) != len(positions[0]):
            raise ValueError(
                f"over= has {len(target)} labels but the selection has {len(positions[0])} entries"
            )
        grid = np.arange(self.size, dtype=np.int64).reshape(self.shape)
        picked = np.moveaxis(grid, axes, list(range(len(axes))))[tuple(positions)]
        # The picked axis goes where the first of the named dimensions was.
        first = min(axes)
        rest = [s for i, s in enumerate(self.sets) if i not in axes]
        insert = sum(1 for i in range(len(self.sets)) if i < first and i not in axes)
        picked = np.moveaxis(picked, 0, insert)
        new_sets = tuple(rest[:insert]) + (target,) + tuple(rest[insert:])
        rows = picked.ravel()
        return LinExpr(self.model, new_sets, self.coef[rows], self.const[rows])

    def __getitem__(self, key: Any) -> LinExpr:
        """Select a single row by its label tuple, for example ``x["a", 0]``."""
        labels = key if isinstance(key, tuple) and len(self.sets) > 1 else (key,)
        if len(labels) != len(self.sets):
            raise KeyError(
                f"expected {len(self.sets)} labels (one for each of {self.dims}), got {key!r}"
            )
        return self.sel(**{s.name: label for s, label in zip(self.sets, labels, strict=True)})

    def reindex(self, target: IndexSet, *, dim: str | None = None) -> LinExpr:
        """Align one dimension to ``target`` by label; labels absent here become empty rows."""
        if dim is None:
            candidates = [s.name for s in self.sets if s.name == target.name]
            if not candidates:
                if len(self.sets) != 1:
                    raise ValueError("reindex needs dim= when the target name matches no dimension")
                candidates = [self.dims[0]]
            dim = candidates[0]
        axis = self.dims.index(self._set(dim).name)
        source = self.sets[axis]
        positions = source.index.get_indexer(target.index).astype(np.int64)
        new_sets = self.sets[:axis] + (target,) + self.sets[axis + 1 :]
        return _take_along(self, axis, positions, new_sets)

    def expand(self, *sets: IndexSet) -> LinExpr:
        """Broadcast this expression over additional ``sets`` (appended as new dimensions)."""
        target = self.sets + tuple(s for s in sets if s.name not in self.dims)
        return _broadcast(self, target)


class Constraint:
    """A block of rows ``lower <= expr.coef @ x <= upper``, not yet added to a model."""

    __slots__ = ("expr", "lower", "upper")

    def __init__(self, expr: LinExpr, lower: np.ndarray, upper: np.ndarray) -> None:
        self.expr = expr
        self.lower = lower
        self.upper = upper

    def __bool__(self) -> bool:
        raise TypeError(
            "a constraint has no truth value. Python cannot express a chained comparison "
            "like `a <= expr <= b`; write expr.between(a, b) instead"
        )

    def __repr__(self) -> str:
        return f"Constraint({self.expr!r})"


# ---------------------------------------------------------------------- helpers


def _is_scalar(value: Any) -> bool:
    return np.ndim(value) == 0 and not isinstance(value, (LinExpr, pd.Series, pd.DataFrame))


def _is_label(value: Any, index_set: IndexSet) -> bool:
    if isinstance(value, tuple):
        return isinstance(index_set.index, pd.MultiIndex)
    return np.ndim(value) == 0


def _check_number(value: Any, what: str) -> float:
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


def _check_values(
    values: np.ndarray, what: str, sets: tuple[IndexSet, ...], allow_infinite: bool = False
) -> np.ndarray:
    bad = np.isnan(values) if allow_infinite else ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        label = _label_of(sets, first)
        raise ValueError(
            f"{what} contains {values[first]!r} at {label}; NaN and infinite values are not "
            "allowed in coefficients or constants. Fill or drop them before building the model"
            if not allow_infinite
            else f"{what} contains NaN at {label}; use numpy.inf for a missing bound"
        )
    return values


def _label_of(sets: tuple[IndexSet, ...], row: int) -> str:
    if not sets:
        return "the scalar entry"
    coords = np.unravel_index(row, tuple(len(s) for s in sets))
    parts = [f"{s.name}={s.index[int(c)]!r}" for s, c in zip(sets, coords, strict=True)]
    return ", ".join(parts)


def _data_array(expr: LinExpr, data: Any, what: str, *, allow_infinite: bool = False) -> np.ndarray:
    """Turn data into one float per row of ``expr``."""
    if isinstance(data, pd.DataFrame):
        raise TypeError(f"{what}: pass a Series or a numpy array, not a DataFrame")
    if isinstance(data, pd.Series):
        dim = data.index.name
        if dim is None:
            if len(expr.sets) != 1:
                raise AlignmentError(
                    f"{what}: a Series with an unnamed index cannot be aligned to an expression "
                    f"over {expr.dims}; name its index after one of those dimensions"
                )
            dim = expr.dims[0]
        if dim not in expr.dims:
            raise AlignmentError(
                f"{what}: the Series is indexed by {dim!r} but the expression is over "
                f"{expr.dims}; add that dimension with expand() or rename the index"
            )
        target = expr._set(dim)
        try:
            positions = pd.Index(data.index).get_indexer(target.index)
        except pd.errors.InvalidIndexError as error:
            raise ValueError(f"{what}: the Series index has duplicate labels") from error
        if (positions < 0).any():
            missing = target.index[positions < 0][:5].tolist()
            raise AlignmentError(
                f"{what}: the Series indexed by {dim!r} has no values for labels {missing} of "
                f"{target.describe()}"
            )
        values = np.asarray(data.to_numpy(dtype=float), dtype=float)[positions]
        axis = expr.dims.index(dim)
        shape = [1] * len(expr.sets)
        shape[axis] = len(target)
        array = np.broadcast_to(values.reshape(shape), expr.shape).ravel()
        return _check_values(np.ascontiguousarray(array), what, expr.sets, allow_infinite)
    array = np.asarray(data, dtype=float)
    try:
        array = np.broadcast_to(array, expr.shape)
    except ValueError as error:
        raise ValueError(
            f"{what} has shape {array.shape}, which does not broadcast to the expression's "
            f"shape {expr.shape} over {expr.dims}"
        ) from error
    return _check_values(np.ascontiguousarray(array).ravel(), what, expr.sets, allow_infinite)


def _bound_against(expr: LinExpr, bound: Any, what: str) -> np.ndarray:
    """Return one bound per row of ``expr``; infinite bounds are allowed, NaN is not."""
    if isinstance(bound, LinExpr):
        raise TypeError(f"{what} of a ranged constraint must be data, not an expression")
    if _is_scalar(bound):
        value = float(bound)
        if np.isnan(value):
            raise ValueError(f"{what} is NaN")
        return np.full(expr.size, value)
    return _data_array(expr, bound, what, allow_infinite=True).copy()


def _widen(coef: sp.csr_matrix, num_cols: int) -> sp.csr_matrix:
    if coef.shape[1] == num_cols:
        return coef
    return sp.csr_matrix((coef.data, coef.indices, coef.indptr), shape=(coef.shape[0], num_cols))


def _aligned_sets(a: tuple[IndexSet, ...], b: tuple[IndexSet, ...]) -> tuple[IndexSet, ...]:
    """Return the dimensions of ``a op b``: those of ``a``, then the ones only ``b`` has."""
    names_a = {s.name for s in a}
    names_b = {s.name for s in b}
    if not (names_a <= names_b or names_b <= names_a):
        raise AlignmentError(
            f"cannot combine expressions over {tuple(s.name for s in a)} and "
            f"{tuple(s.name for s in b)}: neither has all the dimensions of the other, so the "
            "result would silently span their product. If that is what you mean, say so with "
            "expand(), for example y.expand(other_set)"
        )
    by_name = {s.name: s for s in a}
    extra = []
    for s in b:
        mine = by_name.get(s.name)
        if mine is None:
            extra.append(s)
        elif not mine.same_as(s):
            raise AlignmentError(
                f"cannot combine expressions over {mine.describe()} and {s.describe()}: the "
                f"dimension {s.name!r} has different labels on the two sides. Align them "
                "explicitly with reindex() or select matching labels with sel()"
            )
    return a + tuple(extra)


def _broadcast(expr: LinExpr, target: tuple[IndexSet, ...]) -> LinExpr:
    """Repeat the rows of ``expr`` over the dimensions of ``target`` that it lacks."""
    if len(target) == len(expr.sets) and all(
        s is t or s.same_as(t) for s, t in zip(expr.sets, target, strict=True)
    ):
        return expr
    names = [s.name for s in target]
    shape = tuple(len(s) for s in target)
    grid = np.arange(expr.size, dtype=np.int64).reshape(expr.shape)
    # Put the source axes in target order, then give every missing dimension length 1.
    positions = [names.index(d) for d in expr.dims]
    grid = np.transpose(grid, np.argsort(positions))
    reshape = [1] * len(target)
    for axis in sorted(positions):
        reshape[axis] = shape[axis]
    rows = np.broadcast_to(grid.reshape(reshape), shape).ravel()
    return LinExpr(expr.model, target, expr.coef[rows], expr.const[rows])


def _combine(left: LinExpr, right: Operand, sign: float) -> LinExpr:
    """``left + sign * right`` under the alignment rules."""
    if isinstance(right, LinExpr):
        if right.model is not left.model:
            raise ValueError("cannot combine expressions from two different models")
        sets = _aligned_sets(left.sets, right.sets)
        a = _broadcast(left, sets)
        b = _broadcast(right, sets)
        width = max(a.coef.shape[1], b.coef.shape[1])
        coef_b = _widen(b.coef, width)
        coef = _widen(a.coef, width) + (coef_b if sign == 1.0 else coef_b * sign)
        return LinExpr(left.model, sets, coef.tocsr(), a.const + sign * b.const)
    if _is_scalar(right):
        return LinExpr(
            left.model, left.sets, left.coef, left.const + sign * _check_number(right, "constant")
        )
    values = _data_array(left, right, "constant")
    return LinExpr(left.model, left.sets, left.coef, left.const + sign * values)


def _constraint(left: LinExpr, right: Operand, sense: str) -> Constraint:
    if isinstance(right, LinExpr):
        expr = _combine(left, right, -1.0)
        rhs = np.zeros(expr.size)
    else:
        expr = left
        rhs = _bound_against(left, right, "right-hand side")
        if np.isinf(rhs).any() and sense == "==":
            raise ValueError("an equality constraint needs a finite right-hand side")
    bound = rhs - expr.const
    infinite = np.full(expr.size, np.inf)
    if sense == "<=":
        return Constraint(expr, -infinite, bound)
    if sense == ">=":
        return Constraint(expr, bound, infinite)
    return Constraint(expr, bound, bound.copy())


def has_unit_rows(coef: sp.csr_matrix) -> bool:
    """Return whether every row has exactly one stored entry (cached on the matrix)."""
    known = getattr(coef, "gaplab_unit_rows", None)
    if known is None:
        rows = coef.shape[0]
        known = bool(coef.nnz == rows and np.array_equal(coef.indptr, np.arange(rows + 1)))
        coef.gaplab_unit_rows = known
    return bool(known)


def _scaled_const(const: np.ndarray, factor: float | np.ndarray) -> np.ndarray:
    if not const.any():
        return const  # zeros stay zeros; the array is never modified in place
    return const * factor


def _group_rows(
    expr: LinExpr, keep: tuple[IndexSet, ...], order: np.ndarray | None, group: int
) -> LinExpr:
    """Sum each run of ``group`` consecutive rows of ``expr`` (after reordering by ``order``)."""
    coef = expr.coef
    if group == 0:
        size = int(np.prod([len(s) for s in keep])) if keep else 1
        return LinExpr(expr.model, keep, sp.csr_matrix((size, coef.shape[1])), np.zeros(size))
    size = expr.size // group
    if order is not None and has_unit_rows(coef):
        # One entry per row: reorder the entries themselves, the row pointers stay regular.
        data, indices = coef.data[order], coef.indices[order]
        indptr = np.arange(0, expr.size + 1, group, dtype=coef.indptr.dtype)
    else:
        if order is not None:
            coef = coef[order]
        data, indices = coef.data, coef.indices
        indptr = np.ascontiguousarray(coef.indptr[::group])
    if expr.const.any():
        const = (expr.const if order is None else expr.const[order]).reshape(size, group)
        const = const.sum(axis=1)
    else:
        const = np.zeros(size)
    grouped = sp.csr_matrix((data, indices, indptr), shape=(size, coef.shape[1]))
    # Rows from different source rows may name the same column. scipy checks the format in
    # one pass; only then is a private copy sorted and merged, since the arrays may be shared.
    if not grouped.has_canonical_format:
        grouped = grouped.copy()
        grouped.sum_duplicates()
    return LinExpr(expr.model, keep, grouped, const)


def _take_along(
    expr: LinExpr, axis: int, positions: np.ndarray, new_sets: tuple[IndexSet, ...]
) -> LinExpr:
    """Rows of ``expr`` at ``positions`` along ``axis`` (``-1`` gives an empty row)."""
    grid = np.arange(expr.size, dtype=np.int64).reshape(expr.shape)
    missing = positions < 0
    picked = np.take(grid, np.where(missing, 0, positions), axis=axis)
    rows = picked.ravel()
    coef = expr.coef[rows]
    const = expr.const[rows]
    if missing.any():
        shape = [1] * grid.ndim
        shape[axis] = len(positions)
        empty = np.broadcast_to(missing.reshape(shape), picked.shape).ravel()
        keep = sp.diags((~empty).astype(float))
        coef = (keep @ coef).tocsr()
        coef.eliminate_zeros()
        const = np.where(empty, 0.0, const)
    return LinExpr(expr.model, new_sets, coef, const)


def _selection_set(labels: Any, over: IndexSet | str | None, model: Model) -> IndexSet:
    if isinstance(over, IndexSet):
        return over
    if isinstance(over, str):
        return model.sets[over]
    if isinstance(labels, pd.Series) and labels.index.name:
        return IndexSet(str(labels.index.name), labels.index)
    raise ValueError(
        "at() needs to know which index set the picked rows belong to: pass over=IndexSet, or a "
        "pandas Series whose index has a name"
    )
