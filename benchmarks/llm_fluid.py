"""Benchmark of llm-fluid: simulator throughput and the policy table at n = 500 GPUs.

Prints the machine, the events per second of the simulator (target: at least 200,000 on one
core) for gate-and-route at several n, then every policy's revenue per GPU per second at
n = 500 with its 95 % confidence half-width and its gap to the LP value R*.

With ``GAPLAB_DATA`` set to a folder laid out like the shared data sets, it also prints the
classes imported from the Azure code trace and the iteration-time fit of the vidur H100 profile
with its R^2.

Usage: ``python benchmarks/llm_fluid.py [--horizon SECONDS] [--seeds K] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gaplab.heuristics.llm_fluid import make_policy
from gaplab.models.llm_fluid.compare import PROFILE, TRACE, policy_table
from gaplab.models.llm_fluid.importers import classes_from_trace, fit_profile
from gaplab.models.llm_fluid.instance import two_class_instance
from gaplab.models.llm_fluid.solve import solve_fluid
from gaplab.sim.llm_fluid import simulate

TARGET_EVENTS_PER_SECOND = 200_000


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {load:.2f}"
    )


def throughput(horizon: float) -> pd.DataFrame:
    """Time gate-and-route runs at several n; events exclude thinning rejections.

    Throughput is events per processor second of this process (one core), which stays
    meaningful when other jobs share the machine; wall seconds are shown beside it.
    """
    instance = two_class_instance()
    policy, _ = make_policy("GG-SP", instance)
    rows = []
    for n in (50, 200, 500):
        sim = simulate(instance, policy, gpus=n, horizon=horizon, seed=11)
        rows.append(
            {
                "gpus": n,
                "events": sim.events,
                "wall_seconds": sim.seconds,
                "cpu_seconds": sim.cpu_seconds,
                "events_per_cpu_second": sim.events_per_second,
            }
        )
    return pd.DataFrame(rows)


def real_data(root: Path) -> None:
    """Print the classes of the Azure code trace and the fit of the vidur profile."""
    trace = root / TRACE
    if trace.is_file():
        instance = classes_from_trace(trace, 3)
        result, plan = solve_fluid(instance)
        print(f"\nAzure code trace in 3 classes (one GPU), bundled R* = {plan.objective:.3f}:")
        table = pd.DataFrame(
            {
                "P": instance.prompt_tokens,
                "D": instance.output_tokens,
                "lambda": instance.arrival_rate,
            },
            index=instance.classes,
        )
        print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    profile = root / PROFILE
    if profile.is_file():
        fit = fit_profile(profile)
        print(
            f"vidur H100 Llama-2-7B profile: alpha = {fit.alpha * 1e3:.3f} ms, "
            f"beta = {fit.beta * 1e6:.3f} us/token, gamma = {fit.gamma:.1f} tokens/s, "
            f"breakpoint {fit.b0:.0f} tokens, R^2 = {fit.r2:.4f} over {fit.points} token counts"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=400.0, help="simulated seconds per run")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per policy at n = 500")
    parser.add_argument("--quick", action="store_true", help="horizon 150 s and one seed")
    args = parser.parse_args()
    horizon = 150.0 if args.quick else args.horizon
    seeds = 1 if args.quick else args.seeds

    pd.set_option("display.width", 140)
    print(f"machine: {machine()}")
    instance = two_class_instance()
    for pricing in ("bundled", "separate"):
        result, plan = solve_fluid(instance, pricing)
        milliseconds = result.solve_seconds * 1e3
        print(f"LP {pricing}: R* = {plan.objective:.5f} ({milliseconds:.1f} ms in HiGHS)")

    if os.environ.get("GAPLAB_DATA"):
        real_data(Path(os.environ["GAPLAB_DATA"]))

    rates = throughput(min(horizon, 300.0))
    print("\nsimulator throughput, gate-and-route on the two-class instance (one core):")
    print(rates.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    best = rates["events_per_cpu_second"].max()
    verdict = "meets" if best >= TARGET_EVENTS_PER_SECOND else "misses"
    print(
        f"best {best:,.0f} events per CPU second {verdict} the target of "
        f"{TARGET_EVENTS_PER_SECOND:,}"
    )

    started = time.perf_counter()
    tables = [policy_table(instance, gpus=(500,), horizon=horizon, seed=s) for s in range(seeds)]
    frame = pd.concat(tables)
    summary = frame.groupby("policy", sort=False).agg(
        revenue=("revenue", "mean"),
        seed_sd=("revenue", "std"),
        ci95_one_run=("ci95", "mean"),
        lp_value=("lp_value", "first"),
        pricing=("pricing", "first"),
        mean_queue=("mean_q_p", "mean"),
        mean_buffer=("mean_q_d", "mean"),
    )
    summary["gap_percent"] = 100 * (summary["lp_value"] - summary["revenue"]) / summary["lp_value"]
    print(
        f"\npolicies at n = 500, horizon {horizon:.0f} s (a third warm-up), {seeds} seed(s), "
        f"{time.perf_counter() - started:.1f} s wall:"
    )
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    bundled = summary[summary["pricing"] == "bundled"]
    leader = bundled["revenue"].idxmax()
    for name in ("GG-SP", "GG-SP-hold"):
        gap = summary.loc[name, "gap_percent"]
        shown = f"{gap:.2f} %" if np.isfinite(gap) else "no estimate"
        print(f"{name} gap to R*: {shown} (expected within 2 %)")
    print(f"best bundled policy: {leader}")


if __name__ == "__main__":
    main()
