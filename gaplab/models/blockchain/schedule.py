"""The one solution type of both models: a core and a start time per transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaplab.models.blockchain.instance import BlockInstance

NOT_SELECTED = -1


@dataclass(frozen=True, eq=False)
class Schedule:
    """Cores and start times, by transaction position in the instance.

    ``core[i]`` is a core in ``0..p-1``, or ``-1`` when transaction i is not selected (only
    ``block-build`` leaves transactions out). ``start[i]`` is in runtime units (gas, or rounds
    counted from 0 in the homogeneous workload, so round r starts at r - 1) and NaN when not
    selected. Every exact model and every heuristic returns this type.
    """

    core: np.ndarray
    start: np.ndarray
    method: str = ""
    list_scheduled: bool = False
    """True for non-idling list schedules, to which Graham's bound applies."""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "core", np.asarray(self.core, dtype=np.int64))
        object.__setattr__(self, "start", np.asarray(self.start, dtype=float))

    @property
    def selected(self) -> np.ndarray:
        return self.core >= 0

    def end(self, instance: BlockInstance) -> np.ndarray:
        return self.start + instance.times

    def makespan(self, instance: BlockInstance) -> float:
        """C_max = max end time over selected transactions (0 for an empty schedule)."""
        mask = self.selected
        if not mask.any():
            return 0.0
        return float((self.start[mask] + instance.times[mask]).max())

    def reward(self, instance: BlockInstance) -> float:
        """Total reward of the selected transactions, in gwei."""
        return float(instance.rewards[self.selected].sum())

    def block_order(self) -> np.ndarray:
        """Positions of the selected transactions sorted by (start, core, position)."""
        chosen = np.flatnonzero(self.selected)
        order = np.lexsort((chosen, self.core[chosen], self.start[chosen]))
        return chosen[order]

    def to_dict(self, instance: BlockInstance) -> dict[str, Any]:
        rows = []
        for i in self.block_order().tolist():
            rows.append(
                {
                    "id": instance.ids[i],
                    "core": int(self.core[i]),
                    "start": float(self.start[i]),
                    "end": float(self.start[i] + instance.times[i]),
                }
            )
        return {
            "method": self.method,
            "makespan": self.makespan(instance),
            "reward": self.reward(instance),
            "selected": int(self.selected.sum()),
            "schedule": rows,
        }


def from_rounds(rounds: np.ndarray, method: str, *, list_scheduled: bool = False) -> Schedule:
    """Unit-time schedule from 1-based rounds (0 = not selected); cores fill in position order."""
    rounds = np.asarray(rounds, dtype=np.int64)
    core = np.full(rounds.size, NOT_SELECTED, dtype=np.int64)
    chosen = np.flatnonzero(rounds > 0)
    order = chosen[np.lexsort((chosen, rounds[chosen]))]
    if order.size:
        r = rounds[order]
        first = np.r_[True, r[1:] != r[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))
        core[order] = np.arange(order.size) - group_start
    start = np.where(rounds > 0, rounds - 1, np.nan).astype(float)
    return Schedule(core, start, method, list_scheduled)


def left_shift(
    instance: BlockInstance,
    core: np.ndarray,
    sequence: np.ndarray,
    *,
    free_order: bool,
    method: str,
) -> Schedule:
    """Earliest start times that keep a given core assignment and sequence.

    ``sequence`` lists the selected transactions in the order of their (approximate) start
    times. Each one starts when its core is free and every conflicting transaction earlier in
    the sequence has ended: in block order only (``free_order=False``, problem (i)) or any
    earlier one (``free_order=True``, problem (ii)). Used to turn a solver's floating-point
    times into exact ones; no time gets later than in any schedule with the same sequence.
    """
    times = instance.times
    graph = instance.graph
    start = np.full(instance.n, np.nan)
    end = np.zeros(instance.n)
    placed = np.zeros(instance.n, dtype=bool)
    free = np.zeros(instance.cores)
    for i in np.asarray(sequence, dtype=np.int64).tolist():
        earliest = free[core[i]]
        others = graph.neighbours(i) if free_order else graph.pred(i)
        done = others[placed[others]]
        if done.size:
            earliest = max(earliest, float(end[done].max()))
        start[i] = earliest
        end[i] = earliest + times[i]
        free[core[i]] = end[i]
        placed[i] = True
    out_core = np.where(placed, core, NOT_SELECTED)
    return Schedule(out_core, start, method)
