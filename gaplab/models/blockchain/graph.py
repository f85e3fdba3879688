"""The conflict graph from an inverted key index, its block-order DAG, and lower bounds.

Two transactions conflict when one writes a key the other reads or writes. The graph is built
from the index key -> writers and key -> readers: for every key, all writer-writer and
writer-reader pairs are emitted, stored as (min, max) and deduplicated. No pair of transactions
is compared unless they share a key, so the cost is the sum over keys of
``|writers| * (|writers| + |readers|)``, not n^2.

In block order every edge {i, j} with i < j is the arc i -> j, so the arcs form a DAG whose
topological order is the row order; all arcs are kept (no transitive reduction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from gaplab.models.blockchain.instance import BlockInstance, Transaction


@dataclass(frozen=True, eq=False)
class KeyAccess:
    """The transactions that touch one key with at least one writer among them."""

    key: str
    writers: np.ndarray
    readers: np.ndarray
    """Readers that do not also write the key."""


@dataclass(frozen=True, eq=False)
class ConflictGraph:
    """Undirected conflict graph over transaction positions 0..n-1.

    ``src[k] < dst[k]`` for every edge k, sorted by (src, dst); in problem (i) edge k is the arc
    src -> dst. ``succ(i)`` lists the later conflicting transactions, ``neighbours(i)`` all.
    """

    n: int
    src: np.ndarray
    dst: np.ndarray
    keys: tuple[KeyAccess, ...]

    @property
    def num_edges(self) -> int:
        return int(self.src.size)

    @cached_property
    def succ_ptr(self) -> np.ndarray:
        return np.searchsorted(self.src, np.arange(self.n + 1)).astype(np.int64)

    def succ(self, i: int) -> np.ndarray:
        """Later transactions that conflict with ``i`` (its successors in block order)."""
        return self.dst[self.succ_ptr[i] : self.succ_ptr[i + 1]]

    @cached_property
    def _pred_csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Predecessor lists, ascending: sorted by target, stable, so sources stay in order."""
        forward = sp.csr_matrix(
            (np.ones(self.num_edges, dtype=np.int8), self.dst, self.succ_ptr),
            shape=(self.n, self.n),
        )
        backward = forward.tocsc()  # a counting sort in C; row indices come out ascending
        return backward.indptr.astype(np.int64), backward.indices.astype(np.int64)

    @cached_property
    def _adjacency(self) -> tuple[np.ndarray, np.ndarray]:
        """Undirected CSR: for each i its predecessors, then its successors, both ascending."""
        n = self.n
        pred_ptr, preds = self._pred_csr
        pred_count = np.diff(pred_ptr)
        succ_count = np.diff(self.succ_ptr)
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(pred_count + succ_count, out=ptr[1:])
        idx = np.empty(2 * self.num_edges, dtype=np.int64)
        targets = np.repeat(np.arange(n), pred_count)
        rank = np.arange(targets.size) - pred_ptr[targets]
        idx[ptr[targets] + rank] = preds
        rank = np.arange(self.src.size) - self.succ_ptr[self.src]
        idx[ptr[self.src] + pred_count[self.src] + rank] = self.dst
        return ptr, idx

    def neighbours(self, i: int) -> np.ndarray:
        ptr, idx = self._adjacency
        return idx[ptr[i] : ptr[i + 1]]

    def pred(self, i: int) -> np.ndarray:
        """Earlier transactions that conflict with ``i`` (its predecessors in block order)."""
        row = self.neighbours(i)
        return row[: int(np.searchsorted(row, i))]

    @cached_property
    def degree(self) -> np.ndarray:
        return np.diff(self._adjacency[0])

    @cached_property
    def indegree(self) -> np.ndarray:
        return np.bincount(self.dst, minlength=self.n).astype(np.int64)

    @cached_property
    def outdegree(self) -> np.ndarray:
        return np.diff(self.succ_ptr)

    def has_edge(self, i: int, j: int) -> bool:
        a, b = (i, j) if i < j else (j, i)
        row = self.succ(a)
        pos = int(np.searchsorted(row, b))
        return pos < row.size and int(row[pos]) == b

    @cached_property
    def edge_codes(self) -> np.ndarray:
        """``src * n + dst`` per edge, sorted: membership tests for many pairs at once."""
        return self.src * self.n + self.dst

    def conflicting(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Boolean per pair (a[k], b[k]): do the two transactions conflict?"""
        lo = np.minimum(a, b).astype(np.int64)
        hi = np.maximum(a, b).astype(np.int64)
        codes = lo * self.n + hi
        pos = np.searchsorted(self.edge_codes, codes)
        pos = np.minimum(pos, max(0, self.edge_codes.size - 1))
        if self.edge_codes.size == 0:
            return np.zeros(codes.size, dtype=bool)
        return self.edge_codes[pos] == codes

    # ------------------------------------------------------------------ DAG levels

    @cached_property
    def sink_levels(self) -> tuple[np.ndarray, ...]:
        """Transactions grouped so that every successor of a group lies in an earlier group.

        Group 0 holds the sinks; group k the transactions whose longest path to a sink has k
        arcs. Used to compute bottom levels and volumes with one vectorized step per group.
        """
        ptr, idx = self._pred_csr
        remaining = self.outdegree.copy()
        frontier = np.flatnonzero(remaining == 0)
        levels = []
        while frontier.size:
            levels.append(frontier)
            preds = idx[_gather(ptr, frontier)]
            if preds.size == 0:
                break
            remaining -= np.bincount(preds, minlength=self.n)
            done = np.sort(preds[remaining[preds] == 0])
            frontier = done[np.r_[True, done[1:] != done[:-1]]] if done.size else done
        return tuple(levels)

    def _reduce_over_successors(self, times: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
        """value[i] = t_i + ufunc-reduce of value over the successors of i (sinks: t_i)."""
        value = np.array(times, dtype=float)
        for level in self.sink_levels[1:]:
            positions = _gather(self.succ_ptr, level)
            starts = np.cumsum(np.r_[0, self.outdegree[level][:-1]])
            value[level] = times[level] + ufunc.reduceat(value[self.dst[positions]], starts)
        return value

    def bottom_level(self, times: np.ndarray) -> np.ndarray:
        """h[i] = t_i + max over successors h[j]: the heaviest path starting at i."""
        return self._reduce_over_successors(times, np.maximum)

    def top_level(self, times: np.ndarray) -> np.ndarray:
        """Heaviest path ending at i, including t_i (earliest end time with unlimited cores)."""
        head = np.array(times, dtype=float)
        ptr, dst = self.succ_ptr, self.dst
        for i in range(self.n):
            lo, hi = ptr[i], ptr[i + 1]
            if hi > lo:
                targets = dst[lo:hi]
                np.maximum.at(head, targets, head[i] + times[targets])
        return head

    def volume(self, times: np.ndarray) -> np.ndarray:
        """vol[i] = t_i + sum over successors vol[j], in floats as the artifact computes it.

        It counts every path, so it can overflow to infinity on long hot-key chains; ties then
        fall through to the next key of the heuristic, as in the artifact.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            return self._reduce_over_successors(times, np.add)

    def descendants(self) -> list[int]:
        """Reachability as Python-int bitsets: bit j of ``desc[i]`` is set when i reaches j."""
        desc = [0] * self.n
        ptr, dst = self.succ_ptr, self.dst
        for i in range(self.n - 1, -1, -1):
            bits = 0
            for j in dst[ptr[i] : ptr[i + 1]].tolist():
                bits |= desc[j] | (1 << j)
            desc[i] = bits
        return desc


def build_conflict_graph(transactions: Sequence[Transaction]) -> ConflictGraph:
    """Build the conflict graph from the inverted index key -> (writers, readers)."""
    n = len(transactions)
    key_id: dict[str, int] = {}
    tx_col: list[int] = []
    key_col: list[int] = []
    write_col: list[bool] = []
    for i, tx in enumerate(transactions):
        for key in tx.writes:
            tx_col.append(i)
            key_col.append(key_id.setdefault(key, len(key_id)))
            write_col.append(True)
        for key in tx.reads - tx.writes:
            tx_col.append(i)
            key_col.append(key_id.setdefault(key, len(key_id)))
            write_col.append(False)
    txs = np.asarray(tx_col, dtype=np.int64)
    keys = np.asarray(key_col, dtype=np.int64)
    writes = np.asarray(write_col, dtype=bool)

    # Group the accesses by key; a stable sort keeps block order inside each group.
    order = np.argsort(keys, kind="stable")
    txs, keys, writes = txs[order], keys[order], writes[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.zeros(0, int)
    ends = np.r_[starts[1:], keys.size].astype(np.int64)
    writers_per_group = np.add.reduceat(writes.astype(np.int64), starts) if keys.size else starts
    useful = (writers_per_group > 0) & (ends - starts >= 2)

    names = list(key_id)
    accesses = []
    for g in np.flatnonzero(writers_per_group > 0):
        members, flags = txs[starts[g] : ends[g]], writes[starts[g] : ends[g]]
        accesses.append(KeyAccess(names[int(keys[starts[g]])], members[flags], members[~flags]))

    src, dst = _pairs_within_groups(txs, writes, starts[useful], ends[useful])
    codes = np.sort(src * max(n, 1) + dst)
    if codes.size:
        codes = codes[np.r_[True, codes[1:] != codes[:-1]]]
    return ConflictGraph(
        n=n,
        src=(codes // max(n, 1)).astype(np.int64),
        dst=(codes % max(n, 1)).astype(np.int64),
        keys=tuple(accesses),
    )


def _pairs_within_groups(
    txs: np.ndarray, writes: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (a, b), a before b, inside each group [start, end) with at least one writer."""
    if starts.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    sizes = ends - starts
    # Entry q of a group pairs with the entries after it in the same group.
    first_entry = np.repeat(starts, sizes) + _ranges(sizes)
    group_end = np.repeat(ends, sizes)
    counts = group_end - first_entry - 1
    a = np.repeat(first_entry, counts)
    b = a + 1 + _ranges(counts)
    keep = writes[a] | writes[b]
    return txs[a[keep]], txs[b[keep]]


def _gather(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions ptr[r]..ptr[r+1]-1 of every row r in ``rows``, concatenated."""
    counts = ptr[rows + 1] - ptr[rows]
    return np.repeat(ptr[rows], counts) + _ranges(counts)


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s) for every s in ``sizes``."""
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(total, dtype=np.int64) - offsets


# ---------------------------------------------------------------------- lower bounds


@dataclass(frozen=True)
class Bounds:
    """Lower bounds and reference values of problem (i), in runtime units.

    ``work`` is Wk = sum t (the sequential time), ``critical_path`` CP the heaviest path of the
    DAG, ``chain_nodes`` L its longest path in nodes, ``key_chain`` the heaviest set of
    transactions that all touch one key with a writer among them (a clique, so a chain in block
    order).
    """

    work: float
    critical_path: float
    chain_nodes: int
    max_time: float
    key_chain: float
    cores: int
    unit: bool

    @property
    def work_per_core(self) -> float:
        return self.work / self.cores

    @property
    def makespan_lower(self) -> float:
        """max(CP, Wk/p, max t, key chain); rounded up in the unit case."""
        value = max(self.critical_path, self.work_per_core, self.max_time, self.key_chain)
        return float(math.ceil(value - 1e-9)) if self.unit else value

    @property
    def graham(self) -> float:
        """Graham's list-scheduling bound Wk/p + (1 - 1/p) CP."""
        return self.work_per_core + (1.0 - 1.0 / self.cores) * self.critical_path


def bounds(instance: BlockInstance) -> Bounds:
    """Lower bounds of ``instance`` for problem (i) on its cores."""
    graph = instance.graph
    times = instance.times
    if instance.n == 0:
        return Bounds(0.0, 0.0, 0, 0.0, 0.0, instance.cores, instance.unit)
    h = graph.bottom_level(times)
    nodes = graph.bottom_level(np.ones(instance.n))
    key_chain = 0.0
    for access in graph.keys:
        extra = float(times[access.readers].max()) if access.readers.size else 0.0
        key_chain = max(key_chain, float(times[access.writers].sum()) + extra)
    return Bounds(
        work=float(times.sum()),
        critical_path=float(h.max()),
        chain_nodes=int(nodes.max()),
        max_time=float(times.max()),
        key_chain=key_chain,
        cores=instance.cores,
        unit=instance.unit,
    )


def fractional_knapsack(values: np.ndarray, weights: np.ndarray, capacity: float) -> float:
    """Greedy bound max sum v x, sum w x <= capacity, 0 <= x <= 1 (by value density)."""
    density = np.where(weights > 0, values / np.maximum(weights, 1e-300), np.inf)
    order = np.argsort(-density, kind="stable")
    total, room = 0.0, float(capacity)
    for k in order.tolist():
        if room <= 0:
            break
        take = min(1.0, room / weights[k]) if weights[k] > 0 else 1.0
        total += take * values[k]
        room -= take * weights[k]
    return total
