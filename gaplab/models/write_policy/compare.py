"""Policies against the hindsight optima over a grid of budgets, and the utility plot."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gaplab.models.write_policy.actions import plan_solution
from gaplab.models.write_policy.build import solve_merge_milp
from gaplab.models.write_policy.exact import (
    f1_optimum,
    reference_oracle_value,
    write_only_optimum,
)
from gaplab.models.write_policy.instance import KIB, Instance, budget_label
from gaplab.models.write_policy.metrics import metrics
from gaplab.models.write_policy.validate import validate
from gaplab.solvers.result import SolveOptions

logger = logging.getLogger(__name__)

GRID_BUDGETS_KIB = (1, 2, 4, 8, 10, 16, 32, 64)
"""Budgets of the evaluation grid in KiB; from 64 KiB on, a 200-step episode fits whole."""

QUICK_BUDGETS_KIB = (1, 4, 16)


def policy_names_for(track: str) -> list[str]:
    """Policies that apply on ``track``: the priority policies need the privileged one."""
    from gaplab.heuristics.write_policy import POLICIES, PRIVILEGED_POLICIES

    return [n for n in POLICIES if track == "privileged" or n not in PRIVILEGED_POLICIES]


def grid_rows(
    episodes: Iterable[Instance],
    budgets_kib: Sequence[float],
    policies: Sequence[str] | None = None,
    *,
    merge_time_limit: float | None = 10.0,
) -> list[dict[str, Any]]:
    """Run every policy and both optima on every episode and budget; one row per pair.

    Each row contains the metrics of :func:`~gaplab.models.write_policy.metrics.metrics` plus
    ``mode``, ``episode``, ``track``, ``budget_kib``, ``optimum_merge`` (the MERGE-aware MILP,
    ``None`` without a proven optimum), ``f1_optimum``, ``oracle_reference`` (U*(B) as
    WritePolicyBench's evaluator computes it) with ``oracle_differs`` flagging a mismatch, the
    validator's verdict and seconds.
    Exact rows (``method`` ``exact:write-only`` and ``exact:merge``) carry the solve time.
    """
    from gaplab.heuristics.write_policy import run

    rows: list[dict[str, Any]] = []
    options = SolveOptions(time_limit=merge_time_limit, mip_rel_gap=0.0)
    for episode in episodes:
        names = list(policies) if policies is not None else policy_names_for(episode.track)
        for budget in budgets_kib:
            inst = episode.with_budget(int(round(budget * KIB)))
            started = time.perf_counter()
            write_only = write_only_optimum(inst)
            dp_seconds = time.perf_counter() - started
            dp_plan = plan_solution("exact:write-only", list(write_only.steps), [])
            result, merge_solution = solve_merge_milp(inst, "highs", options)
            merge_value = result.objective if result.is_optimal else None
            oracle = reference_oracle_value(inst.costs, inst.values, inst.budget_bytes)
            common = {
                "mode": inst.mode,
                "episode": inst.episode_id,
                "instance": inst.label,
                "track": inst.track,
                "budget_bytes": inst.budget_bytes,
                "budget_kib": inst.budget_bytes / KIB,
                "optimum_write_only": write_only.value,
                "optimum_merge": merge_value,
                "f1_optimum": f1_optimum(inst).f1,
                "oracle_reference": oracle,
                "oracle_differs": abs(oracle - write_only.value) > 1e-9,
            }
            rows.append(
                {
                    **common,
                    "method": "exact:write-only",
                    "kind": "exact",
                    "utility": write_only.value,
                    "seconds": dp_seconds,
                    "valid": not validate(inst, dp_plan),
                    "status": "optimal",
                }
            )
            merge_valid = None if merge_solution is None else not validate(inst, merge_solution)
            rows.append(
                {
                    **common,
                    "method": "exact:merge",
                    "kind": "exact",
                    "utility": merge_value,
                    "seconds": result.solve_seconds,
                    "valid": merge_valid,
                    "status": result.termination.value,
                }
            )
            for name in names:
                started = time.perf_counter()
                solution = run(name, inst)
                seconds = time.perf_counter() - started
                row = metrics(inst, solution, write_only.value)
                row.update(common)
                row.update(
                    {
                        "kind": "policy",
                        "seconds": seconds,
                        "valid": not validate(inst, solution),
                        "status": "heuristic",
                    }
                )
                rows.append(row)
    return rows


def plot_utility(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Plot mean utility against budget per policy, with the optima as the upper curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame(rows)
    means = frame.groupby(["method", "budget_kib"])["utility"].mean().unstack("method")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in means.columns:
        exact = method.startswith("exact:")
        ax.plot(
            means.index,
            means[method],
            marker="o" if exact else ".",
            linewidth=2.5 if exact else 1.2,
            linestyle="-" if exact else "--",
            color="black" if method == "exact:merge" else ("0.4" if exact else None),
            label=method,
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("budget (KiB)")
    ax.set_ylabel("utility U(W) of the final memory")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    """Rows of every policy against the optima over the budget grid, and the utility plot.

    Each row has ``method`` ``<policy>@<budget>``, ``objective`` = the policy's utility,
    ``bound`` = the MERGE-aware optimum at that budget and the grid's metrics.
    """
    budgets = QUICK_BUDGETS_KIB if quick else GRID_BUDGETS_KIB
    rows = grid_rows([instance], budgets, merge_time_limit=2.0 if quick else 5.0)
    out: list[dict[str, Any]] = []
    for row in rows:
        label = budget_label(row["budget_bytes"])
        row = {key: value for key, value in row.items() if key != "instance"}
        out.append(
            {
                **row,
                "method": f"{row['method']}@{label}",
                "kind": "extra",
                "objective": row["utility"],
                "bound": row["optimum_merge"],
                "status": row.get("status", "ok"),
                "violations": "",
            }
        )
    if out_dir is not None:
        name = f"write-policy-{instance.label}-utility.png"
        plot_utility(rows, Path(out_dir) / name, f"{instance.name} ({instance.track})")
    return out
