"""Time from numpy data to a generalized assignment model loaded into a solver, without solving.

The rows "gaplab -> cvxpy", "gaplab -> pyomo" and "gaplab -> pulp" time each backend's
hand-over alone, from the compiled arrays to the native model loaded into its solver, beside
the native library building the same model its own usual way from the numpy data.

The model: n items by m machines, binary x[i, j], each item on exactly one machine, machine
loads within capacity, linear cost (n=2000, m=100 gives 200,000 binaries and 400,000 nonzeros).
Every tool runs in a fresh subprocess per repetition; the table shows the median time, the
median peak memory added during the build (resident set high-water mark after the build minus
the one before it), and both as ratios to raw highspy measured in the same run.

Usage: python benchmarks/build_time.py [--items N] [--machines M] [--repeat R] [--only a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def make_data(n: int, m: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    weight = rng.integers(5, 25, size=(n, m)).astype(float)
    cost = rng.integers(10, 50, size=(n, m)).astype(float)
    capacity = np.full(m, np.ceil(1.6 * weight.mean() * n / m))
    return {"weight": weight, "cost": cost, "capacity": capacity}


# ---------------------------------------------------------------------- builders


def build_raw_highspy(data: dict[str, np.ndarray]) -> Any:
    """CSR arrays assembled with numpy and handed to ``passModel`` in one call."""
    import highspy

    weight, cost, capacity = data["weight"], data["cost"], data["capacity"]
    n, m = weight.shape
    columns = np.arange(n * m, dtype=np.int32)
    # Assignment rows: row i contains columns i*m .. i*m+m-1.
    assign_index = columns
    assign_start = np.arange(0, n * m + 1, m, dtype=np.int32)
    # Capacity rows: row j contains columns j, m + j, 2m + j, ...
    capacity_index = columns.reshape(n, m).T.ravel()
    capacity_start = n * m + np.arange(0, n * m + 1, n, dtype=np.int32)
    start = np.concatenate([assign_start[:-1], capacity_start]).astype(np.int32)
    index = np.concatenate([assign_index, capacity_index]).astype(np.int32)
    value = np.concatenate([np.ones(n * m), weight.T.ravel()])
    row_lower = np.concatenate([np.ones(n), np.full(m, -np.inf)])
    row_upper = np.concatenate([np.ones(n), capacity])
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(
        n * m,
        n + m,
        len(value),
        2,
        1,
        0.0,
        cost.ravel(),
        np.zeros(n * m),
        np.ones(n * m),
        row_lower,
        row_upper,
        start,
        index,
        value,
        np.ones(n * m, dtype=np.int32),
    )
    return h


def build_gaplab(data: dict[str, np.ndarray]) -> Any:
    """Declared with gaplab.modeling, compiled, and loaded by the highs backend's bulk call."""
    from gaplab.solvers._highs_util import new_highs
    from gaplab.solvers.highs import load_into_highs

    h = new_highs()
    load_into_highs(compile_gap(data), h)
    return h


def compile_gap(data: dict[str, np.ndarray]) -> Any:
    from gaplab.modeling import Model

    weight, cost, capacity = data["weight"], data["cost"], data["capacity"]
    n, m = weight.shape
    model = Model("gap")
    item = model.index("item", range(n))
    machine = model.index("machine", range(m))
    x = model.binary("x", item, machine)
    model.subject_to("assign", x.sum("machine") == 1)
    model.subject_to("capacity", (x * weight).sum("item") <= capacity)
    model.minimize((x * cost).sum())
    return model.compile()


def build_gaplab_pyomo(data: dict[str, Any]) -> Any:
    """gaplab's pyomo backend building its model from the compiled arrays, into appsi's HiGHS."""
    from pyomo.contrib import appsi

    from gaplab.solvers.pyomo_backend import build_model

    block, _, _ = build_model(data["compiled"])
    solver = appsi.solvers.Highs()
    solver.set_instance(block)
    return solver


def build_gaplab_pulp(data: dict[str, Any]) -> Any:
    """gaplab's PuLP backend building its LpProblem from the arrays, into pulp's HiGHS."""
    import pulp

    from gaplab.solvers.pulp_backend import build_problem

    problem, _, _ = build_problem(data["compiled"])
    solver = pulp.HiGHS(msg=False)
    solver.createAndConfigureSolver(problem)
    solver.buildSolverModel(problem)
    return problem


def build_gaplab_cvxpy(data: dict[str, Any]) -> Any:
    """gaplab's cvxpy backend building its problem from the arrays, compiled for HiGHS."""
    import cvxpy as cp

    from gaplab.solvers.cvxpy_backend import build_problem

    built = build_problem(data["compiled"])
    return built.problem.get_problem_data(cp.HIGHS)


