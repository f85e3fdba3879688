"""Throughput of sweeps with one and two workers, on the local pool and on a Dask LocalCluster.

The tasks are 200 small MILPs: the toy generalized assignment model of
``gaplab.experiments.sweep_toy`` at size ``medium`` (30 items and 5 agents), solved by HiGHS with
one thread. The script runs them four times: on the local executor with one worker and with two,
then on Dask with one worker and with two. Each run writes its Parquet files to a fresh folder,
as a real sweep does. Worker start-up is left out of the timing, because every pool and cluster
runs a warm-up sweep first.

Usage::

    .venv/bin/python benchmarks/sweep.py [--tasks 200] [--executors local dask]

The target is at least 1.7 times the tasks per second with two workers as with one on a machine
with two free cores. The figures depend on what else runs on the machine, so the script prints
the CPU count, the load average before and after each run, and how many CPUs the sweep's own
processes (this one and the workers) kept busy on average: with two workers on two idle cores
that is close to 2, and well below 2 when other programs take the cores. Tasks per CPU second
does not depend on that load: when it is the same with one worker and with two, the second
worker adds no overhead, and the throughput ratio is limited by the free cores alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from gaplab.experiments.sweep import solve_many
from gaplab.experiments.sweep_dask import DaskRunner, close_local_cluster, start_local_cluster
from gaplab.experiments.sweep_local import LocalPool
from gaplab.experiments.sweep_spec import load_spec
from gaplab.experiments.sweep_task import Task


def make_tasks(count: int, size: str, first_seed: int = 0) -> list[Task]:
    spec = {
        "model": "sweep-toy-gap",
        "imports": ["gaplab.experiments.sweep_toy"],
        "time_limit": 30,
        "instances": {
            "generate": {
                "sizes": [size],
                "seeds": {"start": first_seed, "stop": first_seed + count},
            }
        },
        "methods": [{"exact": "milp"}],
    }
    return load_spec(spec)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user and system) used so far by the processes ``pids``, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of stat
    return total / ticks


def timed_sweep(
    executor: Any, tasks: list[Task], folder: Path, pids: list[int]
) -> tuple[float, float]:
    """Run ``tasks``; return the wall seconds and the CPU seconds of this process and ``pids``."""
    pids = [os.getpid(), *pids]
    cpu_before = cpu_seconds(pids)
    started = time.perf_counter()
    report = solve_many(tasks, executor, out=folder)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(pids) - cpu_before
    if report.ran != len(tasks) or report.failed:
        raise RuntimeError(f"benchmark sweep ran {report.ran} tasks with {report.failed} failures")
    return seconds, cpu


def measure(
    kind: str, workers: int, tasks: list[Task], warm_up: list[Task], folder: Path
) -> tuple[float, float]:
    if kind == "local":
        with LocalPool(workers) as pool:
            pool.wait_ready()
            solve_many(warm_up, pool)
            return timed_sweep(pool, tasks, folder, pool.pids)
    client, cluster = start_local_cluster(workers)
    try:
        client.wait_for_workers(workers, timeout=120)
        runner = DaskRunner(client)
        solve_many(warm_up, runner)
        pids = list(client.run(os.getpid).values())
        return timed_sweep(runner, tasks, folder, pids)
    finally:
        close_local_cluster(client, cluster)


def load() -> str:
    last_minute, last_five, _ = os.getloadavg()
    return f"{last_minute:.1f}/{last_five:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks per timed sweep")
    parser.add_argument("--size", default="medium", help="instance size of the toy model")
    parser.add_argument(
        "--executors", nargs="+", default=["local", "dask"], choices=["local", "dask"]
    )
    args = parser.parse_args()

    tasks = make_tasks(args.tasks, args.size)
    warm_up = make_tasks(4, "tiny", first_seed=10_000)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"tasks: {len(tasks)} exact solves of sweep-toy-gap size {args.size}, one thread each")
    print("NOTE: other work on this machine changes these figures; compare the load averages.")
    print()
    print(
        f"{'executor':<9} {'workers':>7} {'seconds':>8} {'tasks/s':>8} {'CPUs used':>9} "
        f"{'tasks/CPU-s':>11}  load 1/5 min before -> after"
    )

    ratios = {}
    with tempfile.TemporaryDirectory(prefix="gaplab-sweep-bench-") as scratch:
        for kind in args.executors:
            rates = {}
            for workers in (1, 2):
                before = load()
                folder = Path(scratch) / f"{kind}-{workers}"
                seconds, cpu = measure(kind, workers, tasks, warm_up, folder)
                rates[workers] = len(tasks) / seconds
                print(
                    f"{kind:<9} {workers:>7} {seconds:>8.2f} {rates[workers]:>8.1f} "
                    f"{cpu / seconds:>9.2f} {len(tasks) / cpu:>11.1f}  {before} -> {load()}",
                    flush=True,
                )
            ratios[kind] = rates[2] / rates[1]

    print()
    for kind, ratio in ratios.items():
        verdict = "meets" if ratio >= 1.7 else "misses"
        print(f"{kind}: two workers give {ratio:.2f} times the throughput of one ({verdict} 1.7)")


if __name__ == "__main__":
    main()
