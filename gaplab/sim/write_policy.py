"""Online replay of write policies: feed the stream step by step and apply their actions.

At step t a policy receives only the observation, the track's view of the metadata, its
WRITE cost and a read-only view of memory. Utilities and critical steps stay hidden. The
runner applies every emitted action through :class:`MemoryStore`, which rejects any action that
would pass the budget, and records the accepted ones as the Solution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from gaplab.models.write_policy.actions import Action, LoggedAction, Solution
from gaplab.models.write_policy.costs import merge_cost, merge_delta, merge_rejection
from gaplab.models.write_policy.instance import Instance
from gaplab.models.write_policy.store import Item, MemoryStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepView:
    """The policy's view of one step."""

    t: int
    observation: dict[str, Any]
    metadata: dict[str, Any]
    """The track's view: ``mode`` and, on the privileged track, ``priority``."""
    write_cost: int
    """Bytes a WRITE of this step would take."""


class MemoryView:
    """Read-only view of the store for a policy: items, bytes and stored observations."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @property
    def budget_bytes(self) -> int:
        return self._store.budget_bytes

    @property
    def used_bytes(self) -> int:
        return self._store.used_bytes

    @property
    def remaining_bytes(self) -> int:
        return self._store.remaining_bytes

    def items(self) -> list[Item]:
        """Items oldest first."""
        return self._store.items()

    def observation(self, t: int) -> dict[str, Any]:
        """Observation of a stored step (a policy may read what it stored, nothing else)."""
        if t not in self._store:
            raise KeyError(f"step {t} is not in memory")
        return self._store.instance.steps[t].observation

    def merge_cost(self, observation: dict[str, Any], target: int) -> int | None:
        """Bytes of storing ``observation`` as a delta against stored base ``target``.

        Returns ``None`` when the MERGE is not legal (different api, empty delta, or the target
        is not a stored base).
        """
        item = self._store.get(target)
        if item is None or item.kind != "write":
            return None
        base = self._store.instance.steps[target].observation
        if merge_rejection(base, observation) is not None:
            return None
        return merge_cost(merge_delta(base, observation))


class Policy(Protocol):
    """An online write policy: ``reset`` before an episode, then ``step`` once per step."""

    name: str

    def reset(self, budget_bytes: int, track: str) -> None: ...

    def step(self, view: StepView, memory: MemoryView) -> list[Action]: ...


class BudgetExceededError(RuntimeError):
    """Memory use passed the budget; the store should make this impossible."""


def run_policy(instance: Instance, policy: Policy) -> Solution:
    """Run ``policy`` online over the episode and return the log of accepted actions.

    Raises
    ------
    BudgetExceededError
        If memory use ever passes the budget after an action (a defect of the store).
    """
    store = MemoryStore(instance)
    memory = MemoryView(store)
    policy.reset(instance.budget_bytes, instance.track)
    log: list[LoggedAction] = []
    writes = expires = rejected = 0
    for step in instance.steps:
        view = StepView(
            step.t, step.observation, instance.views[step.t], int(instance.costs[step.t])
        )
        for action in policy.step(view, memory):
            writes += action.kind == "write"
            expires += action.kind == "expire"
            decision = store.apply(action, now=step.t)
            if not decision.accepted:
                rejected += 1
                logger.debug(
                    "%s: %s at step %d rejected: %s", policy.name, action, step.t, decision.reason
                )
            elif action.kind != "skip":
                log.append(LoggedAction(step.t, action))
            if store.used_bytes > store.budget_bytes:
                raise BudgetExceededError(
                    f"{policy.name}: {store.used_bytes} bytes in memory after {action} at step "
                    f"{step.t}, above the budget of {store.budget_bytes} bytes"
                )
    return Solution(
        method=policy.name,
        actions=tuple(log),
        emitted_writes=writes,
        emitted_expires=expires,
        rejected=rejected,
        peak_bytes=store.peak_bytes,
    )