def build_pyomo(data: dict[str, np.ndarray]) -> Any:
    """Pyomo's usual ConcreteModel with rule-based constraints, loaded into appsi's HiGHS."""
    import pyomo.environ as pyo
    from pyomo.contrib import appsi

    weight, cost, capacity = data["weight"], data["cost"], data["capacity"]
    n, m = weight.shape
    model = pyo.ConcreteModel()
    model.I = pyo.RangeSet(0, n - 1)
    model.J = pyo.RangeSet(0, m - 1)
    model.x = pyo.Var(model.I, model.J, domain=pyo.Binary)
    model.assign = pyo.Constraint(model.I, rule=lambda mdl, i: sum(mdl.x[i, j] for j in mdl.J) == 1)
    model.capacity = pyo.Constraint(
        model.J,
        rule=lambda mdl, j: sum(weight[i, j] * mdl.x[i, j] for i in mdl.I) <= capacity[j],
    )
    model.cost = pyo.Objective(
        expr=sum(cost[i, j] * model.x[i, j] for i in model.I for j in model.J)
    )
    solver = appsi.solvers.Highs()
    solver.set_instance(model)
    return solver


def build_pulp(data: dict[str, np.ndarray]) -> Any:
    """PuLP's usual LpProblem with lpSum, loaded into HiGHS through pulp's highspy interface."""
    import pulp

    weight, cost, capacity = data["weight"], data["cost"], data["capacity"]
    n, m = weight.shape
    problem = pulp.LpProblem("gap", pulp.LpMinimize)
    x = pulp.LpVariable.dicts("x", (range(n), range(m)), cat="Binary")
    problem += pulp.lpSum(cost[i, j] * x[i][j] for i in range(n) for j in range(m))
    for i in range(n):
        problem += pulp.lpSum(x[i][j] for j in range(m)) == 1
    for j in range(m):
        problem += pulp.lpSum(weight[i, j] * x[i][j] for i in range(n)) <= capacity[j]
    solver = pulp.HiGHS(msg=False)
    solver.createAndConfigureSolver(problem)
    solver.buildSolverModel(problem)
    return problem


def build_cvxpy(data: dict[str, np.ndarray]) -> Any:
    """cvxpy with matrix expressions, compiled to HiGHS' arrays by ``get_problem_data``."""
    import cvxpy as cp

    weight, cost, capacity = data["weight"], data["cost"], data["capacity"]
    n, m = weight.shape
    x = cp.Variable((n, m), boolean=True)
    problem = cp.Problem(
        cp.Minimize(cp.sum(cp.multiply(cost, x))),
        [cp.sum(x, axis=1) == 1, cp.sum(cp.multiply(weight, x), axis=0) <= capacity],
    )
    return problem.get_problem_data(cp.HIGHS)


def build_linopy(data: dict[str, np.ndarray]) -> Any:
    """linopy with xarray coordinates, handed to HiGHS by ``to_highspy``."""
    import linopy
    import pandas as pd
    import xarray as xr

    weight, cost, capacity = data["weight"], data["cost"], data["capacity"]
    n, m = weight.shape
    items = pd.RangeIndex(n, name="item")
    machines = pd.RangeIndex(m, name="machine")
    model = linopy.Model()
    x = model.add_variables(binary=True, coords=[items, machines], name="x")
    w = xr.DataArray(weight, coords=[items, machines])
    c = xr.DataArray(cost, coords=[items, machines])
    cap = xr.DataArray(capacity, coords=[machines])
    model.add_constraints(x.sum("machine") == 1, name="assign")
    model.add_constraints((w * x).sum("item") <= cap, name="capacity")
    model.add_objective((c * x).sum())
    return model.to_highspy()


