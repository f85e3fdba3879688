"""Gantt chart of a blockchain schedule (one row per core), written as a PNG with matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.schedule import Schedule

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def gantt(
    instance: BlockInstance, schedule: Schedule, path: str | Path, *, title: str | None = None
) -> Path:
    """Draw ``schedule`` with :func:`gantt_figure` and save it to ``path`` as a PNG."""
    path = Path(path)
    figure = gantt_figure(instance, schedule, title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def gantt_figure(
    instance: BlockInstance, schedule: Schedule, *, title: str | None = None
) -> Figure:
    """Draw ``schedule`` as bars per core on a new matplotlib Figure.

    Bars are coloured by block position (the colour bar), so a long diagonal band shows
    transactions running in block order. Transactions on a heaviest conflict chain of the block
    order are outlined in black. A dashed line marks the runtime limit B of ``block-build``, and
    the legend names both.
    """
    from matplotlib.artist import Artist
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

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
    handles: list[Artist] = []
    if critical & set(chosen.tolist()):
        handles.append(
            Patch(
                facecolor="white", edgecolor="black", linewidth=1.2, label="heaviest conflict chain"
            )
        )
    if instance.budget is not None:
        limit = axes.axvline(instance.budget / unit, color="black", linestyle="--", linewidth=1)
        limit.set_label(f"runtime limit B = {instance.budget / unit:.4g} {unit_name}")
        handles.append(limit)
    if handles:
        # Below the axes, level with the x label, so that no bar is hidden.
        axes.legend(
            handles=handles,
            fontsize=7,
            loc="upper right",
            bbox_to_anchor=(1.0, -0.12),
            ncol=len(handles),
            frameon=False,
        )
    if instance.n > 0:
        scale = ScalarMappable(
            norm=Normalize(0, max(instance.n - 1, 1)), cmap=ListedColormap(colours)
        )
        bar = figure.colorbar(scale, ax=axes, pad=0.01, fraction=0.03)
        bar.set_label("block position", fontsize=8)
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
    return figure


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
