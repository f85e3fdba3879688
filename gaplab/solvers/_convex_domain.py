"""Checks that each convex term can be evaluated somewhere inside the model's column bounds."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gaplab.modeling.compiled import CompiledModel
from gaplab.modeling.convex import ConvexTerm


class ConvexDomainError(ValueError):
    """A convex term's data is invalid or its argument cannot enter the function's domain."""


def argument_ranges(model: CompiledModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return, per term, the smallest and largest argument the column bounds allow.

    The ranges come from interval arithmetic on ``A @ x + b`` and ignore the rows, so they may
    be wider than what the constraints allow, never narrower.
    """
    ranges = []
    for term in model.convex:
        A = term.with_columns(model.num_cols).A
        positive = A.maximum(0).tocsr()
        negative = A.minimum(0).tocsr()
        positive.eliminate_zeros()
        negative.eliminate_zeros()
        lower = _product(positive, model.col_lower) + _product(negative, model.col_upper)
        upper = _product(positive, model.col_upper) + _product(negative, model.col_lower)
        ranges.append((lower + term.b, upper + term.b))
    return ranges


def _product(matrix: sp.csr_matrix, vector: np.ndarray) -> np.ndarray:
    # Stored entries are nonzero, so no 0 * inf appears, and each product sums infinities of
    # one sign only, so no inf - inf appears either.
    with np.errstate(invalid="ignore"):
        return np.asarray(matrix @ vector, dtype=float)


def check_domains(model: CompiledModel) -> None:
    """Raise :class:`ConvexDomainError` for invalid term data or an argument outside the domain.

    A term fails when its weights have the wrong sign for the objective's sense (negative when
    minimizing, positive when maximizing), when its weights, offsets or parameters are not
    finite, when an M/M/1 capacity is not positive, or when a power's exponent is below 1. It
    also fails when the column bounds keep an argument out of the function's domain, for
    example an M/M/1 load that is at least its capacity for every allowed ``x``.
    """
    if not model.convex:
        return
    for term, (lower, upper) in zip(model.convex, argument_ranges(model), strict=True):
        _check_data(term)
        wrong_sign = term.weight < 0 if model.sense == "min" else term.weight > 0
        if np.any(wrong_sign):
            expected = "nonnegative" if model.sense == "min" else "nonpositive"
            raise ConvexDomainError(
                f"convex term {term.name!r} ({term.kind}) has weights that are not {expected}, "
                f"so the {model.sense} objective is not convex. Give {expected} weights"
            )
        domain_lower, domain_upper = term.domain_bounds()
        if term.kind == "mm1":
            outside = (upper < domain_lower) | (lower >= domain_upper)
        else:
            outside = (upper < domain_lower) | (lower > domain_upper)
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise ConvexDomainError(
                f"convex term {term.name!r} ({term.kind}) at element {row}: its argument ranges "
                f"over [{lower[row]:g}, {upper[row]:g}] under the column bounds, outside the "
                f"domain {_domain_text(term, row)}. Change the bounds or the term's data so "
                "that the argument can enter the domain"
            )


def _check_data(term: ConvexTerm) -> None:
    arrays = {"weight": term.weight, "offset": term.b, **term.params}
    for name, values in arrays.items():
        if not np.all(np.isfinite(values)):
            raise ConvexDomainError(
                f"convex term {term.name!r} ({term.kind}) has a non-finite {name}; "
                "give finite numbers"
            )
    if term.A.nnz and not np.all(np.isfinite(term.A.data)):
        raise ConvexDomainError(
            f"convex term {term.name!r} ({term.kind}) has a non-finite coefficient in its "
            "argument; give finite numbers"
        )
    if term.kind == "mm1" and np.any(term.params["capacity"] <= 0):
        raise ConvexDomainError(
            f"convex term {term.name!r} (mm1) has a capacity of "
            f"{float(np.min(term.params['capacity'])):g}; capacities must be positive"
        )
    if term.kind == "power" and np.any(term.params["exponent"] < 1):
        raise ConvexDomainError(
            f"convex term {term.name!r} (power) has an exponent of "
            f"{float(np.min(term.params['exponent'])):g}; exponents below 1 are not convex"
        )


def _domain_text(term: ConvexTerm, row: int) -> str:
    if term.kind == "mm1":
        return f"[0, {float(term.params['capacity'][row]):g}) of the M/M/1 term u / (c - u)"
    if term.kind == "power":
        return "[0, inf) of u ** p"
    return "(-inf, inf)"
