"""The memory store: applies actions under the hard byte budget, with no partial writes.

Every check of an action runs before the store changes, so a rejected action leaves memory
exactly as it was. A correct online policy may break the budget, the age rule of EXPIRE or the
MERGE rules, and such actions are rejected with a reason. An action that names a step outside
the episode, or a target that is not in memory, raises :class:`UnknownItemError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gaplab.models.write_policy.actions import Action, UnknownItemError
from gaplab.models.write_policy.costs import merge_cost, merge_delta, merge_rejection
from gaplab.models.write_policy.instance import Instance

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One item in memory: a WRITE base or a MERGE delta against ``parent``."""

    t: int
    kind: str
    cost: int
    """Bytes the item occupies; EXPIRE frees exactly this."""
    parent: int | None = None


@dataclass(frozen=True)
class Decision:
    """Outcome of one action: accepted, or rejected with the reason."""

    accepted: bool
    reason: str = ""


ACCEPTED = Decision(True)


class MemoryStore:
    """External memory of one episode with a hard budget of ``instance.budget_bytes`` bytes.

    Examples
    --------
    >>> inst = Instance.generate(0, budget_kib=1)
    >>> store = MemoryStore(inst)
    >>> store.apply(Action.write(0), now=0).accepted
    True
    >>> store.used_bytes == int(inst.costs[0])
    True
    """

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.budget_bytes = int(instance.budget_bytes)
        self.used_bytes = 0
        self.peak_bytes = 0
        self._items: dict[int, Item] = {}

    # ------------------------------------------------------------------ queries

    @property
    def remaining_bytes(self) -> int:
        return self.budget_bytes - self.used_bytes

    def items(self) -> list[Item]:
        """Items in the order they were stored (oldest first)."""
        return list(self._items.values())

    def get(self, t: int) -> Item | None:
        return self._items.get(t)

    def __contains__(self, t: object) -> bool:
        return t in self._items

    def __len__(self) -> int:
        return len(self._items)

    def retained_steps(self) -> list[int]:
        """The retained set W: bases, and deltas whose base is still in memory."""
        kept = []
        for item in self._items.values():
            if item.kind == "write" or (item.parent is not None and item.parent in self._items):
                kept.append(item.t)
        return sorted(kept)

    def merge_cost_of(self, step: int, target: int) -> int | None:
        """Bytes of storing ``step`` as a delta against ``target``, or ``None`` if not legal."""
        base = self.instance.steps[target].observation
        new = self.instance.steps[step].observation
        if merge_rejection(base, new) is not None:
            return None
        return merge_cost(merge_delta(base, new))

    # ------------------------------------------------------------------ actions

    def apply(self, action: Action, now: int) -> Decision:
        """Apply ``action`` emitted at step ``now``; return whether it was accepted and why not.

        Raises
        ------
        UnknownItemError
            When ``now`` or ``action.step`` is not a step of the episode, or when the target
            of a MERGE or EXPIRE is not in memory.
        """
        self._check_step(now, "the current step")
        if action.kind == "skip":
            return ACCEPTED
        if action.kind == "write":
            assert action.step is not None
            return self._write(action.step, now)
        if action.kind == "merge":
            assert action.step is not None and action.target is not None
            return self._merge(action.step, action.target, now)
        assert action.target is not None
        return self._expire(action.target, now)

    def _check_step(self, t: int, what: str) -> None:
        if not 0 <= t < self.instance.num_steps:
            raise UnknownItemError(
                f"{what} is step {t}, which is not in the episode (steps 0 to "
                f"{self.instance.num_steps - 1})"
            )

    def _check_target(self, action: str, target: int, now: int) -> Item:
        item = self._items.get(target)
        if item is None:
            held = ", ".join(str(t) for t in list(self._items)[:8]) or "none"
            raise UnknownItemError(
                f"{action} at step {now} refers to item {target}, which is not in memory (items "
                f"held: {held}); refer only to items that a WRITE or MERGE stored and that were "
                "not expired"
            )
        return item

    def _admit(self, step: int, now: int, cost: int) -> Decision | None:
        """Shared checks of WRITE and MERGE; ``None`` when the item may be stored."""
        self._check_step(step, "the stored step")
        if step != now:
            return Decision(False, f"step {step} is not the current step {now}")
        if step in self._items:
            return Decision(False, f"step {step} is already in memory")
        if self.used_bytes + cost > self.budget_bytes:
            return Decision(
                False,
                f"{cost} bytes do not fit: {self.used_bytes} of {self.budget_bytes} bytes used",
            )
        return None

    def _store(self, item: Item) -> Decision:
        self._items[item.t] = item
        self.used_bytes += item.cost
        self.peak_bytes = max(self.peak_bytes, self.used_bytes)
        return ACCEPTED

    def _write(self, step: int, now: int) -> Decision:
        cost = int(self.instance.costs[step]) if 0 <= step < self.instance.num_steps else 0
        refusal = self._admit(step, now, cost)
        if refusal is not None:
            return refusal
        return self._store(Item(step, "write", cost))

    def _merge(self, step: int, target: int, now: int) -> Decision:
        self._check_step(step, "the stored step")
        base = self._check_target("MERGE", target, now)
        if base.kind != "write":
            return Decision(
                False, f"target {target} is itself a delta; MERGE chains are not allowed"
            )
        why = merge_rejection(
            self.instance.steps[target].observation, self.instance.steps[step].observation
        )
        if why is not None:
            return Decision(False, f"MERGE of {step} into {target}: {why}")
        cost = merge_cost(
            merge_delta(
                self.instance.steps[target].observation, self.instance.steps[step].observation
            )
        )
        refusal = self._admit(step, now, cost)
        if refusal is not None:
            return refusal
        return self._store(Item(step, "merge", cost, parent=target))

    def _expire(self, target: int, now: int) -> Decision:
        item = self._check_target("EXPIRE", target, now)
        if target >= now:
            return Decision(False, f"EXPIRE({target}) at step {now}: the target must be older")
        del self._items[target]
        self.used_bytes -= item.cost
        return ACCEPTED
