"""Online write policies for the write-policy model, each scored by replay against the optimum.

The baselines come from WritePolicyBench: ``no_mem``, ``fifo_store_all``, ``uniform_sample``,
``last_kb``, ``merge_aggressive``, and on the privileged track ``priority_threshold`` and
``priority_greedy``. ``window_exact`` is gaplab's own policy. Whenever the arriving step does
not fit, it solves a small knapsack exactly over the window of items in memory plus the
arriving step, and keeps the best set.

Every policy sees one step at a time (observation, the track's metadata, the WRITE cost) and a
read-only view of memory; none sees utilities or critical steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from gaplab.models.write_policy.actions import Action, Solution
from gaplab.models.write_policy.costs import merge_cost, merge_delta
from gaplab.models.write_policy.generator import BURSTY_MODES, REDUNDANT_MODES, StreamConfig
from gaplab.models.write_policy.instance import Instance
from gaplab.sim.write_policy import MemoryView, StepView, run_policy

logger = logging.getLogger(__name__)


class OnlinePolicy:
    """Base class: a named policy with per-episode state cleared by :meth:`reset`."""

    name = "policy"
    privileged = False
    """True when the policy needs the ``priority`` of the privileged track."""

    def reset(self, budget_bytes: int, track: str) -> None:
        self.budget_bytes = budget_bytes
        self.track = track
        if self.privileged and track != "privileged":
            logger.info(
                "%s reads the priority of the privileged track, but the track is %r; it sees "
                "priority 0 on every step",
                self.name,
                track,
            )

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        raise NotImplementedError


def _expire_oldest_until(
    memory: MemoryView, needed: int, keep: int | None = None
) -> list[Action] | None:
    """EXPIREs of the oldest items (never ``keep``) until ``needed`` bytes are free, or None."""
    if needed > memory.budget_bytes:
        return None
    free = memory.remaining_bytes
    actions: list[Action] = []
    for item in memory.items():
        if free >= needed:
            break
        if item.t == keep:
            continue
        actions.append(Action.expire(item.t))
        free += item.cost
    return actions if free >= needed else None


class NoMemory(OnlinePolicy):
    """SKIP every step."""

    name = "no_mem"

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        return [Action.skip()]


class FifoStoreAll(OnlinePolicy):
    """WRITE every step that fits; once memory is full, skip the rest."""

    name = "fifo_store_all"

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        if view.write_cost <= memory.remaining_bytes:
            return [Action.write(view.t)]
        return [Action.skip()]


class UniformSample(OnlinePolicy):
    """WRITE every ``every``-th step when it fits (every 10th in WritePolicyBench)."""

    name = "uniform_sample"

    def __init__(self, every: int = 10) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.every = every

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        if view.t % self.every == 0 and view.write_cost <= memory.remaining_bytes:
            return [Action.write(view.t)]
        return [Action.skip()]


def _quirky_expiry(memory: MemoryView, needed: int) -> list[Action] | None:
    """Return the EXPIREs of WritePolicyBench's eviction loop, or None when memory is empty.

    That loop names the same oldest item on every pass, so it frees at most one item. The store
    then rejects the action that still does not fit.
    """
    if needed <= memory.remaining_bytes:
        return []
    items = memory.items()
    return [Action.expire(items[0].t)] if items else None


def _last_kb_actions(view: StepView, memory: MemoryView, quirks: bool = False) -> list[Action]:
    if quirks:
        expires = _quirky_expiry(memory, view.write_cost)
    else:
        expires = _expire_oldest_until(memory, view.write_cost)
    if expires is None:
        return [Action.skip()]
    return [*expires, Action.write(view.t)]


class LastKiB(OnlinePolicy):
    """Keep a window of the most recent bytes: EXPIRE the oldest items until the step fits.

    With ``reference_quirks=True`` the eviction repeats WritePolicyBench's loop, which frees at
    most the single oldest item per step; this reproduces that benchmark's published numbers.
    """

    name = "last_kb"

    def __init__(self, reference_quirks: bool = False) -> None:
        self.quirks = reference_quirks

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        return _last_kb_actions(view, memory, self.quirks)


class PriorityThreshold(OnlinePolicy):
    """WRITE every step whose priority exceeds ``theta`` (the store rejects what does not fit)."""

    name = "priority_threshold"
    privileged = True

    def __init__(self, theta: float = 0.5) -> None:
        self.theta = theta

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        if float(view.metadata.get("priority", 0.0)) > self.theta:
            return [Action.write(view.t)]
        return [Action.skip()]


class PriorityGreedy(OnlinePolicy):
    """WRITE if it fits; otherwise, if the step outranks the lowest stored priority, EXPIRE the
    lowest-priority items (oldest first among ties) until it fits."""

    name = "priority_greedy"
    privileged = True

    def reset(self, budget_bytes: int, track: str) -> None:
        super().reset(budget_bytes, track)
        self.priority: dict[int, float] = {}

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        incoming = float(view.metadata.get("priority", 0.0))
        if view.write_cost <= memory.remaining_bytes:
            self.priority[view.t] = incoming
            return [Action.write(view.t)]
        items = memory.items()
        if not items or incoming <= min(self.priority[it.t] for it in items):
            return [Action.skip()]
        free = memory.remaining_bytes
        actions: list[Action] = []
        for item in sorted(items, key=lambda it: (self.priority[it.t], it.t)):
            actions.append(Action.expire(item.t))
            free += item.cost
            if free >= view.write_cost:
                self.priority[view.t] = incoming
                return [*actions, Action.write(view.t)]
        return [Action.skip()]


class MergeAggressive(OnlinePolicy):
    """MERGE into the newest stored base with the same api, else act like ``last_kb``.

    A legal MERGE first expires the oldest other items until the delta fits. An exact repeat of
    the stored base (an empty delta) is skipped.

    With ``reference_quirks=True`` it behaves as WritePolicyBench's version: at most the oldest
    item is expired per step (even when it is the MERGE target, which then fails), and repeats
    are sent as MERGEs with an empty delta, which the store rejects.
    """

    name = "merge_aggressive"

    def __init__(self, reference_quirks: bool = False) -> None:
        self.quirks = reference_quirks

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        if self.quirks:
            return self._quirky_step(view, memory)
        target = self._newest_base(view, memory)
        if target is None:
            return _last_kb_actions(view, memory)
        cost = memory.merge_cost(view.observation, target)
        if cost is None:
            return [Action.skip()]
        expires = _expire_oldest_until(memory, cost, keep=target)
        if expires is None:
            return [Action.skip()]
        return [*expires, Action.merge(view.t, target)]

    def _quirky_step(self, view: StepView, memory: MemoryView) -> list[Action]:
        target = self._newest_base(view, memory)
        if target is None:
            return _last_kb_actions(view, memory, quirks=True)
        base = memory.observation(target)
        delta = merge_delta(base, view.observation)
        expires = _quirky_expiry(memory, merge_cost(delta))
        if expires is None:
            return [Action.skip()]
        if expires and expires[0].target == target:
            return expires
        return [*expires, Action.merge(view.t, target)]

    @staticmethod
    def _newest_base(view: StepView, memory: MemoryView) -> int | None:
        api = view.observation.get("api")
        for item in reversed(memory.items()):
            if item.kind == "write" and memory.observation(item.t).get("api") == api:
                return item.t
        return None


class UtilityEstimator:
    """Estimate of a step's hidden utility from the policy's view of the step.

    On the privileged track the estimate is ``6 * priority``. On the unprivileged track it
    uses the stream's rules: drift raises an endpoint's version, so a step whose version is
    above every version seen so far for its endpoint is a drift step, worth 5 (6 inside a
    burst window of a bursty mode); any other step is worth 1, or 0.5 after the first step in
    the redundancy modes. The table of highest versions (one integer per endpoint) lives
    outside the byte budget.
    """

    def __init__(self, track: str, config: StreamConfig | None = None) -> None:
        self.track = track
        self.config = config or StreamConfig()
        self.highest: dict[str, int] = {}

    def __call__(self, view: StepView) -> float:
        if self.track == "privileged" and "priority" in view.metadata:
            return 6.0 * float(view.metadata["priority"])
        mode = str(view.metadata.get("mode", "default"))
        api = str(view.observation.get("api", ""))
        endpoint = api.rsplit(".", 1)[-1]
        version = int(view.observation.get("version", 1))
        drift = version > self.highest.get(endpoint, 1)
        self.highest[endpoint] = max(version, self.highest.get(endpoint, 1))
        if drift:
            return 6.0 if mode in BURSTY_MODES and self.config.in_burst(view.t) else 5.0
        return 0.5 if mode in REDUNDANT_MODES and view.t > 0 else 1.0


class WindowExact(OnlinePolicy):
    """gaplab's policy: re-optimize the window of memory plus the arriving step exactly.

    The arriving step is stored as a delta when a stored base with the same api admits a legal
    MERGE (same utility, fewer bytes), else as a WRITE. If it fits, it is stored. If not, the
    policy finds, by dynamic programming over the byte deficit, the stored items whose expiry
    makes room while losing the least estimated utility. It expires them and stores the step
    only when that loss is below the step's own estimated utility. A base is expired
    together with its deltas, and deltas whose base is gone (worth nothing) go first. Ties in
    utility are broken towards leaving more bytes free (``byte_value`` per byte).
    """

    name = "window_exact"

    def __init__(self, byte_value: float = 1e-4) -> None:
        self.byte_value = byte_value

    def reset(self, budget_bytes: int, track: str) -> None:
        super().reset(budget_bytes, track)
        self.estimate = UtilityEstimator(track)
        self.value: dict[int, float] = {}

    def step(self, view: StepView, memory: MemoryView) -> list[Action]:
        utility = self.estimate(view)
        items = memory.items()
        stored = {it.t for it in items}
        target, cost = None, view.write_cost
        for item in reversed(items):
            if item.kind != "write":
                continue
            merge = memory.merge_cost(view.observation, item.t)
            if merge is not None and merge < cost:
                target, cost = item.t, merge
        store = Action.write(view.t) if target is None else Action.merge(view.t, target)
        if cost > memory.budget_bytes:
            return [Action.skip()]
        if cost <= memory.remaining_bytes:
            self.value[view.t] = utility
            return [store]

        # Each expiry option costs its utility minus byte_value per byte it frees, so among sets
        # that lose the same utility the one leaving more free bytes wins. With the default 1e-4
        # and options of a few hundred bytes the adjustment stays below 0.1, under the smallest
        # utility step of 0.5, so it only breaks ties.
        groups = [
            [(freed, lost - self.byte_value * freed, steps) for freed, lost, steps in options]
            for options in self._groups(items, stored, target)
        ]
        loss, dropped = _min_loss_cover(groups, cost - memory.remaining_bytes)
        if dropped is None or loss >= utility - self.byte_value * cost:
            return [Action.skip()]
        self.value[view.t] = utility
        return [*(Action.expire(t) for t in sorted(dropped)), store]

    def _groups(
        self, items: list[Any], stored: set[int], target: int | None
    ) -> list[list[tuple[int, float, list[int]]]]:
        """Expiry options per group: (bytes freed, utility lost, steps expired)."""
        children: dict[int, list[Any]] = {}
        groups: list[list[tuple[int, float, list[int]]]] = []
        for item in items:
            if item.kind == "merge":
                if item.parent in stored:
                    children.setdefault(item.parent, []).append(item)
                else:
                    groups.append([(item.cost, 0.0, [item.t])])
        for item in items:
            if item.kind != "write":
                continue
            kids = sorted(
                children.get(item.t, []), key=lambda c: self.value.get(c.t, 0.0) / max(c.cost, 1)
            )
            options: list[tuple[int, float, list[int]]] = []
            freed, lost, steps = 0, 0.0, list[int]()
            for kid in kids:
                freed += kid.cost
                lost += self.value.get(kid.t, 0.0)
                steps = [*steps, kid.t]
                options.append((freed, lost, steps))
            if item.t != target:
                options.append(
                    (freed + item.cost, lost + self.value.get(item.t, 0.0), [*steps, item.t])
                )
            if options:
                groups.append(options)
        return groups


def _min_loss_cover(
    groups: list[list[tuple[int, float, list[int]]]], deficit: int
) -> tuple[float, list[int] | None]:
    """Pick at most one option per group so that the bytes freed reach ``deficit`` with the least
    utility lost (a multiple-choice covering knapsack, solved exactly over 0..deficit bytes).

    ``best[j]`` is the least loss that frees ``j`` bytes, where ``j = deficit`` stands for
    "at least ``deficit``"; each option shifts the table by the bytes it frees.
    """
    best = np.full(deficit + 1, np.inf)
    best[0] = 0.0
    choices: list[tuple[np.ndarray, np.ndarray]] = []
    for options in groups:
        new = best.copy()
        option_of = np.full(deficit + 1, -1, dtype=np.int64)
        source_of = np.arange(deficit + 1, dtype=np.int64)
        for k, (freed, lost, _) in enumerate(options):
            if freed < deficit:
                # Exact targets r = j + freed below the deficit.
                shifted = best[: deficit - freed] + lost
                better = shifted < new[freed:deficit]
                new[freed:deficit][better] = shifted[better]
                option_of[freed:deficit][better] = k
                source_of[freed:deficit][better] = np.flatnonzero(better)
            # Every j from deficit - freed upwards reaches the capped target.
            low = max(0, deficit - freed)
            j = low + int(np.argmin(best[low:]))
            if best[j] + lost < new[deficit]:
                new[deficit] = best[j] + lost
                option_of[deficit] = k
                source_of[deficit] = j
        choices.append((option_of, source_of))
        best = new
    if not np.isfinite(best[deficit]):
        return np.inf, None

    dropped: list[int] = []
    state = deficit
    for options, (option_of, source_of) in zip(reversed(groups), reversed(choices), strict=True):
        k = int(option_of[state])
        if k < 0:
            continue
        dropped += options[k][2]
        state = int(source_of[state])
    return float(best[deficit]), dropped


POLICIES: dict[str, Callable[[], OnlinePolicy]] = {
    "no_mem": NoMemory,
    "fifo_store_all": FifoStoreAll,
    "uniform_sample": UniformSample,
    "last_kb": LastKiB,
    "priority_threshold": PriorityThreshold,
    "priority_greedy": PriorityGreedy,
    "merge_aggressive": MergeAggressive,
    "window_exact": WindowExact,
}
"""Every online policy by name."""

PRIVILEGED_POLICIES = frozenset({"priority_threshold", "priority_greedy"})


def run(name: str, instance: Instance) -> Solution:
    """Run the policy ``name`` online on ``instance`` and return its accepted actions."""
    if name not in POLICIES:
        raise KeyError(f"unknown write policy {name!r}; known: {', '.join(POLICIES)}")
    return run_policy(instance, POLICIES[name]())
