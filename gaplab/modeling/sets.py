"""Labelled index sets, the dimensions over which variables and expressions are declared."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd


class AlignmentError(ValueError):
    """Two operands are indexed by different sets and were not aligned explicitly."""


class IndexSet:
    """A named, ordered set of unique labels.

    Labels may come from a ``range``, a list or tuple, a ``pandas.Index`` or a
    ``pandas.MultiIndex`` (whose labels are tuples). Two sets are the same dimension when they
    have the same name and the same labels in the same order.

    Examples
    --------
    >>> IndexSet("core", range(2))
    IndexSet('core', 2 labels: [0, 1])
    """

    __slots__ = ("name", "index")

    def __init__(self, name: str, labels: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an index set needs a non-empty string name, got {name!r}")
        index = _to_index(name, labels)
        if not index.is_unique:
            duplicated = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(
                f"index set {name!r} has duplicate labels {duplicated}; labels must be unique"
            )
        self.name = name
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.index)

    def __repr__(self) -> str:
        shown = self.index[:5].tolist()
        more = ", ..." if len(self.index) > 5 else ""
        body = ", ".join(repr(v) for v in shown)
        return f"IndexSet({self.name!r}, {len(self)} labels: [{body}{more}])"

    def same_as(self, other: IndexSet) -> bool:
        """True when both sets have the same name and labels, so they align by position."""
        if self is other:
            return True
        return self.name == other.name and self.index.equals(other.index)

    def positions(self, labels: Any) -> np.ndarray:
        """Return the positions of ``labels`` in this set; raise ``KeyError`` for unknown ones."""
        if isinstance(labels, IndexSet):
            labels = labels.index
        wanted = labels if isinstance(labels, pd.Index) else _label_array(labels)
        positions = self.index.get_indexer(wanted)
        if (positions < 0).any():
            missing = pd.Index(wanted)[positions < 0].unique()[:5].tolist()
            raise KeyError(
                f"labels {missing} are not in index set {self.name!r} ({len(self)} labels)"
            )
        return positions.astype(np.int64, copy=False)

    def describe(self) -> str:
        """Short description used in error messages: name, size and first labels."""
        return repr(self)


def _label_array(labels: Any) -> Any:
    if isinstance(labels, pd.Series):
        return pd.Index(labels.to_numpy())
    if isinstance(labels, np.ndarray):
        return labels
    if isinstance(labels, (list, tuple)):
        if labels and all(isinstance(v, tuple) for v in labels):
            return pd.MultiIndex.from_tuples(labels)
        return pd.Index(labels)
    return pd.Index(list(labels))


def _to_index(name: str, labels: Any) -> pd.Index:
    if isinstance(labels, IndexSet):
        index = labels.index
    elif isinstance(labels, pd.Index):
        index = labels
    elif isinstance(labels, range):
        index = pd.RangeIndex(labels.start, labels.stop, labels.step)
    elif isinstance(labels, int) and not isinstance(labels, bool):
        if labels < 0:
            raise ValueError(f"index set {name!r} cannot have {labels} labels")
        index = pd.RangeIndex(labels)
    elif isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise TypeError(
            f"labels of index set {name!r} must be a range, list, tuple, numpy array or "
            f"pandas Index, got {type(labels).__name__}"
        )
    else:
        items = labels.tolist() if isinstance(labels, np.ndarray) else list(labels)
        if items and all(isinstance(v, tuple) for v in items):
            index = pd.MultiIndex.from_tuples(items)
        else:
            index = pd.Index(items)
    if isinstance(index, pd.MultiIndex):
        return index
    return index.rename(name)


def product_labels(sets: tuple[IndexSet, ...]) -> pd.Index:
    """Labels of the product of ``sets`` in row-major order (the layout of every block)."""
    if not sets:
        return pd.Index([None], dtype=object)
    if len(sets) == 1:
        return sets[0].index
    return pd.MultiIndex.from_product([s.index for s in sets], names=[s.name for s in sets])
