"""Objectives: a scalar linear expression plus separable convex terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gaplab.modeling.convex import ConvexTerm
from gaplab.modeling.expressions import LinExpr, _data_array, _widen

if TYPE_CHECKING:
    from gaplab.modeling.model import Model


@dataclass(frozen=True)
class ConvexPart:
    """``weight * f(arg)`` row by row, for one kind of ``f``."""

    kind: str
    arg: LinExpr
    weight: np.ndarray
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def scaled(self, factor: float) -> ConvexPart:
        return ConvexPart(self.kind, self.arg, self.weight * factor, self.params)


class ConvexExpr:
    """A scalar objective expression: a linear part plus sums of convex terms.

    Build one with :func:`mm1`, :func:`square`, :func:`exp`, :func:`power` or
    :func:`piecewise`, and add linear expressions or numbers to it.
    """

    __array_ufunc__ = None
    is_convex_expression = True

    def __init__(self, linear: LinExpr | float, parts: tuple[ConvexPart, ...]) -> None:
        self.linear = linear
        self.parts = parts

    def __add__(self, other: Any) -> ConvexExpr:
        if isinstance(other, ConvexExpr):
            return ConvexExpr(_add_linear(self.linear, other.linear), self.parts + other.parts)
        return ConvexExpr(_add_linear(self.linear, other), self.parts)

    __radd__ = __add__

    def __sub__(self, other: Any) -> ConvexExpr:
        if isinstance(other, ConvexExpr):
            return self + other * -1.0
        return ConvexExpr(_add_linear(self.linear, other * -1.0), self.parts)

    def __rsub__(self, other: Any) -> ConvexExpr:
        return (self * -1.0) + other

    def __mul__(self, factor: Any) -> ConvexExpr:
        if np.ndim(factor) != 0 or isinstance(factor, (LinExpr, ConvexExpr)):
            raise TypeError("a convex expression can only be scaled by a number")
        factor = float(factor)
        return ConvexExpr(self.linear * factor, tuple(part.scaled(factor) for part in self.parts))

    __rmul__ = __mul__

    def __neg__(self) -> ConvexExpr:
        return self * -1.0

    def __repr__(self) -> str:
        kinds = ", ".join(f"{p.kind}[{p.arg.size}]" for p in self.parts)
        return f"ConvexExpr(linear + {kinds})"


def _add_linear(left: LinExpr | float, right: Any) -> LinExpr | float:
    if isinstance(left, LinExpr):
        return left + right
    if isinstance(right, LinExpr):
        return right + left
    return float(left) + float(right)


def _part(kind: str, arg: LinExpr, weight: Any, **params: Any) -> ConvexExpr:
    if not isinstance(arg, LinExpr):
        raise TypeError(f"the argument of {kind}() must be a gaplab expression, got {type(arg)}")
    weights = _data_array(arg, weight, f"weight of {kind}()")
    arrays = {}
    for name, value in params.items():
        if name in ("slopes", "intercepts"):
            arrays[name] = value
        else:
            arrays[name] = _data_array(arg, value, f"{name} of {kind}()")
    return ConvexExpr(0.0, (ConvexPart(kind, arg, weights, arrays),))


def mm1(arg: LinExpr, capacity: Any, weight: Any = 1.0) -> ConvexExpr:
    """``weight * arg / (capacity - arg)`` per row: the M/M/1 number in system at load ``arg``.

    The domain is ``0 <= arg < capacity``; the objective is infinite at the capacity.
    """
    expr = _part("mm1", arg, weight, capacity=capacity)
    capacities = expr.parts[0].params["capacity"]
    if np.any(capacities <= 0):
        raise ValueError(
            f"mm1() capacity must be positive, got {float(np.min(capacities))}; an M/M/1 "
            "queue with no capacity has infinite delay at any load"
        )
    return expr


def square(arg: LinExpr, weight: Any = 1.0) -> ConvexExpr:
    """``weight * arg**2`` per row."""
    return _part("square", arg, weight)


def exp(arg: LinExpr, weight: Any = 1.0) -> ConvexExpr:
    """``weight * exp(arg)`` per row."""
    return _part("exp", arg, weight)


def power(arg: LinExpr, exponent: Any, weight: Any = 1.0) -> ConvexExpr:
    """``weight * arg**exponent`` per row on ``arg >= 0``, with ``exponent >= 1``."""
    expr = _part("power", arg, weight, exponent=exponent)
    if np.any(expr.parts[0].params["exponent"] < 1):
        raise ValueError("power() needs an exponent of at least 1 to stay convex")
    return expr


def piecewise(arg: LinExpr, slopes: Any, intercepts: Any, weight: Any = 1.0) -> ConvexExpr:
    """``weight * max_k(slopes[k] * arg + intercepts[k])`` per row: a convex piecewise-linear cost.

    ``slopes`` and ``intercepts`` have one entry per piece, or shape ``(rows, pieces)``.
    """
    slopes_arr = np.asarray(slopes, dtype=float)
    intercepts_arr = np.asarray(intercepts, dtype=float)
    if slopes_arr.shape != intercepts_arr.shape or slopes_arr.ndim not in (1, 2):
        raise ValueError(
            f"slopes {slopes_arr.shape} and intercepts {intercepts_arr.shape} must have the same "
            "shape: (pieces,) or (rows, pieces)"
        )
    if not (np.isfinite(slopes_arr).all() and np.isfinite(intercepts_arr).all()):
        raise ValueError("piecewise() slopes and intercepts must be finite")
    pieces = slopes_arr.shape[-1]
    shape = (arg.size, pieces)
    try:
        slopes_arr = np.broadcast_to(slopes_arr, shape).copy()
        intercepts_arr = np.broadcast_to(intercepts_arr, shape).copy()
    except ValueError as error:
        raise ValueError(f"piecewise() data must broadcast to {shape}") from error
    return _part("pwl", arg, weight, slopes=slopes_arr, intercepts=intercepts_arr)


class Objective:
    """The objective of a model: a sense and a scalar (convex) expression."""

    def __init__(self, sense: str, linear: LinExpr | None, constant: float, parts: tuple) -> None:
        self.sense = sense
        self.linear = linear
        self.constant = constant
        self.parts: tuple[ConvexPart, ...] = parts

    @classmethod
    def of(cls, model: Model, expr: Any, sense: str) -> Objective:
        parts: tuple[ConvexPart, ...] = ()
        if isinstance(expr, ConvexExpr):
            parts = expr.parts
            expr = expr.linear
        linear: LinExpr | None = None
        constant = 0.0
        if isinstance(expr, LinExpr):
            if expr.model is not model:
                raise ValueError("the objective uses variables of another model")
            if expr.size != 1:
                raise ValueError(
                    f"the objective must be a single expression, got one over {expr.dims} with "
                    f"{expr.size} rows; sum it first, for example expr.sum()"
                )
            linear = expr
        else:
            constant = float(expr)
            if not np.isfinite(constant):
                raise ValueError(f"the objective constant must be finite, got {expr!r}")
        for part in parts:
            if part.arg.model is not model:
                raise ValueError("a convex term uses variables of another model")
            wrong = part.weight < 0 if sense == "min" else part.weight > 0
            if np.any(wrong):
                direction = "minimize" if sense == "min" else "maximize"
                raise ValueError(
                    f"a {part.kind}() term has weights of the wrong sign to {direction}: the "
                    "objective would not be convex. Use nonnegative weights when minimizing and "
                    "nonpositive ones when maximizing"
                )
        return cls(sense, linear, constant, parts)

    def arrays(self, num_cols: int) -> tuple[np.ndarray, float, tuple[ConvexTerm, ...]]:
        """Objective vector, offset and compiled convex terms over ``num_cols`` columns."""
        c = np.zeros(num_cols)
        offset = self.constant
        if self.linear is not None:
            coef = self.linear.coef
            if coef.has_canonical_format:
                c[coef.indices] = coef.data  # one row with unique columns
            else:
                c += np.bincount(coef.indices, weights=coef.data, minlength=num_cols)[:num_cols]
            offset += float(self.linear.const[0])
        terms = []
        for number, part in enumerate(self.parts):
            A = _widen(part.arg.coef, num_cols).tocsr()
            terms.append(
                ConvexTerm(
                    f"{part.kind}{number}",
                    part.kind,
                    A,
                    part.arg.const.copy(),
                    part.weight.copy(),
                    dict(part.params),
                )
            )
        return c, offset, tuple(terms)
