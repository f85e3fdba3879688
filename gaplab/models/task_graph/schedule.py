"""The Solution type of the task-graph model: a schedule and the history of its re-plans."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gaplab.models.task_graph.instance import Instance


@dataclass(frozen=True)
class Placement:
    """One decision about a task: at ``decided`` (an arrival time) it was put on ``node``."""

    task: int
    decided: float
    node: int
    start: float


@dataclass(frozen=True)
class Schedule:
    """Node and start time of every task (global ids), plus how the schedule was produced.

    ``history`` lists every placement in decision order; a task appears once per re-plan that
    moved or re-confirmed it. An offline (clairvoyant) schedule has one placement per task,
    decided at its graph's arrival.
    """

    node: tuple[int, ...]
    start: tuple[float, ...]
    method: str = ""
    window: int | None = None
    """K of the Last-K scheduler, ``None`` for full preemption or an offline schedule."""
    history: tuple[Placement, ...] = ()
    scheduler_seconds: tuple[float, ...] = ()
    """Scheduler run time at each arrival, in seconds (empty for offline schedules)."""
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def finish(self, instance: Instance) -> np.ndarray:
        """Finish times ``S_t + w_t / s_v``."""
        speeds = instance.network.speed_array
        return np.asarray(self.start) + instance.flat.cost / speeds[np.asarray(self.node)]

    def makespan(self, instance: Instance) -> float:
        return float(self.finish(instance).max())

    def to_dict(self, instance: Instance | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "window": self.window,
            "node": list(self.node),
            "start": list(self.start),
            "scheduler_seconds": list(self.scheduler_seconds),
            "replacements": len(self.history) - len(self.node) if self.history else 0,
        }
        if instance is not None:
            out["tasks"] = [
                {
                    "graph": g,
                    "task": t,
                    "node": instance.network.nodes[v],
                    "start": s,
                }
                for (g, t), v, s in zip(instance.flat.labels, self.node, self.start, strict=True)
            ]
        return out

    @staticmethod
    def offline(node: Any, start: Any, instance: Instance, method: str) -> Schedule:
        """Build a schedule decided once, each task at its own graph's arrival."""
        nodes = tuple(int(v) for v in node)
        starts = tuple(float(s) for s in start)
        decided = instance.flat.arrival
        history = tuple(
            Placement(t, float(decided[t]), nodes[t], starts[t]) for t in range(len(nodes))
        )
        return Schedule(nodes, starts, method=method, history=history)
