"""One validator for every schedule, exact or heuristic, of both models.

It looks only at the instance and the schedule and returns the list of violated invariants of
the design note (empty when the schedule is feasible):

Problem (i), ``block-exec``: one core per transaction; e = s + t and s >= 0; e_i <= s_j for every
conflict arc; disjoint intervals per core; at most p running at any instant; the per-key replay
check; max(CP, Wk/p, max t) <= C_max <= Wk (unit case max(L, ceil(n/p)) <= rounds <= n);
Graham's bound for list schedules; p = 1 list schedules equal the sequential time.

Problem (ii), ``block-build``: selected transactions have one core, 0 <= s and e <= B; same-core
and conflicting intervals are disjoint; sum t <= p B; unit case: integral rounds, at most R p
selected; reward at most the top R p weights (unit) or the fractional-knapsack bound; the block
order derived from the schedule passes every problem (i) check.
"""

from __future__ import annotations

import numpy as np

from gaplab.models.blockchain.graph import bounds, fractional_knapsack
from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.schedule import Schedule

MAX_REPORTED = 5
"""Examples listed per violated invariant."""


def validate(instance: BlockInstance, schedule: Schedule) -> list[str]:
    """Violated invariants of ``schedule`` on ``instance``; empty when it is feasible."""
    problems = _shape(instance, schedule)
    if problems:
        return problems
    if instance.problem == "block-exec":
        return validate_exec(instance, schedule)
    return validate_build(instance, schedule)


def _shape(instance: BlockInstance, schedule: Schedule) -> list[str]:
    n = instance.n
    if schedule.core.shape != (n,) or schedule.start.shape != (n,):
        return [
            f"schedule has {schedule.core.shape} cores and {schedule.start.shape} starts for "
            f"{n} transactions"
        ]
    out = []
    bad_core = (schedule.core < -1) | (schedule.core >= instance.cores)
    if bad_core.any():
        out.append(_examples(instance, bad_core, f"core outside -1..{instance.cores - 1}"))
    chosen = schedule.selected
    bad_start = chosen & ~(np.isfinite(schedule.start) & (schedule.start >= -_eps(instance)))
    if bad_start.any():
        out.append(_examples(instance, bad_start, "start time missing, negative or not finite"))
    return out


def _eps(instance: BlockInstance) -> float:
    return 1e-9 * max(1.0, float(instance.times.sum()))


def _examples(instance: BlockInstance, mask: np.ndarray, what: str) -> str:
    positions = np.flatnonzero(mask)
    shown = ", ".join(instance.ids[i] for i in positions[:MAX_REPORTED].tolist())
    more = f" and {positions.size - MAX_REPORTED} more" if positions.size > MAX_REPORTED else ""
    return f"{what}: {shown}{more}"


def _pairs(instance: BlockInstance, a: np.ndarray, b: np.ndarray, what: str) -> str:
    shown = ", ".join(
        f"{instance.ids[i]}/{instance.ids[j]}"
        for i, j in zip(a[:MAX_REPORTED].tolist(), b[:MAX_REPORTED].tolist(), strict=True)
    )
    more = f" and {a.size - MAX_REPORTED} more" if a.size > MAX_REPORTED else ""
    return f"{what}: {shown}{more}"


# ---------------------------------------------------------------------- shared checks


def _timing(instance: BlockInstance, schedule: Schedule, *, free_order: bool) -> list[str]:
    """Conflicts, same-core overlap and at most p running at once."""
    out = []
    eps = _eps(instance)
    s = schedule.start
    e = schedule.end(instance)
    chosen = schedule.selected
    graph = instance.graph

    both = chosen[graph.src] & chosen[graph.dst]
    a, b = graph.src[both], graph.dst[both]
    if free_order:
        clash = (e[a] > s[b] + eps) & (e[b] > s[a] + eps)
        if clash.any():
            out.append(_pairs(instance, a[clash], b[clash], "conflicting transactions overlap"))
    else:
        late = e[a] > s[b] + eps
        if late.any():
            out.append(
                _pairs(instance, a[late], b[late], "conflict order broken (i ends after j starts)")
            )

    idx = np.flatnonzero(chosen)
    order = idx[np.lexsort((s[idx], schedule.core[idx]))]
    same = schedule.core[order[1:]] == schedule.core[order[:-1]]
    overlap = same & (e[order[:-1]] > s[order[1:]] + eps)
    if overlap.any():
        k = np.flatnonzero(overlap)
        out.append(_pairs(instance, order[k], order[k + 1], "intervals overlap on one core"))

    # Sweep: at equal times ends come before starts.
    times = np.concatenate([e[idx] - eps, s[idx]])
    steps = np.concatenate([-np.ones(idx.size), np.ones(idx.size)])
    sweep = np.lexsort((steps, times))
    running = np.cumsum(steps[sweep])
    if running.size and running.max() > instance.cores:
        out.append(f"{int(running.max())} transactions run at once on {instance.cores} cores")

    if instance.unit:
        fractional = chosen & (np.abs(s - np.round(s)) > 1e-6)
        if fractional.any():
            out.append(_examples(instance, fractional, "unit-time start is not a whole round"))
    return out


