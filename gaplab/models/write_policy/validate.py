"""Independent validator: replays every logged action and checks the budget after each one.

The byte accounting here is written apart from :class:`MemoryStore` (it recomputes costs from
the JSON texts), so a defect in the store shows up as a disagreement instead of being repeated.
"""

from __future__ import annotations

import json
from typing import Any

from gaplab.models.write_policy.actions import Solution
from gaplab.models.write_policy.instance import Instance


def _text_bytes(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True))


def validate(instance: Instance, solution: Solution) -> list[str]:
    """Replay ``solution.actions`` from an empty memory and list every broken rule.

    For each action in order it checks that:

    - the step it was emitted at exists and never decreases;
    - a WRITE or MERGE stores the current step, once;
    - a MERGE target is a stored WRITE item with the same api, and the delta is non-empty;
    - an EXPIRE target is stored and older than the current step;
    - memory use stays at or below ``budget_bytes``.

    Returns an empty list when every check passes.
    """
    if not isinstance(solution, Solution):
        return [f"expected a write-policy Solution, got {type(solution).__name__}"]
    violations: list[str] = []
    budget = int(instance.budget_bytes)
    steps = instance.steps
    num_steps = len(steps)
    held: dict[int, tuple[str, int]] = {}
    used = 0
    last_at = -1

    for position, logged in enumerate(solution.actions):
        at, action = logged.at, logged.action
        where = f"action {position} ({action} at step {at})"
        if not 0 <= at < num_steps:
            violations.append(f"{where}: step {at} is not in the episode")
            continue
        if at < last_at:
            violations.append(f"{where}: emitted after an action of step {last_at}")
        last_at = max(last_at, at)

        if action.kind == "write" or action.kind == "merge":
            step = action.step
            assert step is not None
            if step != at:
                violations.append(f"{where}: stores step {step}, not the current step")
                continue
            if step in held:
                violations.append(f"{where}: step {step} is already in memory")
                continue
            if action.kind == "write":
                meta = instance.views[step]
                cost = _text_bytes(steps[step].observation) + _text_bytes(meta) + 48
                held[step] = ("write", cost)
            else:
                target = action.target
                assert target is not None
                if target not in held:
                    violations.append(f"{where}: target {target} is not in memory")
                    continue
                if held[target][0] != "write":
                    violations.append(f"{where}: target {target} is a delta (MERGE chain)")
                    continue
                old, new = steps[target].observation, steps[step].observation
                if old.get("api") != new.get("api"):
                    violations.append(f"{where}: api {new.get('api')!r} differs from the base's")
                    continue
                delta = {k: v for k, v in new.items() if k != "api" and old.get(k) != v}
                if not delta:
                    violations.append(f"{where}: empty delta")
                    continue
                cost = _text_bytes(delta) + 16
                held[step] = (f"merge:{target}", cost)
            used += cost
        elif action.kind == "expire":
            target = action.target
            assert target is not None
            if target not in held:
                violations.append(f"{where}: target {target} is not in memory")
                continue
            if target >= at:
                violations.append(f"{where}: target {target} is not older than the current step")
                continue
            used -= held.pop(target)[1]

        if used > budget:
            violations.append(f"{where}: {used} bytes in memory, above the budget of {budget}")
    return violations
