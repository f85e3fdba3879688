"""The Last-K sweep: metrics for K = 1, 2, 3, ..., full, and the Pareto plot over K."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaplab.models.task_graph.instance import Instance
from gaplab.models.task_graph.metrics import alone_makespans, compute_metrics, makespan_lower_bound
from gaplab.models.task_graph.schedule import Schedule
from gaplab.models.task_graph.validate import validate
from gaplab.solvers import Result, SolveOptions, Termination

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

MILP_MAX_TASKS = 20
"""Largest instance on which the sweep also runs the per-arrival MILP (exact Last-K)."""
OFFLINE_TIME_LIMIT = {True: 2.0, False: 10.0}
"""Seconds for the offline MILP of the Pareto plot, by ``quick``, when the run has no result."""

_OFFLINE_RESULTS: weakref.WeakKeyDictionary[Instance, Result] = weakref.WeakKeyDictionary()


def window_grid(graphs: int, limit: int = 8) -> list[int | None]:
    """K values to sweep: 1, 2, 3, ... up to ``limit`` below the number of graphs, then full."""
    ks: list[int | None] = [k for k in range(1, min(graphs, limit + 1))]
    ks.append(None)
    return ks


def sweep(
    instance: Instance,
    bases: Sequence[str] = ("heft", "cpop", "minmin", "maxmin"),
    windows: Sequence[int | None] | None = None,
    milp: bool = False,
    window_time_limit: float = 2.0,
) -> list[dict[str, Any]]:
    """Run every base heuristic for every K and return one row of metrics per run.

    With ``milp`` the per-arrival MILP (K = 1 and full) is added on instances of at most
    :data:`MILP_MAX_TASKS` tasks.
    """
    from gaplab.heuristics.task_graph import last_k
    from gaplab.models.task_graph.exact import milp_last_k

    windows = list(windows) if windows is not None else window_grid(len(instance.graphs))
    alone = alone_makespans(instance)
    bound = makespan_lower_bound(instance)
    rows = []
    runs: list[tuple[str, str, Schedule]] = []
    for base in bases:
        for k in windows:
            runs.append((base, _k_label(k), last_k(instance, base, k)))
    if milp and instance.num_tasks <= MILP_MAX_TASKS:
        for k in (1, None):
            schedule = milp_last_k(instance, k, window_time_limit=window_time_limit)
            runs.append(("milp", _k_label(k), schedule))
    for base, k_label, schedule in runs:
        violations = validate(instance, schedule)
        metrics = compute_metrics(instance, schedule, alone)
        rows.append(
            {
                "method": f"{base}-k{k_label}" if k_label != "full" else f"{base}-full",
                "status": "last-k",
                "objective": metrics.makespan,
                "bound": bound,
                "seconds": metrics.scheduler_seconds,
                "valid": not violations,
                "violations": "; ".join(violations[:3]),
                "base": base,
                "K": k_label,
                "mean_slowdown": metrics.mean_slowdown,
                "max_slowdown": metrics.max_slowdown,
                "jain_index": metrics.jain_index,
                "utilization": metrics.utilization,
                "max_arrival_seconds": metrics.max_arrival_seconds,
            }
        )
    return rows


def _k_label(k: int | None) -> str:
    return "full" if k is None else str(k)


K_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "h")
"""Marker of K = 1, 2, ... in the Pareto plot; full preemption gets a star."""


def _k_marker(k_label: str) -> str:
    if k_label == "full":
        return "*"
    return K_MARKERS[(int(k_label) - 1) % len(K_MARKERS)]


def pareto_plot(
    rows: Sequence[dict[str, Any]],
    path: Path,
    title: str = "",
    optimum: tuple[float, str] | None = None,
) -> Path:
    """Draw :func:`pareto_figure` and save it to ``path`` as a PNG."""
    import matplotlib.pyplot as plt

    fig = pareto_figure(rows, title, optimum)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The legends sit right of the axes, outside the area that tight_layout fits.
    axes = fig.axes[0]
    legends = [*axes.artists, axes.get_legend()]
    fig.savefig(path, dpi=100, bbox_inches="tight", bbox_extra_artists=legends)
    plt.close(fig)
    return path


def pareto_figure(
    rows: Sequence[dict[str, Any]], title: str = "", optimum: tuple[float, str] | None = None
) -> Figure:
    """Plot scheduler time against makespan, one line per base heuristic and a marker per K.

    ``optimum`` is the offline MILP's makespan and its legend label, drawn as a dashed line next
    to the dotted lower bound. Markers in place of text labels keep close points readable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for base in dict.fromkeys(r["base"] for r in rows):
        mine = [r for r in rows if r["base"] == base]
        xs = [max(r["seconds"], 1e-6) for r in mine]
        ys = [r["objective"] for r in mine]
        (line,) = ax.plot(xs, ys, label=base, alpha=0.8)
        for r, x, y in zip(mine, xs, ys, strict=True):
            ax.plot(x, y, marker=_k_marker(r["K"]), color=line.get_color(), markersize=7)
    bound = rows[0].get("bound") if rows else None
    if bound is not None:
        ax.axhline(bound, color="grey", linestyle=":", label="lower bound (critical path, work)")
    if optimum is not None:
        ax.axhline(optimum[0], color="black", linestyle="--", linewidth=1, label=optimum[1])
    ax.set_xscale("log")
    ax.set_xlabel("scheduler time over all arrivals (s)")
    ax.set_ylabel("makespan (s)")
    ax.set_title(title or "Last-K: scheduler time against makespan")
    lines = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="method")
    ax.add_artist(lines)
    k_labels = list(dict.fromkeys(r["K"] for r in rows))
    k_handles = [
        Line2D([], [], color="grey", marker=_k_marker(k), linestyle="none", label=f"K = {k}")
        for k in k_labels
    ]
    ax.legend(
        handles=k_handles, fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0.0), title="window"
    )
    return fig


def remember_offline(instance: Instance, result: Result) -> None:
    """Keep the offline MILP result of ``instance`` for the Pareto plot of the same run."""
    _OFFLINE_RESULTS[instance] = result


def offline_reference(instance: Instance, quick: bool) -> tuple[float, str] | None:
    """Return the offline MILP makespan and its legend label, or ``None`` without a point.

    Reuses the result of the run's exact solve when there is one, else solves with
    :data:`OFFLINE_TIME_LIMIT`. The label states whether the value is a proven optimum.
    """
    from gaplab.models.task_graph.exact import solve_offline

    result = _OFFLINE_RESULTS.get(instance)
    if result is None:
        options = SolveOptions(time_limit=OFFLINE_TIME_LIMIT[quick])
        result, _ = solve_offline(instance, "highs", options)
        _OFFLINE_RESULTS[instance] = result
    if result.objective is None:
        return None
    if result.termination == Termination.OPTIMAL:
        return result.objective, "offline MILP optimum"
    gap = result.gap
    detail = f", gap {gap:.1%}" if gap is not None else ""
    return result.objective, f"offline MILP best found ({result.termination.value}{detail})"


def extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    """Rows for ``gaplab compare`` and ``run``: the Last-K sweep, and its Pareto plot."""
    bases = ("heft",) if quick else ("heft", "cpop", "minmin", "maxmin")
    rows = sweep(instance, bases=bases, milp=not quick)
    if out_dir is not None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", instance.name)
        path = Path(out_dir) / f"task-graph-{safe}-pareto.png"
        pareto_plot(
            [r for r in rows if r["base"] != "milp"],
            path,
            f"Last-K on {instance.name}",
            optimum=offline_reference(instance, quick),
        )
        logger.info("wrote %s", path)
    return rows
