"""Benchmark of the blockchain models: heuristic speed, exact formulations, paper figures.

Prints one table with three sections:

1. ``heuristics``: each heuristic on a generated 10,000-transaction block (p = 8), total wall
   time including the conflict graph, best of three runs (target: under 0.5 s).
2. ``grid``: the design note's instance grid (p = 2, 4, 8; homogeneous and heterogeneous; both
   problems), each instance solved by the plain and the strengthened formulation with a time
   limit (60 s by default): how many are proved optimal, and the mean relative gap.
3. ``paper``: gas-time speedup over sequential execution and heuristic-over-exact ratios on the
   same grid, next to the paper's headline figures (about 1.5x at p = 2 and 2.3x at p = 8 for
   block execution; 99-100 % of the MILP optimum for homogeneous block construction; 74-100 %
   of an LP bound for heterogeneous block construction).

Usage::

    python benchmarks/blockchain.py            # one window per grid cell, 60 s per solve
    python benchmarks/blockchain.py --quick    # p = 2 only, 10 s per solve, a short run
    python benchmarks/blockchain.py --full     # every window of the artifact's grid

Solves run in two worker processes (one solver thread each), the machine's two cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from gaplab.heuristics import blockchain as heur
from gaplab.models.blockchain import build_milp, exec_milp
from gaplab.models.blockchain.generate import BUILD_BUDGET, BUILD_ROUNDS, generate, grid_instance
from gaplab.models.blockchain.graph import bounds
from gaplab.models.blockchain.validate import validate
from gaplab.solvers.result import SolveOptions, Termination

TARGET_SECONDS = 0.5
PAPER = {
    "speedup p=2": 1.5,
    "speedup p=8": 2.3,
    "h2/milp homogeneous": "0.99-1.00",
    "h2/lp heterogeneous": "0.74-1.00",
}
WINDOWS_FULL = {2: 4, 4: 5, 8: 5}
"""Windows per p in the artifact's grid for problem (i) and heterogeneous problem (ii)."""
BUILD_HOMOGENEOUS_WINDOWS_FULL = 14
LP_TIME_LIMIT = 20.0
"""Seconds for the LP bounds of a block-build instance (the plain LP of the largest rounds
model has millions of rows)."""


# ---------------------------------------------------------------------- section 1


def heuristic_timings(seed: int = 2026, n: int = 10_000, cores: int = 8) -> list[dict[str, Any]]:
    """Best-of-three wall time of each heuristic on a fresh instance (graph built inside)."""
    cases = [
        ("h1-time", "block-exec", "heterogeneous", heur.h1_time),
        ("h1-unit", "block-exec", "homogeneous", heur.h1_unit),
        ("sol", "block-exec", "heterogeneous", heur.sol_batches),
        ("sol-declared", "block-exec", "heterogeneous", heur.sol_declared),
        ("h2-time", "block-build", "heterogeneous", heur.h2_time),
        ("h2-unit", "block-build", "homogeneous", heur.h2_unit),
        ("rg", "block-build", "heterogeneous", heur.reward_greedy),
    ]
    rows = []
    made: dict[tuple[str, str], Any] = {}
    for name, problem, workload, run in cases:
        key = (problem, workload)
        if key not in made:
            budget = None
            if problem == "block-build":
                budget = float(BUILD_ROUNDS if workload == "homogeneous" else BUILD_BUDGET)
            made[key] = generate(
                seed, n=n, cores=cores, problem=problem, workload=workload, budget=budget
            )
        base = made[key]
        walls, cpus, graph_walls = [], [], []
        for _ in range(3):
            fresh = base.with_changes()  # a new object: no cached conflict graph
            wall, cpu = time.perf_counter(), time.process_time()
            graph = fresh.graph
            graph_walls.append(time.perf_counter() - wall)
            schedule = run(fresh)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        valid = not validate(fresh, schedule)
        # On a shared machine (load above the core count) wall time measures the neighbours;
        # the CPU time of this process then judges the target.
        busy = os.getloadavg()[0] > (os.cpu_count() or 1) if hasattr(os, "getloadavg") else False
        judged = min(cpus) if busy else min(walls)
        rows.append(
            {
                "section": "heuristics",
                "case": f"{name} {problem} {workload[:6]} n={n} p={cores}",
                "metric": "seconds incl. graph (best of 3)",
                "value": f"wall {min(walls):.3f}, cpu {min(cpus):.3f}, "
                f"graph {min(graph_walls):.3f}",
                "reference": f"< {TARGET_SECONDS} s ({'cpu' if busy else 'wall'}): "
                + ("yes" if judged < TARGET_SECONDS else "NO"),
                "note": f"{graph.num_edges} edges, valid={valid}",
            }
        )
    return rows


# ---------------------------------------------------------------------- section 2


