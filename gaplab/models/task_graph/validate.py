"""Independent validator of task-graph schedules; it looks only at the instance and the schedule."""

from __future__ import annotations

import math

import numpy as np

from gaplab.models.task_graph.instance import Instance
from gaplab.models.task_graph.schedule import Schedule

TOLERANCE = 1e-6
"""Relative tolerance of time comparisons, scaled by ``max(1, largest time)``."""


def validate(instance: Instance, schedule: Schedule, limit: int = 20) -> list[str]:
    """List the violated invariants of ``schedule``; empty when it is feasible.

    Checks one node per task, release times (no task before its graph's arrival), precedence
    with transfer delays ``d_pt / b_uv`` and one task at a time per node. From the placement
    history it also checks that every placement starts at or after the arrival at which it was
    decided, and that a task was only moved while it had not started. At most ``limit``
    messages are returned.
    """
    flat = instance.flat
    n = flat.size
    errors: list[str] = []
    if len(schedule.node) != n or len(schedule.start) != n:
        return [
            f"schedule has {len(schedule.node)} nodes and {len(schedule.start)} starts for "
            f"{n} tasks"
        ]
    node = np.asarray(schedule.node, dtype=np.int64)
    start = np.asarray(schedule.start, dtype=float)
    num_nodes = len(instance.network.speeds)
    if ((node < 0) | (node >= num_nodes)).any():
        t = int(np.flatnonzero((node < 0) | (node >= num_nodes))[0])
        return [f"task {flat.labels[t]} is on node {node[t]}, outside 0..{num_nodes - 1}"]
    if not np.isfinite(start).all():
        t = int(np.flatnonzero(~np.isfinite(start))[0])
        return [f"task {flat.labels[t]} has start time {start[t]}"]
    finish = schedule.finish(instance)
    tol = TOLERANCE * max(1.0, float(np.abs(finish).max()))

    def add(message: str) -> bool:
        errors.append(message)
        return len(errors) >= limit

    # Release: no task before its graph arrives.
    for t in np.flatnonzero(start < flat.arrival - tol).tolist():
        if add(
            f"task {flat.labels[t]} starts at {start[t]:.6g} before its graph arrives at "
            f"{flat.arrival[t]:.6g}"
        ):
            return errors

    # Precedence with transfer delays.
    inv = instance.network.inverse_bandwidth
    src, dst = flat.edge_src, flat.edge_dst
    ready = finish[src] + flat.edge_data * inv[node[src], node[dst]]
    for k in np.flatnonzero(start[dst] < ready - tol):
        p, t = int(src[k]), int(dst[k])
        if add(
            f"task {flat.labels[t]} starts at {start[t]:.6g} before its input from "
            f"{flat.labels[p]} is there at {ready[k]:.6g}"
        ):
            return errors

    # One task at a time per node: sort by (node, start, finish) and compare neighbours.
    order = np.lexsort((finish, start, node))
    same = node[order][1:] == node[order][:-1]
    overlap = same & (start[order][1:] < finish[order][:-1] - tol)
    for k in np.flatnonzero(overlap):
        a, b = int(order[k]), int(order[k + 1])
        if add(
            f"tasks {flat.labels[a]} [{start[a]:.6g}, {finish[a]:.6g}) and {flat.labels[b]} "
            f"[{start[b]:.6g}, {finish[b]:.6g}) overlap on node {node[a]}"
        ):
            return errors

    errors.extend(_check_history(instance, schedule, tol, limit - len(errors)))
    return errors[:limit]


def _check_history(instance: Instance, schedule: Schedule, tol: float, limit: int) -> list[str]:
    """Check the re-plan history: no placement in the past, no started task moved."""
    if not schedule.history or limit <= 0:
        return []
    flat = instance.flat
    arrivals = {float(g.arrival) for g in instance.graphs}
    last: dict[int, tuple[float, int, float]] = {}
    errors: list[str] = []
    previous_decision = -math.inf
    for p in schedule.history:
        label = flat.labels[p.task] if 0 <= p.task < flat.size else p.task
        if p.decided < previous_decision:
            errors.append(f"placement history is not in decision order at task {label}")
        previous_decision = p.decided
        if p.decided not in arrivals:
            errors.append(f"task {label} was placed at time {p.decided:.6g}, which is no arrival")
        if p.decided < flat.arrival[p.task] - tol:
            errors.append(f"task {label} was placed at {p.decided:.6g}, before its graph arrived")
        if p.start < p.decided - tol:
            errors.append(
                f"task {label} was placed at {p.decided:.6g} to start in the past at {p.start:.6g}"
            )
        if p.task in last:
            _, node0, start0 = last[p.task]
            moved = node0 != p.node or abs(start0 - p.start) > tol
            if moved and start0 < p.decided - tol:
                errors.append(
                    f"task {label} was moved at {p.decided:.6g} although it started at {start0:.6g}"
                )
        last[p.task] = (p.decided, p.node, p.start)
        if len(errors) >= limit:
            return errors[:limit]
    for t in range(flat.size):
        if t not in last:
            errors.append(f"task {flat.labels[t]} has no placement in the history")
            continue
        _, v, s = last[t]
        if v != schedule.node[t] or abs(s - schedule.start[t]) > tol:
            errors.append(
                f"task {flat.labels[t]}: the last placement (node {v}, start {s:.6g}) differs "
                f"from the schedule (node {schedule.node[t]}, start {schedule.start[t]:.6g})"
            )
        if len(errors) >= limit:
            break
    return errors[:limit]
