"""Benchmark of task-graph: how much of full preemption's gain does a moderate K recover?

For Last-K with K = 1, 2, 3, 4 and full preemption it prints mean makespan, fairness (Jain's
index of graph slowdowns and the maximum slowdown) and scheduler time per arrival, on

1. generated Poisson streams (6 graphs of 8 tasks on 3 nodes, mean gap 2 s, many seeds),
2. the adversarial family (wide cheap graphs followed by long chains),
3. small streams (3 graphs of 5 tasks) where the offline MILP solves within the limit, also
   with the per-arrival MILP (exact Last-K) and against the offline minimum of the maximum
   slowdown,
4. streams of the four WfInstances workflows when the data folder is given: at full size with
   heuristics only, and cut to 5 tasks per graph with the offline MILP bound.

"Recovered" is ``(M_1 - M_K) / (M_1 - M_full)``: the share of full preemption's makespan gain
over K = 1 that window K obtains (100 % = all of it). "time/full" is the mean scheduler time per
arrival over that of full preemption. The offline bound is used only where the
MILP proves optimality within the time limit; otherwise the dual bound is shown in brackets.

Usage: ``python benchmarks/task_graph.py [--seeds N] [--time-limit S] [--data-dir DIR]
[--quick]``. The data folder defaults to ``$GAPLAB_DATA``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gaplab.heuristics.task_graph import last_k
from gaplab.models.task_graph import Instance, milp_last_k, solve_offline, validate
from gaplab.models.task_graph.generators import adversarial, stream
from gaplab.models.task_graph.importers import WORKFLOW_FILES, workflow_stream
from gaplab.models.task_graph.metrics import alone_makespans, compute_metrics
from gaplab.solvers import SolveOptions, Termination

WINDOWS: tuple[int | None, ...] = (1, 2, 3, 4, None)
BASES = ("heft", "cpop", "minmin", "maxmin")


def _label(k: int | None) -> str:
    return "full" if k is None else str(k)


def k_table(
    title: str, instances: Sequence[Instance], bases: Sequence[str] = BASES
) -> dict[tuple[str, str], float]:
    """Print the Last-K table over ``instances``; returns mean makespan by (base, K)."""
    print(f"\n## {title} ({len(instances)} instances)")
    print(
        f"{'base':<7} {'K':>4} {'makespan':>10} {'vs full':>8} {'recovered':>9} {'Jain':>6} "
        f"{'max slow':>8} {'ms/arrival':>10} {'time/full':>9} {'invalid':>7}"
    )
    alone = [alone_makespans(i) for i in instances]
    means: dict[tuple[str, str], float] = {}
    for base in bases:
        per_k = {}
        for k in WINDOWS:
            rows = []
            invalid = 0
            for instance, solo in zip(instances, alone, strict=True):
                schedule = last_k(instance, base, k)
                invalid += bool(validate(instance, schedule))
                metrics = compute_metrics(instance, schedule, solo)
                per_arrival = metrics.scheduler_seconds / len(instance.graphs)
                rows.append(
                    (metrics.makespan, metrics.jain_index, metrics.max_slowdown, per_arrival)
                )
            per_k[_label(k)] = (rows, invalid)
        m1 = statistics.fmean(r[0] for r in per_k["1"][0])
        mfull = statistics.fmean(r[0] for r in per_k["full"][0])
        tfull = statistics.fmean(r[3] for r in per_k["full"][0])
        for key, (rows, invalid) in per_k.items():
            mk = statistics.fmean(r[0] for r in rows)
            means[(base, key)] = mk
            recovered = (m1 - mk) / (m1 - mfull) if abs(m1 - mfull) > 1e-9 else float("nan")
            print(
                f"{base:<7} {key:>4} {mk:>10.3f} {mk / mfull:>8.4f} {recovered:>8.0%} "
                f"{statistics.fmean(r[1] for r in rows):>6.3f} "
                f"{statistics.fmean(r[2] for r in rows):>8.2f} "
                f"{1e3 * statistics.fmean(r[3] for r in rows):>10.3f} "
                f"{statistics.fmean(r[3] for r in rows) / tfull:>9.2f} {invalid:>7}"
            )
    return means


def bound_table(
    title: str, instances: Sequence[Instance], time_limit: float, milp: bool, fairness: bool
) -> None:
    """Print makespans over the offline MILP optimum, optionally the per-arrival MILP, and
    maximum slowdowns over the offline minimum of the maximum slowdown."""
    print(f"\n## {title}: ratio to the offline MILP optimum (time limit {time_limit:g} s)")
    options = SolveOptions(time_limit=time_limit, mip_rel_gap=1e-6)
    methods = [f"heft-k{_label(k)}" for k in WINDOWS] + (["milp-k1", "milp-full"] if milp else [])
    ratios: dict[str, list[float]] = {m: [] for m in methods}
    fair: dict[str, list[float]] = {m: [] for m in methods if m.startswith("heft")}
    solved = 0
    fair_solved = 0
    solve_seconds = []
    for instance in instances:
        tick = time.perf_counter()
        result, _ = solve_offline(instance, "highs", options)
        solve_seconds.append(time.perf_counter() - tick)
        if result.termination != Termination.OPTIMAL or result.objective is None:
            print(
                f"  {instance.name}: not solved in {time_limit:g} s "
                f"(incumbent {result.objective}, [bound {result.bound}]); skipped"
            )
            continue
        solved += 1
        optimum = result.objective
        schedules = {k: last_k(instance, "heft", k) for k in WINDOWS}
        for k, schedule in schedules.items():
            ratios[f"heft-k{_label(k)}"].append(schedule.makespan(instance) / optimum)
        if milp:
            for k, name in ((1, "milp-k1"), (None, "milp-full")):
                schedule = milp_last_k(instance, k, window_time_limit=min(10.0, time_limit))
                ratios[name].append(schedule.makespan(instance) / optimum)
        if fairness:
            best, _ = solve_offline(instance, "highs", options, objective="max_slowdown")
            if best.termination == Termination.OPTIMAL and best.objective is not None:
                fair_solved += 1
                alone = alone_makespans(instance)
                for k, schedule in schedules.items():
                    worst = compute_metrics(instance, schedule, alone).max_slowdown
                    fair[f"heft-k{_label(k)}"].append(worst / best.objective)
    print(
        f"  solved {solved} of {len(instances)}; MILP seconds median "
        f"{statistics.median(solve_seconds):.2f}, max {max(solve_seconds):.2f}"
    )
    for name, values in ratios.items():
        if values:
            print(
                f"  {name:<10} mean {statistics.fmean(values):.4f}  worst {max(values):.4f}  "
                f"(makespan / offline optimum)"
            )
    if fairness:
        print(f"  minimum of the maximum slowdown solved on {fair_solved} of {solved}")
        for name, values in fair.items():
            if values:
                print(
                    f"  {name:<10} mean {statistics.fmean(values):.4f}  worst {max(values):.4f}  "
                    f"(max slowdown / offline minimum)"
                )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30, help="generated streams per family")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per MILP solve")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("GAPLAB_DATA"))
    parser.add_argument("--quick", action="store_true", help="few seeds and short MILP limits")
    args = parser.parse_args(argv)
    seeds = 5 if args.quick else args.seeds
    limit = 5.0 if args.quick else args.time_limit
    started = time.perf_counter()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )

    streams = [stream(s, graphs=6, tasks=8, nodes=3, mean_gap=2.0) for s in range(seeds)]
    k_table("Poisson streams, 6 graphs x 8 tasks, 3 nodes, mean gap 2 s", streams)
    bursty = [stream(s, graphs=6, tasks=8, nodes=3, mean_gap=0.5) for s in range(seeds)]
    k_table("Poisson streams, 6 graphs x 8 tasks, 3 nodes, mean gap 0.5 s", bursty, ("heft",))
    hostile = [adversarial(s, rounds=3) for s in range(seeds)]
    k_table("adversarial family, 3 rounds, 3 nodes", hostile)

    small = [stream(s, graphs=3, tasks=5, nodes=3, mean_gap=2.0) for s in range(min(seeds, 10))]
    bound_table("small streams, 3 graphs x 5 tasks", small, limit, milp=True, fairness=True)
    small_adv = [adversarial(s, rounds=2, nodes=2, width=2, chain_length=3) for s in range(3)]
    bound_table(
        "small adversarial, 2 rounds on 2 nodes", small_adv, limit, milp=True, fairness=True
    )

    data = Path(args.data_dir) / "workflow" if args.data_dir else None
    if data is not None and all((data / f).is_file() for f in WORKFLOW_FILES):
        files = [data / f for f in WORKFLOW_FILES]
        real = [workflow_stream(files, seed=s, graphs=8, mean_gap=600.0) for s in range(3)]
        print(f"\nreal streams: {real[0].num_tasks} tasks each, 4 nodes of 0.6-2.1 GHz")
        k_table("WfInstances streams, 8 workflows, mean gap 600 s", real)
        cut = [
            workflow_stream(files, seed=s, graphs=4, max_tasks=5, mean_gap=100.0)
            for s in range(2 if args.quick else 3)
        ]
        bound_table(
            "WfInstances streams cut to 4 x 5 tasks", cut, limit, milp=False, fairness=False
        )
    else:
        print("\nreal workflows skipped: pass --data-dir or set GAPLAB_DATA")

    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
