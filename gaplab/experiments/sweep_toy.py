"""A small generalized assignment model for testing and measuring sweeps.

Importing this module registers the model ``sweep-toy-gap``. It lives outside
``gaplab/models/`` on purpose, so it never joins ``gaplab run``; a sweep spec loads it with
``imports: [gaplab.experiments.sweep_toy]``.

The instance has items and agents: assigning item ``i`` to agent ``a`` costs ``cost[a, i]`` and
uses ``weight[a, i]`` of the agent's capacity. Every item goes to exactly one agent and the total
cost is minimized.

Besides the ``greedy`` heuristic, the model has heuristics that misbehave on purpose, so that
tests can check how a sweep records failures. ``fail`` raises and ``crash`` ends its process with
``os._exit``. ``crash-once`` does the same only while the file named by the environment variable
``GAPLAB_SWEEP_TOY_MARKER`` does not exist yet, and creates it. ``hang`` sleeps for an hour.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.modeling import Model
from gaplab.models.registry import ModelSpec, SuiteInstance, get_model, register
from gaplab.solvers.result import Result, SolveOptions

NAME = "sweep-toy-gap"
MARKER_VARIABLE = "GAPLAB_SWEEP_TOY_MARKER"
SIZES = {"tiny": (6, 2), "small": (15, 3), "medium": (30, 5), "large": (60, 8)}
"""Size name to (items, agents)."""


@dataclass(frozen=True)
class GapInstance:
    """A generalized assignment instance: costs and weights are agents by items."""

    cost: tuple[tuple[float, ...], ...]
    weight: tuple[tuple[float, ...], ...]
    capacity: tuple[float, ...]

    @property
    def items(self) -> int:
        return len(self.cost[0])

    @property
    def agents(self) -> int:
        return len(self.capacity)

    def to_json(self) -> dict[str, Any]:
        return {
            "cost": [list(r) for r in self.cost],
            "weight": [list(r) for r in self.weight],
            "capacity": list(self.capacity),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GapInstance:
        cost = tuple(tuple(float(v) for v in row) for row in data["cost"])
        weight = tuple(tuple(float(v) for v in row) for row in data["weight"])
        capacity = tuple(float(v) for v in data["capacity"])
        if len(cost) != len(capacity) or len(weight) != len(capacity):
            raise ValueError(
                f"cost and weight need one row per agent ({len(capacity)} capacities), got "
                f"{len(cost)} and {len(weight)} rows"
            )
        return cls(cost, weight, capacity)


def generate(seed: int = 0, size: str = "small", tightness: float = 0.9) -> GapInstance:
    """Draw a random instance; ``tightness`` scales the capacities (smaller is harder)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    if not 0 < tightness <= 1:
        raise ValueError(f"tightness must be in (0, 1], got {tightness!r}")
    items, agents = SIZES[size]
    rng = np.random.default_rng(seed)
    weight = rng.integers(5, 26, size=(agents, items)).astype(float)
    cost = rng.integers(10, 51, size=(agents, items)).astype(float)
    # The capacities add up to ``tightness`` times the average total weight of the items. Smaller
    # values make instances harder, and at 0.8 some tiny instances are already infeasible.
    capacity = np.floor(tightness * weight.sum(axis=1) / agents)
    return GapInstance(
        tuple(map(tuple, cost.tolist())),
        tuple(map(tuple, weight.tolist())),
        tuple(capacity.tolist()),
    )


def solve_exact(instance: GapInstance, backend: str, options: SolveOptions) -> tuple[Result, Any]:
    """Build and solve the assignment MILP; the solution is the agent of each item."""
    cost = np.asarray(instance.cost)
    weight = np.asarray(instance.weight)
    m = Model(NAME)
    agent = m.index("agent", range(instance.agents))
    item = m.index("item", range(instance.items))
    x = m.binary("x", agent, item)
    m.subject_to("assign", x.sum("agent") == 1)
    m.subject_to("capacity", (x * weight).sum("item") <= np.asarray(instance.capacity))
    m.minimize((x * cost).sum())

    from gaplab.solvers import get_backend

    result = get_backend(backend).solve(m.compile(), options)
    if result.x is None:
        return result, None
    chosen = np.asarray(result.x).reshape(instance.agents, instance.items).argmax(axis=0)
    return result, tuple(int(a) for a in chosen)


