"""The action interface (SKIP, WRITE, MERGE, EXPIRE) and the Solution: a log of accepted actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("skip", "write", "merge", "expire")


class UnknownItemError(ValueError):
    """An action names a step outside the episode or a target that is not in memory."""


@dataclass(frozen=True)
class Action:
    """One memory action emitted by a policy at a step.

    - ``skip``: no fields.
    - ``write``: ``step`` is the step to store (an online policy may only store the current one).
    - ``merge``: ``step`` is stored as a delta against the base item ``target``.
    - ``expire``: removes the item ``target`` and frees exactly its cost.
    """

    kind: str
    step: int | None = None
    target: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown action kind {self.kind!r}; expected one of {KINDS}")
        needs_step = self.kind in ("write", "merge")
        needs_target = self.kind in ("merge", "expire")
        if needs_step != (self.step is not None):
            raise ValueError(
                f"a {self.kind} action {'needs' if needs_step else 'takes no'} step, "
                f"got step={self.step!r}"
            )
        if needs_target != (self.target is not None):
            raise ValueError(
                f"a {self.kind} action {'needs' if needs_target else 'takes no'} target, "
                f"got target={self.target!r}"
            )

    @classmethod
    def skip(cls) -> Action:
        return cls("skip")

    @classmethod
    def write(cls, step: int) -> Action:
        return cls("write", step=int(step))

    @classmethod
    def merge(cls, step: int, target: int) -> Action:
        return cls("merge", step=int(step), target=int(target))

    @classmethod
    def expire(cls, target: int) -> Action:
        return cls("expire", target=int(target))

    def __str__(self) -> str:
        if self.kind == "skip":
            return "SKIP"
        if self.kind == "write":
            return f"WRITE({self.step})"
        if self.kind == "merge":
            return f"MERGE({self.step} into {self.target})"
        return f"EXPIRE({self.target})"


@dataclass(frozen=True)
class LoggedAction:
    """An action together with the step ``at`` which the policy emitted it."""

    at: int
    action: Action

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at, "kind": self.action.kind}
        if self.action.step is not None:
            out["step"] = self.action.step
        if self.action.target is not None:
            out["target"] = self.action.target
        return out

    @classmethod
    def from_json(cls, raw: Any, position: int = 0) -> LoggedAction:
        if not isinstance(raw, Mapping) or "at" not in raw or "kind" not in raw:
            raise ValueError(
                f"actions[{position}] must be an object with 'at' and 'kind', got {raw!r}"
            )
        try:
            action = Action(str(raw["kind"]), raw.get("step"), raw.get("target"))
        except ValueError as error:
            raise ValueError(f"actions[{position}]: {error}") from error
        return cls(int(raw["at"]), action)


@dataclass(frozen=True)
class Solution:
    """What a policy or an exact model did on one episode.

    ``actions`` contains every accepted action in order, so replaying it from an empty memory
    rebuilds the final memory. SKIPs are not logged. The counters cover every action the policy
    emitted, accepted or not.
    """

    method: str
    actions: tuple[LoggedAction, ...]
    emitted_writes: int = 0
    emitted_expires: int = 0
    rejected: int = 0
    """Actions the store rejected (budget, age or MERGE rules); they changed nothing."""
    peak_bytes: int = 0
    """Largest memory use observed after any action."""

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "actions": [a.to_json() for a in self.actions],
            "emitted_writes": self.emitted_writes,
            "emitted_expires": self.emitted_expires,
            "rejected": self.rejected,
            "peak_bytes": self.peak_bytes,
        }

    @classmethod
    def from_json(cls, data: Any) -> Solution:
        if not isinstance(data, Mapping) or not isinstance(data.get("actions"), list):
            raise ValueError("a solution must be an object with a list 'actions'")
        return cls(
            method=str(data.get("method", "unknown")),
            actions=tuple(LoggedAction.from_json(a, i) for i, a in enumerate(data["actions"])),
            emitted_writes=int(data.get("emitted_writes", 0)),
            emitted_expires=int(data.get("emitted_expires", 0)),
            rejected=int(data.get("rejected", 0)),
            peak_bytes=int(data.get("peak_bytes", 0)),
        )


def plan_solution(method: str, bases: list[int], merges: list[tuple[int, int]]) -> Solution:
    """Turn a hindsight selection into an action log that writes each item at its own step.

    ``bases`` are steps stored by WRITE, ``merges`` pairs ``(t, p)`` stored as deltas against
    base ``p``. Nothing is expired, so memory only grows and stays within the budget whenever
    the final selection does.
    """
    by_step: list[LoggedAction] = [LoggedAction(t, Action.write(t)) for t in bases]
    by_step += [LoggedAction(t, Action.merge(t, p)) for t, p in merges]
    by_step.sort(key=lambda item: item.at)
    return Solution(method=method, actions=tuple(by_step), emitted_writes=len(bases))
