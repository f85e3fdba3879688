"""Gantt chart of a blockchain schedule (one row per core), written as a PNG with matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.schedule import Schedule


def gantt(
    instance: BlockInstance, schedule: Schedule, path: str | Path, *, title: str | None = None
) -> Path:
    """Draw ``schedule`` as bars per core and save it to ``path`` (PNG); returns the path.

    Bars are coloured by block position, so a long diagonal band shows transactions running in
    block order; transactions on a heaviest conflict chain are outlined in black. A dashed line
    marks the runtime limit B of ``block-build``.
    """
    from matplotlib.figure import Figure

    path = Path(path)
    times = instance.times
    chosen = np.flatnonzero(schedule.selected)
    critical = _critical_chain(instance)
    unit = 1.0 if instance.unit else 1e6
    unit_name = "rounds" if instance.unit else "Mgas"

    figure = Figure(figsize=(10, 1.2 + 0.45 * instance.cores), dpi=110)
    axes = figure.add_subplot()
    colours = _colours(instance.n)
    for i in chosen.tolist():
        axes.barh(
            int(schedule.core[i]),
            times[i] / unit,
            left=schedule.start[i] / unit,
            height=0.8,
            color=colours[i],
            edgecolor="black" if i in critical else "white",
            linewidth=1.2 if i in critical else 0.4,
        )
        if len(chosen) <= 60 and times[i] / unit > 0:
            axes.text(
                (schedule.start[i] + times[i] / 2) / unit,
                int(schedule.core[i]),
                str(i),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if _dark(colours[i]) else "black",
            )
    if instance.budget is not None:
        axes.axvline(instance.budget / unit, color="black", linestyle="--", linewidth=1)
    axes.set_yticks(range(instance.cores), [f"core {c}" for c in range(instance.cores)])
    axes.invert_yaxis()
    axes.set_xlabel(f"time ({unit_name})")
    if title is None:
        if instance.problem == "block-exec":
            work = float(times.sum())
            cmax = schedule.makespan(instance)
            speedup = work / cmax if cmax > 0 else float("nan")
            title = (
                f"{instance.name}: {schedule.method or 'schedule'}, makespan "
                f"{cmax / unit:.4g} {unit_name}, speedup {speedup:.2f} on {instance.cores} cores"
            )
        else:
            title = (
                f"{instance.name}: {schedule.method or 'schedule'}, {len(chosen)} of "
                f"{instance.n} selected, reward {schedule.reward(instance):.4g} gwei"
            )
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _colours(n: int) -> np.ndarray:
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0.1, 0.95, max(n, 1)))


def _dark(colour: np.ndarray) -> bool:
    return float(0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]) < 0.5


def _critical_chain(instance: BlockInstance) -> set[int]:
    """Positions on one heaviest path of the block-order DAG."""
    if instance.n == 0:
        return set()
    graph = instance.graph
    h = graph.bottom_level(instance.times)
    chain = set()
    i = int(np.argmax(h))
    while True:
        chain.add(i)
        succ = graph.succ(i)
        if succ.size == 0:
            break
        i = int(succ[np.argmax(h[succ])])
    return chain