@dataclass(frozen=True)
class Task:
    problem: str
    workload: str
    cores: int
    window: int
    x: int
    strengthened: bool
    time_limit: float


def solve_task(task: Task) -> dict[str, Any]:
    """One grid solve in a worker process; returns plain numbers only."""
    instance = grid_instance(task.problem, task.workload, task.cores, task.window, x=task.x)
    options = SolveOptions(time_limit=task.time_limit, threads=1)
    started = time.perf_counter()
    out: dict[str, Any] = {"task": task, "n": instance.n}
    if task.problem == "block-exec":
        result, schedule = exec_milp.solve_exec(
            instance, "highs", options, strengthened=task.strengthened
        )
        incumbent = schedule.makespan(instance) if schedule is not None else None
        lower = result.bound
        out["heuristic"] = heur.h1(instance).makespan(instance)
        out["sol"] = heur.sol_batches(instance).makespan(instance)
        out["work"] = bounds(instance).work
        gap = _gap(incumbent, lower)
    else:
        result, schedule = build_milp.solve_build(
            instance, "highs", options, strengthened=task.strengthened
        )
        incumbent = schedule.reward(instance) if schedule is not None else None
        upper = result.bound
        out["heuristic"] = heur.h2(instance).reward(instance)
        out["rg"] = heur.reward_greedy(instance).reward(instance)
        if task.strengthened:
            out["lp_bound"] = build_milp.solve_lp_bound(instance, "highs", options).objective
            out["lp_plain"] = build_milp.solve_lp_relaxation(instance, "highs", options)[
                0
            ].objective
        gap = _gap(upper, incumbent)
    out.update(
        proved=result.termination == Termination.OPTIMAL and schedule is not None,
        termination=result.termination.value,
        incumbent=incumbent,
        bound=result.bound,
        gap=gap,
        valid=schedule is not None and not validate(instance, schedule),
        violations=validate(instance, schedule)[:2] if schedule is not None else [],
        solution_status=result.solution_status.value,
        seconds=time.perf_counter() - started,
    )
    return out


def _gap(high: float | None, low: float | None) -> float:
    """Relative gap between an upper and a lower value; 1 when one of them is missing."""
    if high is None or low is None:
        return 1.0
    top = max(abs(high), abs(low))
    return 0.0 if top == 0 else max(0.0, high - low) / top


def grid_tasks(quick: bool, full: bool, time_limit: float) -> list[Task]:
    cores_list = (2,) if quick else (2, 4, 8)
    tasks = []
    for problem in ("block-exec", "block-build"):
        for workload in ("homogeneous", "heterogeneous"):
            several_x = full and problem == "block-build" and workload == "heterogeneous"
            xs = (2, 4) if several_x else (2,)
            for cores in cores_list:
                windows = 1
                if full:
                    homogeneous_build = problem == "block-build" and workload == "homogeneous"
                    windows = (
                        BUILD_HOMOGENEOUS_WINDOWS_FULL
                        if homogeneous_build
                        else (WINDOWS_FULL[cores])
                    )
                for x in xs:
                    for window in range(windows):
                        for strengthened in (False, True):
                            tasks.append(
                                Task(problem, workload, cores, window, x, strengthened, time_limit)
                            )
    return tasks


def grid_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    cells: dict[tuple, dict[bool, list[dict[str, Any]]]] = {}
    for r in results:
        t = r["task"]
        key = (t.problem, t.workload, t.cores, t.x)
        cells.setdefault(key, {False: [], True: []})[t.strengthened].append(r)
    totals = {False: [0, 0], True: [0, 0]}
    for (problem, workload, cores, x), by_form in sorted(cells.items()):
        label = f"{problem} {workload[:6]} p={cores}" + (
            f" x={x}" if problem == "block-build" and workload == "heterogeneous" else ""
        )
        sizes = sorted({r["n"] for rs in by_form.values() for r in rs})
        parts = []
        for strengthened in (False, True):
            rs = by_form[strengthened]
            proved = sum(r["proved"] for r in rs)
            totals[strengthened][0] += proved
            totals[strengthened][1] += len(rs)
            mean_gap = statistics.fmean(r["gap"] for r in rs) if rs else float("nan")
            secs = statistics.fmean(r["seconds"] for r in rs) if rs else float("nan")
            invalid = sum(not r["valid"] for r in rs if r["incumbent"] is not None)
            for r in rs:
                if r["incumbent"] is not None and not r["valid"]:
                    print(
                        f"INVALID {r['task']}: {r['violations']} ({r['solution_status']})",
                        file=sys.stderr,
                    )
            parts.append(
                f"{'strong' if strengthened else 'plain'} {proved}/{len(rs)} proved, "
                f"gap {100 * mean_gap:.2f}%, {secs:.1f}s"
                + (f", {invalid} INVALID" if invalid else "")
            )
        rows.append(
            {
                "section": "grid",
                "case": label,
                "metric": "proved optimal, mean gap, mean time",
                "value": "; ".join(parts),
                "reference": "strong proves more",
                "note": f"n={','.join(map(str, sizes))}",
            }
        )
    plain, strong = totals[False], totals[True]
    rows.append(
        {
            "section": "grid",
            "case": "all cells",
            "metric": "proved optimal",
            "value": f"plain {plain[0]}/{plain[1]}; strengthened {strong[0]}/{strong[1]}",
            "reference": "strong clearly more: " + ("yes" if strong[0] > plain[0] else "NO"),
            "note": "",
        }
    )
    return rows