def _replay(instance: BlockInstance, schedule: Schedule) -> list[str]:
    """Per key, in block order: each access starts after the last earlier writer ended, and
    each writer starts after every reader since the previous writer ended."""
    s = schedule.start
    e = schedule.end(instance)
    eps = _eps(instance)
    bad: list[str] = []
    for access in instance.graph.keys:
        members = np.concatenate([access.writers, access.readers])
        if members.size < 2:
            continue
        flags = np.concatenate(
            [np.ones(access.writers.size, bool), np.zeros(access.readers.size, bool)]
        )
        order = np.argsort(members, kind="stable")
        members, flags = members[order], flags[order]
        positions = np.arange(members.size)
        last_writer = np.maximum.accumulate(np.where(flags, positions, -1))
        prev_writer = np.r_[-1, last_writer[:-1]]
        has = prev_writer >= 0
        late = has & (e[members[np.maximum(prev_writer, 0)]] > s[members] + eps)
        next_writer = np.minimum.accumulate(np.where(flags, positions, members.size)[::-1])[::-1]
        following = np.r_[next_writer[1:], members.size]
        reader_late = (~flags) & (following < members.size)
        reader_late &= e[members] > s[members[np.minimum(following, members.size - 1)]] + eps
        if late.any() or reader_late.any():
            bad.append(access.key)
    if bad:
        shown = ", ".join(bad[:MAX_REPORTED])
        return [f"replay check fails on {len(bad)} key(s): {shown}"]
    return []


# ---------------------------------------------------------------------- problem (i)


def validate_exec(instance: BlockInstance, schedule: Schedule) -> list[str]:
    """Invariants of problem (i) on an ordered block."""
    out = []
    missing = ~schedule.selected
    if missing.any():
        out.append(_examples(instance, missing, "transaction has no core"))
        return out
    out += _timing(instance, schedule, free_order=False)
    out += _replay(instance, schedule)
    if instance.n == 0:
        return out

    b = bounds(instance)
    cmax = schedule.makespan(instance)
    tol = _eps(instance) + 1e-9 * cmax
    lower = b.makespan_lower
    if cmax < lower - tol:
        out.append(f"makespan {cmax:g} is below the lower bound {lower:g}")
    upper = float(instance.n) if instance.unit else b.work
    if cmax > upper + tol:
        out.append(f"makespan {cmax:g} exceeds the sequential time {upper:g}")
    if schedule.list_scheduled:
        if instance.unit:
            graham = instance.n / instance.cores + (1 - 1 / instance.cores) * b.chain_nodes
        else:
            graham = b.graham
        if cmax > graham + tol:
            out.append(f"list schedule makespan {cmax:g} exceeds Graham's bound {graham:g}")
        if instance.cores == 1 and abs(cmax - b.work) > tol:
            out.append(f"on one core the list schedule takes {cmax:g}, not Wk = {b.work:g}")
    return out


# ---------------------------------------------------------------------- problem (ii)


def validate_build(instance: BlockInstance, schedule: Schedule) -> list[str]:
    """Invariants of problem (ii) on a mempool with per-core limit B."""
    assert instance.budget is not None
    out = []
    eps = _eps(instance)
    chosen = schedule.selected
    e = schedule.end(instance)
    budget = float(instance.budget)
    over = chosen & (e > budget + eps)
    if over.any():
        out.append(_examples(instance, over, f"ends after the runtime limit B = {budget:g}"))
    out += _timing(instance, schedule, free_order=True)

    times = instance.times
    work = float(times[chosen].sum())
    if work > instance.cores * budget + eps:
        out.append(f"selected work {work:g} exceeds p B = {instance.cores * budget:g}")

    reward = schedule.reward(instance)
    weights = instance.rewards
    if instance.unit:
        rounds = instance.rounds
        if int(chosen.sum()) > rounds * instance.cores:
            out.append(f"{int(chosen.sum())} selected, more than R p = {rounds * instance.cores}")
        top = float(np.sort(weights)[::-1][: rounds * instance.cores].sum())
        if reward > top * (1 + 1e-9) + 1e-9:
            out.append(f"reward {reward:g} exceeds the sum of the top R p weights {top:g}")
    else:
        fits = times <= budget
        knapsack = fractional_knapsack(weights[fits], times[fits], instance.cores * budget)
        if reward > knapsack * (1 + 1e-9) + 1e-9:
            out.append(f"reward {reward:g} exceeds the fractional-knapsack bound {knapsack:g}")

    if not out and chosen.any():
        out += [f"derived block order: {v}" for v in _derived_order(instance, schedule)]
    return out


def _derived_order(instance: BlockInstance, schedule: Schedule) -> list[str]:
    """Sort the selection by start (ties by core, then id) and check it as problem (i)."""
    order = schedule.block_order()
    block = instance.with_changes(
        problem="block-exec",
        transactions=tuple(instance.transactions[i] for i in order.tolist()),
        budget=None,
    )
    derived = Schedule(schedule.core[order], schedule.start[order], schedule.method)
    return validate_exec(block, derived)


def is_valid(instance: BlockInstance, schedule: Schedule) -> bool:
    return not validate(instance, schedule)