BUILDERS: dict[str, Callable[[dict[str, np.ndarray]], Any]] = {
    "raw highspy": build_raw_highspy,
    "gaplab -> highs": build_gaplab,
    "cvxpy": build_cvxpy,
    "linopy": build_linopy,
    "pyomo": build_pyomo,
    "pulp": build_pulp,
    "gaplab -> cvxpy": build_gaplab_cvxpy,
    "gaplab -> pyomo": build_gaplab_pyomo,
    "gaplab -> pulp": build_gaplab_pulp,
}
HANDOVER = ("gaplab -> cvxpy", "gaplab -> pyomo", "gaplab -> pulp")
"""Rows that time only a backend's hand-over, from the CompiledModel to the native model."""
NATIVE_PEER = {
    "gaplab -> highs": "raw highspy",
    "gaplab -> cvxpy": "cvxpy",
    "gaplab -> pyomo": "pyomo",
    "gaplab -> pulp": "pulp",
}
"""Each gaplab backend and the native library it is compared with."""
IMPORTS = {
    "raw highspy": ["highspy"],
    "gaplab -> highs": ["gaplab.modeling", "gaplab.solvers.highs", "highspy"],
    "cvxpy": ["cvxpy"],
    "linopy": ["linopy", "xarray"],
    "pyomo": ["pyomo.environ", "pyomo.contrib.appsi.solvers"],
    "pulp": ["pulp", "highspy"],
    "gaplab -> cvxpy": ["gaplab.modeling", "gaplab.solvers.cvxpy_backend", "cvxpy"],
    "gaplab -> pyomo": ["gaplab.modeling", "gaplab.solvers.pyomo_backend", "pyomo.environ"],
    "gaplab -> pulp": ["gaplab.modeling", "gaplab.solvers.pulp_backend", "pulp", "highspy"],
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(tool: str, n: int, m: int) -> None:
    """Measure one build in this process and print one JSON line."""
    import importlib

    for module in IMPORTS[tool]:
        importlib.import_module(module)
    if "highspy" in IMPORTS[tool] or tool.startswith("gaplab"):
        # HiGHS' first-use banner and thread scheduler start are paid once per process, not
        # per model, so every tool that uses highspy pays them before the clock starts.
        from gaplab.solvers._highs_util import new_highs

        new_highs()
    data: dict[str, Any] = dict(make_data(n, m))
    if tool in HANDOVER:
        # A backend's hand-over starts from the CompiledModel; declaring and compiling it is
        # the "gaplab -> highs" row's business.
        data["compiled"] = compile_gap(data)
    before = _peak_mb()
    cpu_started = time.process_time()
    started = time.perf_counter()
    handle = BUILDERS[tool](data)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    after = _peak_mb()
    del handle
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": after - before}))


def measure(tool: str, n: int, m: int, repeat: int) -> dict[str, float] | None:
    times, cpu, peaks = [], [], []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, __file__, "--child", tool, "--items", str(n), "--machines", str(m)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            print(f"  {tool}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return None
        line = [x for x in done.stdout.splitlines() if x.startswith("{")][-1]
        sample = json.loads(line)
        times.append(sample["seconds"])
        cpu.append(sample["cpu_seconds"])
        peaks.append(sample["peak_mb"])
    return {
        "seconds": statistics.median(times),
        "cpu_seconds": statistics.median(cpu),
        "peak_mb": statistics.median(peaks),
    }


def _ratio(found: dict[str, float], base: dict[str, float] | None, key: str) -> str:
    if not base or not base[key]:
        return "-"
    return f"{found[key] / base[key]:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of the fast tools")
    parser.add_argument("--slow-repeat", type=int, default=2, help="repetitions of pyomo, pulp")
    parser.add_argument("--only", default=None, help="comma-separated subset of tools")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.items, args.machines)
        return 0

    tools = list(BUILDERS) if args.only is None else args.only.split(",")
    n, m = args.items, args.machines
    print(
        f"generalized assignment, {n} items x {m} machines = {n * m:,} binaries; "
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    results: dict[str, dict[str, float]] = {}
    for tool in tools:
        slow = tool in ("pyomo", "pulp", "gaplab -> pyomo", "gaplab -> pulp")
        repeat = args.slow_repeat if slow else args.repeat
        print(f"  measuring {tool} ({repeat} runs) ...", file=sys.stderr)
        found = measure(tool, n, m, repeat)
        if found is not None:
            results[tool] = found
    base = results.get("raw highspy")
    print(
        f"{'tool':<18} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'wall/raw':>9} "
        f"{'cpu/raw':>8} {'mem/raw':>8}"
    )
    for tool, found in results.items():
        print(
            f"{tool:<18} {found['seconds']:>8.3f} {found['cpu_seconds']:>8.3f} "
            f"{found['peak_mb']:>8.1f} {_ratio(found, base, 'seconds'):>9} "
            f"{_ratio(found, base, 'cpu_seconds'):>8} {_ratio(found, base, 'peak_mb'):>8}"
        )
    if base and "gaplab -> highs" in results:
        ours = results["gaplab -> highs"]
        ok = (
            ours["cpu_seconds"] <= 1.5 * base["cpu_seconds"]
            and ours["peak_mb"] <= 1.5 * base["peak_mb"]
        )
        verdict = "met" if ok else "NOT met"
        print(f"target gaplab <= 1.5 x raw highspy in CPU time and peak memory: {verdict}")
    for ours_name, peer_name in NATIVE_PEER.items():
        if ours_name in results and peer_name in results:
            ours, peer = results[ours_name], results[peer_name]
            ratio = ours["cpu_seconds"] / peer["cpu_seconds"]
            verdict = "no slower" if ratio <= 1.0 else "slower"
            print(f"{ours_name:<18} vs native {peer_name:<12} CPU ratio {ratio:5.2f} ({verdict})")
    fastest = min(results, key=lambda name: results[name]["cpu_seconds"]) if results else None
    gaplab_paths = [name for name in results if name.startswith("gaplab")]
    if gaplab_paths:
        best = min(gaplab_paths, key=lambda name: results[name]["cpu_seconds"])
        print(f"fastest tool: {fastest}; fastest gaplab path: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