def greedy(instance: GapInstance) -> tuple[int, ...]:
    """Assign items one at a time, the item with the largest regret first.

    The desirability of agent ``a`` for item ``i`` is ``cost[a, i] * weight[a, i]`` (smaller is
    better), which trades cost against the capacity an assignment uses. An item's regret is the
    gap between its best and second-best desirability among the agents that still have room for
    it, and an item that fits one agent only goes first. An item that fits nowhere goes to the
    agent where it weighs least, which makes the solution invalid.
    """
    cost = np.asarray(instance.cost)
    weight = np.asarray(instance.weight)
    desirability = cost * weight
    room = np.asarray(instance.capacity, dtype=float).copy()
    chosen = [-1] * instance.items
    open_items = set(range(instance.items))
    while open_items:
        best_item, best_agent, best_regret = -1, -1, -np.inf
        for i in sorted(open_items):
            fits = np.flatnonzero(weight[:, i] <= room)
            if len(fits) == 0:
                agent, regret = int(np.argmin(weight[:, i])), np.inf
            else:
                ranked = fits[np.argsort(desirability[fits, i], kind="stable")]
                agent = int(ranked[0])
                regret = (
                    desirability[ranked[1], i] - desirability[agent, i]
                    if len(ranked) > 1
                    else np.inf
                )
            if regret > best_regret:
                best_item, best_agent, best_regret = i, agent, regret
        room[best_agent] -= weight[best_agent, best_item]
        chosen[best_item] = best_agent
        open_items.remove(best_item)
    return tuple(chosen)


def validate(instance: GapInstance, solution: tuple[int, ...]) -> list[str]:
    """List capacity overruns and malformed assignments; empty when feasible."""
    if len(solution) != instance.items:
        return [f"solution assigns {len(solution)} items, the instance has {instance.items}"]
    problems = []
    load = [0.0] * instance.agents
    for i, a in enumerate(solution):
        if not 0 <= a < instance.agents:
            problems.append(f"item {i} goes to unknown agent {a}")
            continue
        load[a] += instance.weight[a][i]
    for a, used in enumerate(load):
        if used > instance.capacity[a] + 1e-9:
            problems.append(
                f"agent {a} carries {used:g}, above its capacity {instance.capacity[a]:g}"
            )
    return problems


def evaluate(instance: GapInstance, solution: tuple[int, ...]) -> float:
    """Total assignment cost."""
    return float(sum(instance.cost[a][i] for i, a in enumerate(solution)))


def _fail(instance: GapInstance) -> tuple[int, ...]:
    raise RuntimeError(f"heuristic 'fail' always raises (instance with {instance.items} items)")


def _crash(instance: GapInstance) -> tuple[int, ...]:
    os._exit(3)


def _crash_once(instance: GapInstance) -> tuple[int, ...]:
    marker = os.environ.get(MARKER_VARIABLE)
    if marker and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(3)
    return greedy(instance)


def _hang(instance: GapInstance) -> tuple[int, ...]:
    time.sleep(3600)
    return greedy(instance)


def _load(path: Path) -> GapInstance:
    return GapInstance.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def _dump(instance: GapInstance, path: Path) -> None:
    from gaplab.models.registry import write_json_atomic

    write_json_atomic(Path(path), instance.to_json())


def _suite(quick: bool, data_dir: Path | None) -> list[SuiteInstance]:
    return [SuiteInstance(f"seed{s}", generate(seed=s, size="tiny")) for s in range(2)]


SPEC = ModelSpec(
    name=NAME,
    summary="generalized assignment (toy model for sweep tests and benchmarks)",
    sense="min",
    objective_name="assignment cost",
    load=_load,
    generate=generate,
    exact={"milp": solve_exact},
    heuristics={
        "greedy": greedy,
        "fail": _fail,
        "crash": _crash,
        "crash-once": _crash_once,
        "hang": _hang,
    },
    validate=validate,
    evaluate=evaluate,
    dump=_dump,
    suite=_suite,
    sizes=tuple(SIZES),
)

# A second import of this module (for example after importlib.reload) finds the first spec.
try:
    register(SPEC)
except ValueError:
    if get_model(NAME).summary != SPEC.summary:
        raise
