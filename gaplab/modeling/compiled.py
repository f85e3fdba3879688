"""The solver-neutral array form of a model, and its MPS and LP files."""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gaplab.modeling.convex import ConvexTerm

logger = logging.getLogger(__name__)

INTEGRALITY_TOLERANCE = 1e-6
"""Distance from the nearest integer that :meth:`CompiledModel.max_violation` still accepts."""


@dataclass(frozen=True, eq=False)
class Block:
    """A named slice of columns (a variable block) or of rows (a constraint family).

    ``labels`` has one entry per column or row, in array order. A block declared without
    index sets is ``scalar`` and has a single unnamed entry.
    """

    name: str
    start: int
    stop: int
    label_source: Any
    """A ``pandas.Index`` of labels, or the index sets whose product gives them (built on
    first use, because a product over 10^5 or more labels costs time that most solves never
    need)."""
    kind: str = "continuous"
    """``continuous``, ``integer`` or ``binary`` for variables; ``linear`` for rows."""
    scalar: bool = False

    @functools.cached_property
    def labels(self) -> pd.Index:
        if isinstance(self.label_source, pd.Index):
            return self.label_source
        from gaplab.modeling.sets import product_labels

        return product_labels(tuple(self.label_source))

    @property
    def size(self) -> int:
        return self.stop - self.start

    def same_layout(self, other: Block) -> bool:
        return (
            self.name == other.name
            and self.start == other.start
            and self.stop == other.stop
            and self.scalar == other.scalar
        )


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A linear or mixed-integer model as plain arrays.

    The model is ``sense`` of ``objective @ x + offset + sum of convex terms`` subject to
    ``row_lower <= A @ x <= row_upper`` and ``col_lower <= x <= col_upper``, with ``x[j]``
    integral where ``integrality[j]`` is 1. Infinite bounds are ``numpy.inf``. The object has
    no solver handle, so it pickles, and two compiled models compare equal when every array,
    label and name matches.
    """

    name: str
    sense: str
    """``min`` or ``max``."""
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    """``int8`` per column: 0 continuous, 1 integer."""
    objective: np.ndarray
    offset: float = 0.0
    variables: tuple[Block, ...] = ()
    constraints: tuple[Block, ...] = ()
    convex: tuple[ConvexTerm, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.sense not in ("min", "max"):
            raise ValueError(f"sense must be 'min' or 'max', got {self.sense!r}")
        n_rows, n_cols = self.A.shape
        for name, size in (
            ("row_lower", n_rows),
            ("row_upper", n_rows),
            ("col_lower", n_cols),
            ("col_upper", n_cols),
            ("integrality", n_cols),
            ("objective", n_cols),
        ):
            if len(getattr(self, name)) != size:
                raise ValueError(
                    f"{name} has {len(getattr(self, name))} entries, expected {size} for a "
                    f"{n_rows} x {n_cols} matrix"
                )

    # ------------------------------------------------------------------ shape

    @property
    def num_rows(self) -> int:
        return int(self.A.shape[0])

    @property
    def num_cols(self) -> int:
        return int(self.A.shape[1])

    @property
    def num_nonzeros(self) -> int:
        return int(self.A.nnz)

    @property
    def is_mip(self) -> bool:
        return bool(np.any(self.integrality))

    @property
    def has_convex(self) -> bool:
        return len(self.convex) > 0

    def variable_block(self, key: Any) -> Block:
        """Return the variable block named by ``key`` (a name or a Variable)."""
        return _find_block(self.variables, key, "variable block")

    def constraint_block(self, key: Any) -> Block:
        """Return the constraint family named by ``key`` (a name or a ConstraintFamily)."""
        return _find_block(self.constraints, key, "constraint family")

    def row_label(self, row: int) -> tuple[str, Any]:
        """Return the family name and label of one row."""
        return _label_at(self.constraints, row, "row")

    def column_label(self, column: int) -> tuple[str, Any]:
        """Return the block name and label of one column."""
        return _label_at(self.variables, column, "column")

    def column_vector(self, values: dict[str, Any], fill: float = 0.0) -> np.ndarray:
        """Assemble one value per column from values by variable block name.

        Each entry is a number, an array in block order, or a Series keyed by the block's
        labels; blocks not named get ``fill``. Use it for warm starts and for evaluating a
        heuristic's point with :meth:`max_violation`.
        """
        x = np.full(self.num_cols, float(fill))
        for name, given in values.items():
            block = self.variable_block(name)
            if isinstance(given, pd.Series):
                positions = block.labels.get_indexer(given.index)
                if (positions < 0).any():
                    unknown = given.index[positions < 0][:5].tolist()
                    raise KeyError(f"labels {unknown} are not in variable block {name!r}")
                x[block.start + positions] = given.to_numpy(dtype=float)
            else:
                array = np.broadcast_to(np.asarray(given, dtype=float), (block.size,))
                x[block.start : block.stop] = array
        return x

    # ------------------------------------------------------------------ evaluation

    def linear_objective(self, x: np.ndarray) -> float:
        return float(self.objective @ x + self.offset)

    def objective_value(self, x: np.ndarray) -> float:
        """Objective at ``x``, including the true value of every convex term."""
        value = self.linear_objective(x)
        for term in self.convex:
            value += term.value(x)
        return value

    def max_violation(self, x: np.ndarray) -> float:
        """Largest absolute violation at ``x`` of a column bound, row bound or integrality.

        Convex terms that are evaluated outside their domain count as an infinite violation.
        """
        x = np.asarray(x, dtype=float)
        if x.shape != (self.num_cols,):
            raise ValueError(f"x has shape {x.shape}, expected ({self.num_cols},)")
        worst = 0.0
        if self.num_cols:
            worst = max(worst, float(np.max(self.col_lower - x, initial=0.0)))
            worst = max(worst, float(np.max(x - self.col_upper, initial=0.0)))
            integral = self.integrality.astype(bool)
            if integral.any():
                frac = np.abs(x[integral] - np.round(x[integral]))
                worst = max(worst, float(np.max(frac, initial=0.0)))
        if self.num_rows:
            activity = self.A @ x
            worst = max(worst, float(np.max(self.row_lower - activity, initial=0.0)))
            worst = max(worst, float(np.max(activity - self.row_upper, initial=0.0)))
        for term in self.convex:
            worst = max(worst, term.domain_violation(x))
        return worst

    # ------------------------------------------------------------------ comparison

    def equals(self, other: object, *, check_labels: bool = True, rtol: float = 0.0) -> bool:
        """Compare every array, name and block layout, and labels unless ``check_labels`` is off."""
        if not isinstance(other, CompiledModel):
            return False
        if self.sense != other.sense or self.A.shape != other.A.shape:
            return False
        if check_labels and self.name != other.name:
            return False
        arrays = (
            "row_lower",
            "row_upper",
            "col_lower",
            "col_upper",
            "integrality",
            "objective",
        )
        for name in arrays:
            if not _arrays_close(getattr(self, name), getattr(other, name), rtol):
                return False
        if not np.isclose(self.offset, other.offset, rtol=rtol, atol=0.0):
            return False
        difference = (self.A - other.A).tocsr()
        if difference.nnz and np.max(np.abs(difference.data)) > rtol * max(
            1.0, float(np.max(np.abs(self.A.data), initial=0.0))
        ):
            return False
        for mine, theirs in (
            (self.variables, other.variables),
            (self.constraints, other.constraints),
        ):
            if len(mine) != len(theirs):
                return False
            for a, b in zip(mine, theirs, strict=True):
                if not a.same_layout(b):
                    return False
                if check_labels and not a.labels.equals(b.labels):
                    return False
        if len(self.convex) != len(other.convex):
            return False
        return all(a.equals(b) for a, b in zip(self.convex, other.convex, strict=True))

    def __eq__(self, other: object) -> bool:
        return self.equals(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        kind = "MILP" if self.is_mip else "LP"
        if self.convex:
            kind += f" + {sum(t.size for t in self.convex)} convex terms"
        return (
            f"CompiledModel({self.name!r}, {self.sense}, {kind}: {self.num_rows} rows, "
            f"{self.num_cols} columns, {self.num_nonzeros} nonzeros)"
        )

    # ------------------------------------------------------------------ files

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as MPS (``.mps``) or CPLEX LP (``.lp``), chosen by the suffix.

        Columns are named ``block[position]`` and rows ``family[position]`` so that
        :func:`read_model` restores the block layout. The file is written to a temporary name
        and renamed, so a failed write leaves nothing behind.
        """
        from gaplab.modeling import fileio

        return fileio.write_model(self, Path(path))

    def to_mps(self, path: str | os.PathLike[str]) -> Path:
        return self.write(_with_suffix(Path(path), ".mps"))

    def to_lp(self, path: str | os.PathLike[str]) -> Path:
        return self.write(_with_suffix(Path(path), ".lp"))


