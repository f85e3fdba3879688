"""The Model: declares index sets, variable blocks, constraint families and an objective."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from gaplab.modeling.compiled import Block, CompiledModel
from gaplab.modeling.expressions import Constraint, LinExpr, _bound_against, _widen
from gaplab.modeling.objective import ConvexExpr, Objective
from gaplab.modeling.sets import IndexSet, product_labels

if TYPE_CHECKING:
    from gaplab.solvers.result import Result

logger = logging.getLogger(__name__)

DEFAULT_LOWER = 0.0
"""Default lower bound of continuous and integer variables, as in MPS files and HiGHS.

Pyomo, PuLP and JuMP default to no lower bound; gaplab follows the MPS convention because
almost every quantity in its models (times, rates, flows) is nonnegative. Pass
``lower=-numpy.inf`` for a free variable."""

DEFAULT_UPPER = np.inf
"""Default upper bound of continuous and integer variables."""


class Variable(LinExpr):
    """A block of decision variables over index sets; also usable as an expression."""

    __slots__ = ("name", "start", "kind", "lower", "upper")

    def __init__(
        self,
        model: Model,
        name: str,
        sets: tuple[IndexSet, ...],
        start: int,
        kind: str,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        size = int(np.prod([len(s) for s in sets])) if sets else 1
        columns = np.arange(start, start + size, dtype=np.int32)
        coef = sp.csr_matrix(
            (np.ones(size), columns, np.arange(size + 1, dtype=np.int32)),
            shape=(size, start + size),
        )
        coef.gaplab_unit_rows = True
        super().__init__(model, sets, coef, np.zeros(size))
        self.name = name
        self.start = start
        self.kind = kind
        self.lower = lower
        self.upper = upper

    def __repr__(self) -> str:
        over = " x ".join(f"{s.name}[{len(s)}]" for s in self.sets) or "scalar"
        return f"Variable({self.name!r}, {self.kind}, {over})"


class ConstraintFamily:
    """A named block of constraint rows in a model; use it to look up duals."""

    __slots__ = ("name", "sets", "coef", "lower", "upper")

    def __init__(
        self,
        name: str,
        sets: tuple[IndexSet, ...],
        coef: sp.csr_matrix,
        lower: np.ndarray,
        upper: np.ndarray,
    ) -> None:
        self.name = name
        self.sets = sets
        self.coef = coef
        self.lower = lower
        self.upper = upper

    @property
    def size(self) -> int:
        return int(self.coef.shape[0])

    def __repr__(self) -> str:
        over = " x ".join(f"{s.name}[{len(s)}]" for s in self.sets) or "scalar"
        return f"ConstraintFamily({self.name!r}, {over}, {self.coef.nnz} terms)"


class Model:
    """A declarative LP, MILP or convex model over labelled index sets.

    Examples
    --------
    >>> m = Model("tiny")
    >>> item = m.index("item", ["a", "b", "c"])
    >>> x = m.binary("x", item)
    >>> _ = m.subject_to("weight", (x * [3, 4, 5]).sum() <= 8)
    >>> m.maximize((x * [4, 5, 7]).sum())
    >>> m.solve().objective
    11.0
    """

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.sets: dict[str, IndexSet] = {}
        self.variables: dict[str, Variable] = {}
        self.constraints: dict[str, ConstraintFamily] = {}
        self.num_cols = 0
        self.objective: Objective | None = None

    def __repr__(self) -> str:
        rows = sum(c.size for c in self.constraints.values())
        return (
            f"Model({self.name!r}: {len(self.variables)} variable blocks with {self.num_cols} "
            f"columns, {len(self.constraints)} constraint families with {rows} rows)"
        )

    def _repr_html_(self) -> str:
        lines = [f"<b>gaplab Model {self.name!r}</b><ul>"]
        for var in self.variables.values():
            lines.append(
                f"<li>variable {var.name}: {var.kind}, {var.size} columns over {var.dims}</li>"
            )
        for family in self.constraints.values():
            lines.append(f"<li>constraint {family.name}: {family.size} rows</li>")
        lines.append("</ul>")
        return "".join(lines)

    # ------------------------------------------------------------------ declarations

    def index(self, name: str, labels: Any) -> IndexSet:
        """Declare an index set named ``name`` with the given labels."""
        if name in self.sets:
            raise ValueError(f"model {self.name!r} already has an index set named {name!r}")
        index_set = IndexSet(name, labels)
        self.sets[name] = index_set
        return index_set

    def continuous(
        self,
        name: str,
        *sets: IndexSet | str,
        lower: Any = DEFAULT_LOWER,
        upper: Any = DEFAULT_UPPER,
    ) -> Variable:
        """Declare continuous variables over ``sets`` (none for a single variable)."""
        return self._add_variable(name, sets, "continuous", lower, upper)

    def integer(
        self,
        name: str,
        *sets: IndexSet | str,
        lower: Any = DEFAULT_LOWER,
        upper: Any = DEFAULT_UPPER,
    ) -> Variable:
        """Declare integer variables over ``sets``."""
        return self._add_variable(name, sets, "integer", lower, upper)

    def binary(self, name: str, *sets: IndexSet | str) -> Variable:
        """Declare 0-1 variables over ``sets``."""
        return self._add_variable(name, sets, "binary", 0.0, 1.0)

    def _add_variable(
        self, name: str, sets: tuple[IndexSet | str, ...], kind: str, lower: Any, upper: Any
    ) -> Variable:
        self._check_new_name(name, self.variables, "variable block")
        resolved = tuple(self._resolve_set(s) for s in sets)
        names = [s.name for s in resolved]
        if len(set(names)) != len(names):
            raise ValueError(f"variable block {name!r} repeats a dimension: {names}")
        size = _size(resolved)
        if np.ndim(lower) == 0 and np.ndim(upper) == 0 and not isinstance(lower, LinExpr):
            # Scalar bounds stay read-only broadcast views: no array per column is allocated.
            lo_value, hi_value = float(lower), float(upper)
            if np.isnan(lo_value) or np.isnan(hi_value):
                raise ValueError(f"bounds of {name!r} must not be NaN")
            lo = np.broadcast_to(np.float64(lo_value), (size,))
            hi = np.broadcast_to(np.float64(hi_value), (size,))
        else:
            shell = LinExpr(self, resolved, sp.csr_matrix((max(1, size), 0)), np.zeros(0))
            lo = _bound_against(shell, lower, f"lower bound of {name!r}")
            hi = _bound_against(shell, upper, f"upper bound of {name!r}")
        if np.isposinf(lo).any() or np.isneginf(hi).any():
            raise ValueError(f"bounds of {name!r} must not be +inf below or -inf above")
        crossed = lo > hi
        if crossed.any():
            row = int(np.flatnonzero(crossed)[0])
            where = f" at {product_labels(resolved)[row]!r}" if resolved else ""
            raise ValueError(
                f"variable {name!r}{where} has lower bound {lo[row]} above upper bound {hi[row]}"
            )
        variable = Variable(self, name, resolved, self.num_cols, kind, lo, hi)
        self.num_cols += variable.size
        self.variables[name] = variable
        return variable

    def subject_to(self, name: str, constraint: Constraint) -> ConstraintFamily:
        """Add ``constraint`` as a family of rows named ``name``."""
        self._check_new_name(name, self.constraints, "constraint family")
        if not isinstance(constraint, Constraint):
            raise TypeError(
                f"subject_to({name!r}, ...) expects a comparison such as `expr <= 3`, got "
                f"{type(constraint).__name__}"
            )
        if constraint.expr.model is not self:
            raise ValueError(f"constraint {name!r} uses variables of another model")
        crossed = constraint.lower > constraint.upper
        if crossed.any():
            row = int(np.flatnonzero(crossed)[0])
            label = product_labels(constraint.expr.sets)[row]
            logger.warning(
                "constraint %r at %r has lower bound %g above upper bound %g, so the model is "
                "infeasible",
                name,
                label,
                constraint.lower[row],
                constraint.upper[row],
            )
        family = ConstraintFamily(
            name, constraint.expr.sets, constraint.expr.coef, constraint.lower, constraint.upper
        )
        self.constraints[name] = family
        return family

    def minimize(self, expr: LinExpr | ConvexExpr | float) -> None:
        """Set the objective to minimize ``expr`` (a scalar expression plus convex terms)."""
        self.objective = Objective.of(self, expr, "min")

    def maximize(self, expr: LinExpr | ConvexExpr | float) -> None:
        """Set the objective to maximize ``expr``."""
        self.objective = Objective.of(self, expr, "max")

    def _resolve_set(self, s: IndexSet | str) -> IndexSet:
        if isinstance(s, IndexSet):
            return s
        if isinstance(s, str) and s in self.sets:
            return self.sets[s]
        known = ", ".join(repr(k) for k in self.sets) or "none"
        raise KeyError(f"unknown index set {s!r}; the model declares {known}")

    def _check_new_name(self, name: str, existing: dict[str, Any], what: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {what} needs a non-empty string name, got {name!r}")
        if "[" in name or "]" in name or any(ch.isspace() for ch in name):
            raise ValueError(f"{what} name {name!r} must not contain brackets or spaces")
        if name in existing:
            raise ValueError(f"model {self.name!r} already has a {what} named {name!r}")

    # ------------------------------------------------------------------ compile and solve

    def compile(self) -> CompiledModel:
        """Stack every block into the solver-neutral :class:`CompiledModel`."""
        n = self.num_cols
        col_lower = np.empty(n)
        col_upper = np.empty(n)
        integrality = np.zeros(n, dtype=np.int8)
        var_blocks = []
        for var in self.variables.values():
            stop = var.start + var.size
            col_lower[var.start : stop] = var.lower
            col_upper[var.start : stop] = var.upper
            if var.kind != "continuous":
                integrality[var.start : stop] = 1
            var_blocks.append(Block(var.name, var.start, stop, var.sets, var.kind, not var.sets))

        con_blocks = []
        matrices = []
        lowers = []
        uppers = []
        row = 0
        for family in self.constraints.values():
            matrices.append(_widen(family.coef, n))
            lowers.append(family.lower)
            uppers.append(family.upper)
            con_blocks.append(
                Block(family.name, row, row + family.size, family.sets, "linear", not family.sets)
            )
            row += family.size
        if matrices:
            A = sp.vstack(matrices, format="csr") if len(matrices) > 1 else matrices[0]
            if not A.has_canonical_format:
                A = A.copy()  # the blocks may share arrays with expressions still in use
                A.sum_duplicates()
        else:
            A = sp.csr_matrix((0, n))
        row_lower = np.concatenate(lowers) if lowers else np.zeros(0)
        row_upper = np.concatenate(uppers) if uppers else np.zeros(0)

        objective = self.objective or Objective.of(self, 0.0, "min")
        c, offset, convex = objective.arrays(n)
        return CompiledModel(
            name=self.name,
            sense=objective.sense,
            A=A,
            row_lower=row_lower,
            row_upper=row_upper,
            col_lower=col_lower,
            col_upper=col_upper,
            integrality=integrality,
            objective=c,
            offset=offset,
            variables=tuple(var_blocks),
            constraints=tuple(con_blocks),
            convex=convex,
        )

    def solve(self, backend: str = "highs", **options: Any) -> Result:
        """Compile and solve with ``backend``; options as in :class:`gaplab.solvers.SolveOptions`.

        Options: ``time_limit``, ``mip_rel_gap``, ``threads``, ``verbose``, ``seed``,
        ``convex_tolerance`` and ``solver_options``.
        """
        from gaplab.solvers import solve

        return solve(self.compile(), backend, **options)


def _size(sets: tuple[IndexSet, ...]) -> int:
    return int(np.prod([len(s) for s in sets])) if sets else 1
