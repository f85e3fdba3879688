"""Comparison rows and the convergence plot of the traffic model, for ``compare`` and ``run``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.models.traffic.delay import Allocation, mean_delay, objective, utilization
from gaplab.models.traffic.exact import solve_direct
from gaplab.models.traffic.instance import Instance
from gaplab.sim.traffic_pricing import PricingRun, run_pricing

logger = logging.getLogger(__name__)


def _row(
    instance: Instance, method: str, flows: np.ndarray, optimum: float, seconds: float
) -> dict[str, Any]:
    total = objective(instance, flows)
    finite = bool(np.isfinite(total))
    return {
        "model": "traffic",
        "instance": instance.name,
        "method": method,
        "total_delay": total if finite else None,
        "mean_delay_s": mean_delay(instance, flows) if finite else None,
        "optimum": optimum,
        "excess_percent": 100.0 * (total - optimum) / optimum if finite else None,
        "node_utilization": " ".join(f"{u:.4f}" for u in utilization(instance, flows)),
        "seconds": seconds,
    }


SLOW_METHODS = ("pricing-windowed", "server-only")
"""Heuristics that :func:`comparison_rows` leaves out when ``quick`` is set."""


def comparison_rows(
    instance: Instance,
    quick: bool = False,
    runs: dict[str, PricingRun] | None = None,
    optimum: Allocation | None = None,
) -> list[dict[str, Any]]:
    """Tabulate total delay, mean delay and node utilizations of each method and the optimum.

    ``quick`` leaves out :data:`SLOW_METHODS`. ``runs`` maps heuristic names (``pricing``,
    ``pricing-fixed``) to finished pricing runs that supply their rows instead of new runs,
    and ``optimum`` to an optimal split that saves the exact solve.
    """
    from gaplab.heuristics.traffic import HEURISTICS

    runs = runs or {}
    started = time.perf_counter()
    if optimum is None:
        _, optimum = solve_direct(instance)
    if optimum is None:
        logger.warning("no optimum for %s; skipping the comparison", instance.name)
        return []
    best = objective(instance, optimum.flows)
    rows = [_row(instance, "optimum", optimum.flows, best, time.perf_counter() - started)]
    for name, heuristic in HEURISTICS.items():
        if name in runs:
            run = runs[name]
            row = _row(instance, name, run.flows, best, run.seconds)
            row["iterations"] = run.iterations
            row["status"] = run.status
            rows.append(row)
            continue
        if quick and name in SLOW_METHODS:
            continue
        started = time.perf_counter()
        allocation = heuristic(instance)
        rows.append(_row(instance, name, allocation.flows, best, time.perf_counter() - started))
    return rows


def plot_convergence(
    instance: Instance, runs: dict[str, PricingRun], optimum: float, path: Path
) -> Path:
    """Write a PNG of pricing runs: ``F - F*`` of each run and the node prices of the last one.

    ``runs`` maps a legend label to a run, for example the default steps and an adaptive rerun.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for label, run in runs.items():
        iterations = np.arange(1, run.iterations + 1)
        excess = np.maximum(run.objective_history - optimum, 1e-16)
        top.semilogy(iterations, excess, label=f"{label}: {run.status} after {run.iterations}")
    top.set_ylabel("F - F* (work units)")
    top.set_title(f"distributed pricing on {instance.name}")
    top.legend(loc="best", fontsize="small")

    label, last = list(runs.items())[-1]
    iterations = np.arange(1, last.iterations + 1)
    for j, node in enumerate(instance.nodes[:12]):
        bottom.semilogy(iterations, last.price_history[:, j], label=node)
    bottom.set_xlabel("iteration")
    bottom.set_ylabel(f"node price p_j ({label})")
    if instance.num_nodes <= 12:
        bottom.legend(loc="best", fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    """Return the rows of :func:`comparison_rows` and write the convergence PNG of pricing.

    The fixed-step run (``pricing-fixed``) is made first. When it converges, the adaptive run
    (``pricing``) is the same run, because steps are only halved on a detected cycle; otherwise
    the adaptive run is made too and both are plotted.
    """
    _, best = solve_direct(instance)
    if best is None:
        logger.warning("no optimum for %s; skipping the comparison", instance.name)
        return []
    optimum = objective(instance, best.flows)
    run = run_pricing(instance, reference=optimum, max_iter=1000 if quick else 4000)
    runs = {"pricing-fixed": run}
    plotted = {"fixed steps 0.25 / 0.5": run}
    if run.converged:
        runs["pricing"] = run
    else:
        adaptive = run_pricing(instance, reference=optimum, adaptive=True)
        runs["pricing"] = adaptive
        plotted["adaptive steps"] = adaptive
    rows = comparison_rows(instance, quick, runs=runs, optimum=best)
    if out_dir is not None:
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in instance.name)
        path = plot_convergence(
            instance, plotted, optimum, Path(out_dir) / f"traffic-{name}-convergence.png"
        )
        logger.info("wrote %s", path)
    return rows
