"""The generalized assignment problem: a model defined in code, used by the run's solver
check and by the build-time benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaplab.modeling import Model


@dataclass(frozen=True)
class GapData:
    """Items ``i`` go to exactly one machine ``j``; ``weight[i, j]`` counts against the
    machine's ``capacity[j]`` and ``cost[i, j]`` is paid."""

    weight: np.ndarray
    cost: np.ndarray
    capacity: np.ndarray

    @property
    def items(self) -> int:
        return int(self.weight.shape[0])

    @property
    def machines(self) -> int:
        return int(self.weight.shape[1])


def generate_gap(items: int, machines: int, seed: int = 0, slack: float = 1.6) -> GapData:
    """Random instance with integer weights 5..24, costs 10..49, capacities ``slack`` times the
    average load per machine (larger ``slack`` makes the problem easier)."""
    if items < 1 or machines < 1:
        raise ValueError(f"need at least one item and one machine, got {items} x {machines}")
    rng = np.random.default_rng(seed)
    weight = rng.integers(5, 25, size=(items, machines)).astype(float)
    cost = rng.integers(10, 50, size=(items, machines)).astype(float)
    capacity = np.full(machines, np.ceil(slack * weight.mean() * items / machines))
    return GapData(weight, cost, capacity)


def build_gap(data: GapData, name: str = "gap") -> Model:
    """Minimize assignment cost, each item on one machine, machine loads within capacity."""
    m = Model(name)
    item = m.index("item", range(data.items))
    machine = m.index("machine", range(data.machines))
    x = m.binary("x", item, machine)
    m.subject_to("assign", x.sum("machine") == 1)
    m.subject_to("capacity", (x * data.weight).sum("item") <= data.capacity)
    m.minimize((x * data.cost).sum())
    return m


def greedy_gap(data: GapData) -> np.ndarray | None:
    """Regret greedy: place items in order of the cost gap between their two cheapest feasible
    machines. Returns the machine of each item, or ``None`` when it gets stuck."""
    remaining = data.capacity.astype(float).copy()
    assignment = np.full(data.items, -1)
    unassigned = set(range(data.items))
    while unassigned:
        best_item, best_machine, best_regret = -1, -1, -np.inf
        for i in unassigned:
            fits = np.flatnonzero(data.weight[i] <= remaining + 1e-9)
            if fits.size == 0:
                return None
            costs = np.sort(data.cost[i, fits])
            regret = costs[1] - costs[0] if costs.size > 1 else np.inf
            if regret > best_regret:
                best_item, best_regret = i, regret
                best_machine = int(fits[np.argmin(data.cost[i, fits])])
        assignment[best_item] = best_machine
        remaining[best_machine] -= data.weight[best_item, best_machine]
        unassigned.remove(best_item)
    return assignment