# ---------------------------------------------------------------------- section 3


def paper_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    strong = [r for r in results if r["task"].strengthened]
    for workload in ("heterogeneous", "homogeneous"):
        for cores in (2, 4, 8):
            rs = [
                r
                for r in strong
                if r["task"].problem == "block-exec"
                and r["task"].workload == workload
                and r["task"].cores == cores
            ]
            if not rs:
                continue
            h1 = statistics.fmean(r["work"] / r["heuristic"] for r in rs)
            best = statistics.fmean(r["work"] / r["incumbent"] for r in rs if r["incumbent"])
            sol = statistics.fmean(r["work"] / r["sol"] for r in rs)
            ratio = statistics.fmean(r["heuristic"] / r["incumbent"] for r in rs if r["incumbent"])
            reference = PAPER.get(f"speedup p={cores}", "-") if workload == "heterogeneous" else "-"
            rows.append(
                {
                    "section": "paper",
                    "case": f"block-exec {workload[:6]} p={cores}",
                    "metric": "speedup H1 / exact / Sol; H1 over exact",
                    "value": f"{h1:.2f}x / {best:.2f}x / {sol:.2f}x; {ratio:.4f}",
                    "reference": f"paper {reference}x" if reference != "-" else "-",
                    "note": "gas-time speedup, mean over windows",
                }
            )
    for workload in ("homogeneous", "heterogeneous"):
        for cores in (2, 4, 8):
            rs = [
                r
                for r in strong
                if r["task"].problem == "block-build"
                and r["task"].workload == workload
                and r["task"].cores == cores
            ]
            if not rs:
                continue
            to_milp = statistics.fmean(_safe(r["heuristic"], r["incumbent"]) for r in rs)
            rg = statistics.fmean(_safe(r["rg"], r["incumbent"]) for r in rs)
            to_lp = statistics.fmean(_safe(r["heuristic"], r["lp_bound"]) for r in rs)
            to_plain = statistics.fmean(_safe(r["heuristic"], r["lp_plain"]) for r in rs)
            key = "h2/milp homogeneous" if workload == "homogeneous" else "h2/lp heterogeneous"
            rows.append(
                {
                    "section": "paper",
                    "case": f"block-build {workload[:6]} p={cores}",
                    "metric": "H2/MILP, RG/MILP, H2/LP-bound, H2/plain-LP",
                    "value": f"{to_milp:.4f}, {rg:.4f}, {to_lp:.4f}, {to_plain:.4f}",
                    "reference": f"paper {PAPER[key]}",
                    "note": "MILP = best incumbent within the limit",
                }
            )
    return rows


def _safe(value: float | None, reference: float | None) -> float:
    if value is None or not reference:
        return float("nan")
    return value / reference


# ---------------------------------------------------------------------- output


def machine() -> str:
    import highspy

    solver = highspy.Highs()
    version = f"{solver.versionMajor()}.{solver.versionMinor()}.{solver.versionPatch()}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cpus, "
        f"python {platform.python_version()}, HiGHS {version}, load average {load:.1f}"
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = ("section", "case", "metric", "value", "reference", "note")
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[k]) for line in cells)) for k, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in cells:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="p = 2 only, 10 s per solve")
    parser.add_argument("--full", action="store_true", help="every window of the grid")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    parser.add_argument("--workers", type=int, default=2, help="parallel solver processes")
    args = parser.parse_args(argv)
    limit = args.time_limit or (10.0 if args.quick else 60.0)

    started = time.perf_counter()
    print(machine(), file=sys.stderr)
    rows = heuristic_timings()
    tasks = grid_tasks(args.quick, args.full, limit)
    print(
        f"{len(tasks)} grid solves, {limit:g} s limit each, {args.workers} workers", file=sys.stderr
    )
    # The largest instances first, so the two workers finish close together.
    ordered = sorted(tasks, key=lambda t: -t.cores)
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(solve_task, ordered))
    rows += grid_rows(results)
    rows += paper_rows(results)
    print(machine())
    print_table(rows)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