def _with_suffix(path: Path, suffix: str) -> Path:
    if path.suffix.lower() != suffix:
        raise ValueError(f"expected a file name ending in {suffix}, got {str(path)!r}")
    return path


def _arrays_close(a: np.ndarray, b: np.ndarray, rtol: float) -> bool:
    if a.shape != b.shape:
        return False
    if rtol == 0.0:
        return bool(np.array_equal(a, b))
    return bool(np.allclose(a, b, rtol=rtol, atol=0.0, equal_nan=False))


def _find_block(blocks: tuple[Block, ...], key: Any, what: str) -> Block:
    name = key if isinstance(key, str) else getattr(key, "name", None)
    for block in blocks:
        if block.name == name:
            return block
    known = ", ".join(repr(b.name) for b in blocks) or "none"
    raise KeyError(f"no {what} named {name!r}; the model has {known}")


def _label_at(blocks: tuple[Block, ...], position: int, what: str) -> tuple[str, Any]:
    for block in blocks:
        if block.start <= position < block.stop:
            return block.name, block.labels[position - block.start]
    raise IndexError(f"{what} {position} belongs to no block")


_NAME = re.compile(r"^(?P<block>.+)\[(?P<position>\d*)\]$")


def blocks_from_names(names: list[str], kind_of: list[str] | None = None) -> tuple[Block, ...]:
    """Rebuild the block layout from names written as ``block[position]``.

    Names that do not follow that pattern (as in MIPLIB files) are kept as labels of one block
    per run of such names, called ``x`` for columns and ``c`` for rows by the caller.
    """
    blocks: list[Block] = []
    start = 0
    while start < len(names):
        match = _NAME.match(names[start])
        if match is None:
            stop = start
            while stop < len(names) and _NAME.match(names[stop]) is None:
                stop += 1
            kind = kind_of[start] if kind_of else "linear"
            labels = pd.Index(names[start:stop], dtype=object)
            blocks.append(Block("", start, stop, labels, kind))
            start = stop
            continue
        name = match["block"]
        kind = kind_of[start] if kind_of else "linear"
        if match["position"] == "":
            blocks.append(Block(name, start, start + 1, pd.Index([None], dtype=object), kind, True))
            start += 1
            continue
        stop = start
        while stop < len(names):
            m = _NAME.match(names[stop])
            if m is None or m["block"] != name or m["position"] != str(stop - start):
                break
            stop += 1
        blocks.append(Block(name, start, stop, pd.RangeIndex(stop - start), kind))
        start = stop
    return tuple(blocks)


@functools.cache
def _file_mode() -> int:
    """Mode of a new file under the process umask (``mkstemp`` alone gives 0600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def replace_atomically(tmp: str | os.PathLike[str], path: Path) -> None:
    """Give ``tmp`` the usual new-file mode and rename it over ``path``."""
    os.chmod(tmp, _file_mode())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        replace_atomically(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
