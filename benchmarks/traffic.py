"""Benchmark of the traffic model: time to a relative gap of 1e-6 for three solution routes.

The instances are generated from 5 sources x 3 nodes to 200 x 30, plus the network topologies
when a data folder is given. The script first computes the reference optimum ``F*`` with the
direct cvxpy program plus the Newton polish, then measures side by side:

- ``cvxpy``: the program built with gaplab.modeling and solved natively by ``cvxpy:CLARABEL``,
  interpreted and polished;
- ``tangent``: the same model on ``highs`` through tangent cuts (``convex_tolerance`` 1e-6);
- ``pricing``: the default distributed pricing iteration, from step 0.25 and damping 0.5,
  halving both and restarting on each detected cycle, timed until ``|F - F*| / F* <= 1e-6``;
- ``fixed``: the published fixed steps 0.25 and 0.5 (``-`` when it stops on a cycle first);
- ``small``: fixed steps 0.01 and damping 0.02.

The status columns give each pricing run's final status and iteration count.

``direct_s`` is the hand-written cvxpy program with the polish, which gives ``F*``. Comparing
it with ``cvxpy_s`` shows the cost of going through gaplab.modeling. Each time is wall seconds
of one run on this machine (other processes may share its cores), and each route's reached gap
is shown next to it. Ratios are against the cvxpy route.

Usage: ``python benchmarks/traffic.py [--quick] [--data-dir DIR] [--time-limit SECONDS]``
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from gaplab.models.traffic import Instance, generate, import_network, objective, solve_direct
from gaplab.models.traffic.exact import solve_exact
from gaplab.sim.traffic_pricing import run_pricing
from gaplab.solvers import SolveOptions

TARGET = 1e-6
SIZES = [(5, 3), (20, 5), (50, 10), (100, 20), (200, 30)]
NETWORKS = [
    "repetita_Abilene.graph",
    "repetita_AttMpls.graph",
    "repetita_Geant2012.graph",
    "topologyzoo_Abilene.graphml",
    "topologyzoo_Geant2012.graphml",
]


def _gap(value: float | None, optimum: float) -> float | None:
    if value is None:
        return None
    return abs(value - optimum) / optimum


def measure(instance: Instance, time_limit: float) -> dict[str, Any]:
    """Times and reached gaps of the three routes on one instance."""
    started = time.perf_counter()
    _, reference = solve_direct(instance)
    assert reference is not None
    direct_seconds = time.perf_counter() - started
    optimum = objective(instance, reference.flows)
    row: dict[str, Any] = {
        "instance": instance.name,
        "size": f"{instance.num_sources}x{instance.num_nodes}",
        "F*": optimum,
        "direct_s": direct_seconds,
    }

    options = SolveOptions(time_limit=time_limit, convex_tolerance=TARGET)
    for route, backend in (("cvxpy", "cvxpy:CLARABEL"), ("tangent", "highs")):
        started = time.perf_counter()
        result, allocation = solve_exact(instance, backend, options)
        row[f"{route}_s"] = time.perf_counter() - started
        value = None if allocation is None else objective(instance, allocation.flows)
        row[f"{route}_gap"] = _gap(value, optimum)
        row[f"{route}_status"] = result.termination.value

    variants = {
        "pricing": {"adaptive": True},
        "fixed": {},
        "small": {"eta": 0.01, "gamma": 0.02, "max_iter": 20000},
    }
    for route, parameters in variants.items():
        run = run_pricing(instance, reference=optimum, gap_targets=(TARGET,), **parameters)
        row[f"{route}_s"] = run.gap_reached_at.get(TARGET)
        row[f"{route}_status"] = f"{run.status} {run.iterations}"
    return row


def _fmt(value: Any, width: int) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.3g}"
    else:
        text = str(value)
    return text.rjust(width)


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = [
        ("instance", 22),
        ("size", 7),
        ("direct_s", 9),
        ("cvxpy_s", 8),
        ("cvxpy_gap", 9),
        ("tangent_s", 9),
        ("tangent_gap", 11),
        ("tangent_status", 14),
        ("pricing_s", 9),
        ("pricing_status", 15),
        ("fixed_s", 8),
        ("fixed_status", 15),
        ("small_s", 8),
        ("small_status", 15),
    ]
    print(" ".join(name.rjust(width) for name, width in columns))
    for row in rows:
        print(" ".join(_fmt(row.get(name), width) for name, width in columns))
    print()
    print("ratios to the cvxpy route (time to reach the gap):")
    ratios = [("instance", 22), ("tangent", 8), ("pricing", 8), ("fixed", 8), ("small", 8)]
    print(" ".join(name.rjust(width) for name, width in ratios))
    for row in rows:
        cvxpy = row["cvxpy_s"]
        cells = [row["instance"].rjust(22)]
        for name, width in ratios[1:]:
            value = row.get(f"{name}_s")
            cells.append(_fmt(value / cvxpy if value is not None and cvxpy else None, width))
        print(" ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes up to 50 x 10 only")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ["GAPLAB_DATA"]) if os.environ.get("GAPLAB_DATA") else None,
        help="folder laid out like the shared data sets (default: $GAPLAB_DATA)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=60.0, help="seconds per exact solve (default 60)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, {platform.processor() or '?'}")
    print(f"target: relative gap {TARGET:g} to F* (direct cvxpy + Newton polish)")
    instances = [generate(0, size, load=0.5) for size in (SIZES[:3] if args.quick else SIZES)]
    if args.data_dir is not None:
        for name in NETWORKS[:1] if args.quick else NETWORKS:
            path = args.data_dir / "network" / name
            if path.is_file():
                instances.append(import_network(path))
    # Warm up: the first solve pays for importing cvxpy and its solver interfaces.
    solve_exact(instances[0], "cvxpy:CLARABEL")
    rows = []
    for instance in instances:
        rows.append(measure(instance, args.time_limit))
    print_table(rows)


if __name__ == "__main__":
    main()
