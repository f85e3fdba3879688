"""Heuristics and baselines for ``block-exec`` and ``block-build``; each returns a Schedule.

Problem (i), ordered block on p cores, minimum makespan:

- :func:`h1_time` and :func:`h1_unit`: critical-path list scheduling (priority: bottom level,
  then path volume, then out-degree, then block position), heterogeneous and unit times.
- :func:`sol_batches`: the declared-access batch baseline Sol (a), and :func:`sol_declared`,
  Sol (b), which first coarsens every key to a write.
- :func:`sequential`: one core in block order, the reference for speedups.

Problem (ii), mempool with per-core limit B, maximum reward:

- :func:`h2_unit`: per round, a greedy maximal independent set of at most p transactions by
  w / (deg + 1), with degrees updated as transactions are selected.
- :func:`h2_time`: event-driven greedy by density (w / t) / (deg + 1) with static degrees.
- :func:`reward_greedy` (RG): the same feasibility rules with the priority (-w, id), or by tip
  per gas with ``by="tip"``.

All are deterministic; ties break by block position. The rules follow the design note, section
4, which follows the authors' artifact; Sol and RG are reconstructions (design choices).
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

from gaplab.models.blockchain.graph import ConflictGraph
from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.schedule import NOT_SELECTED, Schedule, from_rounds

# ---------------------------------------------------------------------- problem (i)


def _priority_rank(graph: ConflictGraph, times: np.ndarray) -> np.ndarray:
    """Rank of each transaction under the key (-h, -vol, -outdeg, +id); 0 goes first."""
    h = graph.bottom_level(times)
    vol = graph.volume(times)
    ids = np.arange(graph.n)
    order = np.lexsort((ids, -graph.outdegree, -vol, -h))
    rank = np.empty(graph.n, dtype=np.int64)
    rank[order] = ids
    return rank


def h1_time(instance: BlockInstance) -> Schedule:
    """Critical-path list scheduling with heterogeneous times (H1-time).

    Non-idling: whenever a core is free and a transaction is ready (all its conflicting
    predecessors in block order have finished), the ready transaction with the best priority
    starts. Completions are processed one at a time, smallest end then smallest position, with
    a fill of the free cores after each, as the artifact does.
    """
    graph = instance.graph
    times = instance.times
    n, p = instance.n, instance.cores
    rank = _priority_rank(graph, times)
    indeg = graph.indegree.copy()
    ready = [(int(rank[i]), i) for i in np.flatnonzero(indeg == 0).tolist()]
    heapq.heapify(ready)
    free = deque(range(p))
    running: list[tuple[float, int]] = []
    start = np.zeros(n)
    core = np.zeros(n, dtype=np.int64)
    now = 0.0

    def fill() -> None:
        while ready and free:
            _, i = heapq.heappop(ready)
            c = free.popleft()
            start[i] = now
            core[i] = c
            heapq.heappush(running, (now + float(times[i]), i))

    fill()
    while running:
        now, j = heapq.heappop(running)
        free.append(int(core[j]))
        succ = graph.succ(j)
        if succ.size:
            indeg[succ] -= 1
            for k in succ[indeg[succ] == 0].tolist():
                heapq.heappush(ready, (int(rank[k]), k))
        fill()
    return Schedule(core, start, "h1-time", list_scheduled=True)


def h1_unit(instance: BlockInstance) -> Schedule:
    """Critical-path list scheduling in rounds of unit time (H1-unit).

    Each round takes the best min(p, ready) transactions; their successors become ready from
    the next round on. On a heterogeneous workload the rounds run with a barrier between them,
    each lasting its longest member (a valid schedule, though not a list schedule).
    """
    graph = instance.graph
    n, p = instance.n, instance.cores
    rank = _priority_rank(graph, np.ones(n))
    indeg = graph.indegree.copy()
    ready = [(int(rank[i]), i) for i in np.flatnonzero(indeg == 0).tolist()]
    heapq.heapify(ready)
    rounds = np.zeros(n, dtype=np.int64)
    r = 0
    while ready:
        r += 1
        picked = [heapq.heappop(ready)[1] for _ in range(min(p, len(ready)))]
        rounds[picked] = r
        for u in picked:
            succ = graph.succ(u)
            if succ.size:
                indeg[succ] -= 1
                for k in succ[indeg[succ] == 0].tolist():
                    heapq.heappush(ready, (int(rank[k]), k))
    if instance.unit:
        return from_rounds(rounds, "h1-unit", list_scheduled=True)
    return _barrier_rounds(instance, from_rounds(rounds, "h1-unit"))


def _barrier_rounds(instance: BlockInstance, unit: Schedule) -> Schedule:
    """Stretch a round schedule to real times: round r starts when round r - 1 has ended."""
    rounds = unit.start.astype(np.int64)
    length = np.zeros(int(rounds.max()) + 1 if rounds.size else 0)
    np.maximum.at(length, rounds, instance.times)
    offsets = np.concatenate([[0.0], np.cumsum(length)[:-1]])
    return Schedule(unit.core, offsets[rounds], unit.method)


def h1(instance: BlockInstance) -> Schedule:
    """H1-unit on a homogeneous workload, H1-time otherwise."""
    return h1_unit(instance) if instance.unit else h1_time(instance)


def sequential(instance: BlockInstance) -> Schedule:
    """Every transaction on core 0 in block order: the sequential execution."""
    times = instance.times
    start = np.concatenate([[0.0], np.cumsum(times)[:-1]]) if instance.n else np.zeros(0)
    return Schedule(np.zeros(instance.n, dtype=np.int64), start, "sequential")


def sol_batches(instance: BlockInstance, *, declared: bool = False) -> Schedule:
    """Sol (a): batches with a barrier between them.

    Scan the block in order; a transaction joins the current batch when it conflicts with
    nothing in it (unit case: and the batch has fewer than p members), otherwise it opens the
    next batch. A batch lasts max t when it has at most p members, else its LPT makespan. With
    ``declared=True`` every key counts as a write (Sol (b)).

    The conflict test uses the key index directly: per key, the last batch that wrote it and
    the last batch that read it, so no pair of transactions is ever compared.
    """
    n, p = instance.n, instance.cores
    times = instance.times
    batch = np.zeros(n, dtype=np.int64)
    members: list[list[int]] = []
    last_write: dict[str, int] = {}
    last_read: dict[str, int] = {}
    current = -1
    for j, tx in enumerate(instance.transactions):
        writes = tx.writes | tx.reads if declared else tx.writes
        reads = frozenset() if declared else tx.reads - tx.writes
        fits = current >= 0 and not (
            any(last_write.get(k) == current or last_read.get(k) == current for k in writes)
            or any(last_write.get(k) == current for k in reads)
        )
        if fits and instance.unit and len(members[current]) >= p:
            fits = False
        if not fits:
            members.append([])
            current += 1
        members[current].append(j)
        batch[j] = current
        for k in writes:
            last_write[k] = current
        for k in reads:
            last_read[k] = current
    method = "sol-declared" if declared else "sol"
    if instance.unit:
        return from_rounds(batch + 1, method)

    start = np.zeros(n)
    core = np.zeros(n, dtype=np.int64)
    clock = 0.0
    for group in members:
        if len(group) <= p:
            core[group] = np.arange(len(group))
            start[group] = clock
            clock += float(times[group].max())
            continue
        loads = [(0.0, c) for c in range(p)]
        for j in sorted(group, key=lambda i: (-times[i], i)):
            load, c = heapq.heappop(loads)
            core[j], start[j] = c, clock + load
            heapq.heappush(loads, (load + float(times[j]), c))
        clock += max(end for end, _ in loads)
    return Schedule(core, start, method)


def sol_declared(instance: BlockInstance) -> Schedule:
    """Sol (b): batches on coarse declared access, every key treated as a write."""
    return sol_batches(instance, declared=True)


# ---------------------------------------------------------------------- problem (ii)


def _rounds_greedy(instance: BlockInstance, method: str, by: str) -> Schedule:
    """Shared round loop of H2-unit (``by="score"``) and round-based RG."""
    graph = instance.graph
    n, p = instance.n, instance.cores
    w = instance.rewards
    ids = np.arange(n)
    deg = graph.degree.astype(float)
    tips = np.array([tx.tip for tx in instance.transactions])
    selected = np.zeros(n, dtype=bool)
    blocked_in = np.zeros(n, dtype=np.int64)
    rounds = np.zeros(n, dtype=np.int64)
    for r in range(1, instance.rounds + 1):
        rem = np.flatnonzero(~selected)
        if rem.size == 0:
            break
        if by == "score":
            primary = w[rem] / (deg[rem] + 1.0)
            keys: tuple[np.ndarray, ...] = (ids[rem], deg[rem], -w[rem], -primary)
        elif by == "tip":
            primary = tips[rem]
            keys = (ids[rem], -primary)
        else:
            primary = w[rem]
            keys = (ids[rem], -primary)
        picks = _greedy_independent(graph, rem, primary, keys, p, blocked_in, r)
        if not picks:
            break
        rounds[picks] = r
        selected[picks] = True
        if by == "score":
            for u in picks:
                v = graph.neighbours(u)
                v = v[~selected[v]]
                deg[v] -= 1
    return from_rounds(rounds, method)


def _greedy_independent(
    graph: ConflictGraph,
    rem: np.ndarray,
    primary: np.ndarray,
    keys: tuple[np.ndarray, ...],
    p: int,
    blocked_in: np.ndarray,
    r: int,
) -> list[int]:
    """Scan ``rem`` in the order of ``keys`` (np.lexsort keys, ``primary`` descending first)
    and pick up to p that are not neighbours of an earlier pick.

    Only the best few candidates are sorted: every entry whose primary key ties or beats the
    K-th best, so the order among them is the full lexicographic order. K doubles until p
    picks are found or ``rem`` is exhausted.
    """
    picks: list[int] = []
    seen = 0
    take = min(rem.size, 8 * p + 64)
    while True:
        if take < rem.size:
            threshold = np.partition(primary, rem.size - take)[rem.size - take]
            part = np.flatnonzero(primary >= threshold)
        else:
            part = np.arange(rem.size)
        order = rem[part[np.lexsort(tuple(k[part] for k in keys))]]
        for i in order[seen:].tolist():
            if len(picks) == p:
                return picks
            if blocked_in[i] == r:
                continue
            picks.append(i)
            blocked_in[graph.neighbours(i)] = r
        seen = order.size
        if len(picks) == p or order.size == rem.size:
            return picks
        take = min(rem.size, 2 * take)


def _event_greedy(instance: BlockInstance, order: np.ndarray, method: str) -> Schedule:
    """Shared event loop of H2-time and time-based RG over a fixed priority ``order``."""
    assert instance.budget is not None
    graph = instance.graph
    n, p = instance.n, instance.cores
    budget = float(instance.budget)
    times = instance.times
    t_order = times[order]
    scheduled = np.zeros(n, dtype=bool)
    running_nbrs = np.zeros(n, dtype=np.int64)
    start = np.full(n, np.nan)
    core = np.full(n, NOT_SELECTED, dtype=np.int64)
    running: list[tuple[float, int, int]] = []
    idle = [True] * p

    def next_feasible(now: float) -> int:
        mask = ~scheduled[order] & (now + t_order <= budget) & (running_nbrs[order] == 0)
        if not mask.any():
            return -1
        return int(order[int(np.argmax(mask))])

    def begin(i: int, c: int, now: float) -> None:
        scheduled[i] = True
        start[i], core[i] = now, c
        idle[c] = False
        running_nbrs[graph.neighbours(i)] += 1
        heapq.heappush(running, (now + float(times[i]), i, c))

    for c in range(p):
        i = next_feasible(0.0)
        if i < 0:
            break
        begin(i, c, 0.0)
    now = 0.0
    while True:
        if not running:
            i = next_feasible(now)
            if i < 0:
                break
            begin(i, idle.index(True), now)
            continue
        tn = running[0][0]
        if tn >= budget:
            break
        now = tn
        while running and running[0][0] == tn:
            _, j, c = heapq.heappop(running)
            idle[c] = True
            running_nbrs[graph.neighbours(j)] -= 1
        for c in range(p):
            if not idle[c]:
                continue
            i = next_feasible(now)
            if i < 0:
                break
            begin(i, c, now)
    return Schedule(core, start, method)


def h2_unit(instance: BlockInstance) -> Schedule:
    """H2-unit: R rounds, each a greedy independent set of at most p by w / (deg + 1)."""
    if not instance.unit:
        raise ValueError(
            f"h2-unit needs unit times; instance {instance.name!r} has a heterogeneous workload. "
            "Use h2-time (or h2, which picks by workload)"
        )
    return _rounds_greedy(instance, "h2-unit", "score")


def h2_time(instance: BlockInstance) -> Schedule:
    """H2-time: greedy by (w / t) / (deg + 1) with static degrees, in time up to B."""
    graph = instance.graph
    w, t = instance.rewards, instance.times
    deg = graph.degree.astype(float)
    rho = w / t
    sigma = rho / (deg + 1.0)
    order = np.lexsort((np.arange(instance.n), deg, -w, -rho, -sigma))
    return _event_greedy(instance, order, "h2-time")


def h2(instance: BlockInstance) -> Schedule:
    """H2-unit on a homogeneous workload, H2-time otherwise."""
    return h2_unit(instance) if instance.unit else h2_time(instance)


def reward_greedy(instance: BlockInstance, by: str = "reward") -> Schedule:
    """RG: the H2 feasibility rules with the priority (-w, id), or (-tip per gas, id).

    ``by`` is ``"reward"`` (the note's reading) or ``"tip"`` (Ethereum's default ordering).
    """
    if by not in ("reward", "tip"):
        raise ValueError(f"by is {by!r}; expected 'reward' or 'tip'")
    method = "rg" if by == "reward" else "rg-tip"
    if instance.unit:
        return _rounds_greedy(instance, method, by)
    key = instance.rewards if by == "reward" else np.array([tx.tip for tx in instance.transactions])
    order = np.lexsort((np.arange(instance.n), -key))
    return _event_greedy(instance, order, method)


def reward_greedy_tip(instance: BlockInstance) -> Schedule:
    """RG ordered by tip per gas."""
    return reward_greedy(instance, by="tip")
