"""Benchmark of the write-policy model on the full evaluation grid.

Grid: 4 stream modes x 10 seed-0 episodes (200 steps) x budgets 1 to 64 KiB x both tracks.
Prints, with the machine it ran on:

1. time of each exact optimum per episode (knapsack DP, WRITE-only MILP, MERGE-aware MILP on
   HiGHS), and DP against MILP agreement;
2. every policy's mean regret against the WRITE-only optimum (not clamped) and its share of
   the MERGE-aware optimum, per track;
3. the gain of MERGE per budget and mode, to show which budgets make merging worth the most;
4. the hindsight optima next to reference values computed with HiGHS on WritePolicyBench's
   published seed-0 episodes;
5. where WritePolicyBench's oracle (exact DP for small budgets, greedy above) misses U*(B).

Run: ``.venv/bin/python benchmarks/write_policy.py [--quick] [--out results.csv]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from gaplab.models.write_policy import Instance
from gaplab.models.write_policy.build import solve_merge_milp, solve_write_only_milp
from gaplab.models.write_policy.compare import GRID_BUDGETS_KIB, grid_rows
from gaplab.models.write_policy.exact import write_only_optimum
from gaplab.models.write_policy.generator import MODES
from gaplab.models.write_policy.reference import REFERENCE_OPTIMA
from gaplab.solvers.result import SolveOptions


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, highspy {version('highspy')}"
    )


def time_exact(episodes: list[Instance], budgets: tuple[float, ...]) -> pd.DataFrame:
    """Seconds of each exact method per (episode, budget) on the unprivileged track."""
    options = SolveOptions(time_limit=30, mip_rel_gap=0.0)
    rows = []
    for episode in episodes:
        for budget in budgets:
            inst = episode.with_budget(int(budget * 1024))
            started = time.perf_counter()
            dp = write_only_optimum(inst)
            dp_seconds = time.perf_counter() - started
            started = time.perf_counter()
            milp, _ = solve_write_only_milp(inst, "highs", options)
            milp_seconds = time.perf_counter() - started
            started = time.perf_counter()
            merge, _ = solve_merge_milp(inst, "highs", options)
            merge_seconds = time.perf_counter() - started
            rows.append(
                {
                    "mode": inst.mode,
                    "episode": inst.episode_id,
                    "budget_kib": budget,
                    "dp_s": dp_seconds,
                    "write_milp_s": milp_seconds,
                    "merge_milp_s": merge_seconds,
                    "merge_pairs": len(inst.merge_pairs),
                    "dp_equals_milp": abs(dp.value - (milp.objective or np.nan)) < 1e-6,
                    "merge_optimal": merge.is_optimal,
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 episodes per mode, not 10")
    parser.add_argument("--out", type=Path, help="write every grid row to this CSV file")
    args = parser.parse_args(argv)
    count = 2 if args.quick else 10
    budgets = GRID_BUDGETS_KIB
    pd.set_option("display.width", 160)

    print(f"machine: {machine()}")
    print(
        f"grid: {len(MODES)} modes x {count} episodes (seed 0, 200 steps) x budgets {budgets} KiB"
    )
    started = time.perf_counter()

    unprivileged = [
        Instance.generate(0, mode=mode, episode_id=e, track="unprivileged")
        for mode in MODES
        for e in range(count)
    ]
    timing = time_exact(unprivileged, budgets)
    per_episode = timing.groupby(["mode", "episode"])[["dp_s", "write_milp_s", "merge_milp_s"]]
    print("\n1. exact optimum, seconds per episode (all 8 budgets, unprivileged track)")
    print(per_episode.sum().groupby("mode").agg(["mean", "max"]).round(3).to_string())
    print(
        f"   per solve: DP mean {timing.dp_s.mean() * 1e3:.1f} ms, WRITE-only MILP mean "
        f"{timing.write_milp_s.mean() * 1e3:.1f} ms, MERGE MILP mean "
        f"{timing.merge_milp_s.mean() * 1e3:.1f} ms (max {timing.merge_milp_s.max() * 1e3:.1f})"
    )
    print(
        f"   DP equals WRITE-only MILP on {int(timing.dp_equals_milp.sum())} of {len(timing)} "
        f"solves; MERGE MILP proved optimal on {int(timing.merge_optimal.sum())}"
    )

    episodes = unprivileged + [
        inst.with_budget(inst.budget_bytes, track="privileged") for inst in unprivileged
    ]
    rows = pd.DataFrame(grid_rows(episodes, budgets, merge_time_limit=30.0))
    if args.out:
        rows.to_csv(args.out, index=False)
    policies = rows[rows.kind == "policy"].copy()
    policies["share_of_merge_optimum"] = policies.utility / policies.optimum_merge
    invalid = int((~policies.valid.astype(bool)).sum())
    print(f"\n2. policies: {len(policies)} runs, {invalid} failed the replay validator")
    summary = (
        policies.groupby(["track", "method"])
        .agg(
            regret=("regret", "mean"),
            regret_max=("regret", "max"),
            regret_min=("regret", "min"),
            share=("share_of_merge_optimum", "mean"),
            f1=("f1", "mean"),
            seconds=("seconds", "mean"),
        )
        .round(3)
    )
    print(summary.to_string())
    print("\n   mean regret by budget (KiB), unprivileged track")
    unpriv = policies[policies.track == "unprivileged"]
    print(
        unpriv.pivot_table(index="method", columns="budget_kib", values="regret")
        .round(1)
        .to_string()
    )

    exact = rows[(rows.kind == "exact") & (rows.track == "unprivileged")]
    optima = exact.pivot_table(
        index=["mode", "budget_kib"], columns="method", values="utility", aggfunc="mean"
    )
    optima["merge_gain_pct"] = 100 * (optima["exact:merge"] / optima["exact:write-only"] - 1)
    print("\n3. MERGE gain over the WRITE-only optimum, % (mean over episodes, unprivileged)")
    gain = optima["merge_gain_pct"].unstack("budget_kib").round(1)
    print(gain.to_string())
    means: dict[tuple[str, float], dict[str, float]] = optima.to_dict("index")  # type: ignore[assignment]
    for mode in MODES:
        budget = max(budgets, key=lambda b: means[(mode, float(b))]["merge_gain_pct"])
        print(
            f"   {mode}: merging is worth the most at {budget:g} KiB "
            f"(+{means[(mode, float(budget))]['merge_gain_pct']:.1f} %)"
        )

    print("\n4. hindsight optima against the reference values (mean of 10 episodes, unprivileged)")
    if count == 10:
        for (mode, budget), (ref_write, ref_merge) in REFERENCE_OPTIMA.items():
            ours = means[(mode, float(budget))]
            print(
                f"   {mode:12s} {budget:3d} KiB  WRITE-only {ours['exact:write-only']:6.2f} "
                f"(reference {ref_write:5.1f})  MERGE {ours['exact:merge']:6.2f} "
                f"(reference {ref_merge:5.1f})"
            )
    else:
        print("   skipped with --quick: the reference values are means over 10 episodes")
    written = rows[rows.method == "exact:write-only"]
    differs = written[written.oracle_differs.astype(bool)]
    print(
        f"\n5. WritePolicyBench's oracle differs from the exact WRITE-only optimum on "
        f"{len(differs)} of {len(written)} (episode, budget, track) cells"
    )
    if len(differs):
        gap = differs.assign(shortfall=differs.optimum_write_only - differs.oracle_reference)
        table = gap.groupby(["track", "mode", "budget_kib"]).shortfall.agg(["count", "mean", "max"])
        print(table.round(2).to_string())
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
