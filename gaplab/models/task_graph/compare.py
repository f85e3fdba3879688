"""The Last-K sweep: metrics for K = 1, 2, 3, ..., full, and the Pareto plot over K."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaplab.models.task_graph.instance import Instance
from gaplab.models.task_graph.metrics import alone_makespans, compute_metrics, makespan_lower_bound
from gaplab.models.task_graph.schedule import Schedule
from gaplab.models.task_graph.validate import validate

logger = logging.getLogger(__name__)

MILP_MAX_TASKS = 20
"""Largest instance on which the sweep also runs the per-arrival MILP (exact Last-K)."""


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


def pareto_plot(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Plot scheduler time against makespan, one line per base heuristic, points labelled by K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for base in dict.fromkeys(r["base"] for r in rows):
        mine = [r for r in rows if r["base"] == base]
        xs = [max(r["seconds"], 1e-6) for r in mine]
        ys = [r["objective"] for r in mine]
        ax.plot(xs, ys, marker="o", label=base)
        for r, x, y in zip(mine, xs, ys, strict=True):
            ax.annotate(
                f"K={r['K']}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    bound = rows[0].get("bound") if rows else None
    if bound is not None:
        ax.axhline(bound, color="grey", linestyle=":", label="lower bound (critical path, work)")
    ax.set_xscale("log")
    ax.set_xlabel("scheduler time over all arrivals (s)")
    ax.set_ylabel("makespan (s)")
    ax.set_title(title or "Last-K: scheduler time against makespan")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    """Rows for ``gaplab compare`` and ``run``: the Last-K sweep, and its Pareto plot."""
    bases = ("heft",) if quick else ("heft", "cpop", "minmin", "maxmin")
    rows = sweep(instance, bases=bases, milp=not quick)
    if out_dir is not None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", instance.name)
        path = Path(out_dir) / f"task-graph-{safe}-pareto.png"
        pareto_plot([r for r in rows if r["base"] != "milp"], path, f"Last-K on {instance.name}")
        logger.info("wrote %s", path)
    return rows
