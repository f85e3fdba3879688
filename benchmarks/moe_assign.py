"""Benchmark of moe-assign: greedy decision time against one MILP solve, greedy over optimal
on generated traces and on the Fiddler popularity files, and cache hit rates per policy.

Run ``.venv/bin/python benchmarks/moe_assign.py [--quick] [--data-dir DIR]``; the popularity
part runs when ``--data-dir`` or ``GAPLAB_DATA`` names a folder laid out like the shared data.
Timings are wall-clock medians on the machine that runs the script, so they move with its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from gaplab.heuristics.moe_assign import greedy, greedy_assign
from gaplab.models.moe_assign.bounds import brute_force
from gaplab.models.moe_assign.build import solve_milp
from gaplab.models.moe_assign.hardware import cost_model, get_shape
from gaplab.models.moe_assign.importers import (
    hit_mass,
    instances_from_popularity,
    load_popularity,
    popularity_files,
)
from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.traces import generate_trace
from gaplab.models.moe_assign.validate import layer_time
from gaplab.sim.moe_cache import make_policy, popular_initial, replay_cache
from gaplab.sim.moe_prefetch import precision_at_1
from gaplab.sim.moe_replay import NAIVE, simulate
from gaplab.solvers import SolveOptions

SHAPES = ("mixtral-8x7b", "deepseek-v2-lite", "qwen3-30b-a3b")


def machine() -> str:
    import highspy

    highs = highspy.Highs()
    version = f"{highs.versionMajor()}.{highs.versionMinor()}.{highs.versionPatch()}"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, HiGHS {version}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def layer_with(active: int, seed: int = 0) -> Instance:
    """Generate a prefill layer in which exactly ``active`` experts have work."""
    shape = {8: "mixtral-8x7b", 64: "deepseek-v2-lite", 128: "qwen3-30b-a3b"}[active]
    instance = Instance.generate(seed=seed, shape=shape, batch=8, phase="prefill")
    if instance.n != active:
        raise RuntimeError(f"expected {active} active experts, got {instance.n}")
    return instance


def median_seconds(call, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_decision_time(quick: bool) -> None:
    print("\n## One greedy decision against one exact MILP solve (same layer)\n")
    print("| experts | greedy median (us) | MILP median (ms) | MILP / greedy |")
    print("|---|---|---|---|")
    for active in (8, 64, 128):
        inst = layer_with(active)
        w = inst.workload
        cached = inst.cached

        def decide(inst: Instance = inst, w: np.ndarray = w, cached: np.ndarray = cached) -> None:
            g = inst.gpu_fixed_s + inst.gpu_per_token_s * w
            g = g + np.where(cached, 0.0, inst.transfer_s)
            p = inst.cpu_fixed_s + inst.cpu_per_token_s * w
            greedy_assign(g, p, ~cached, gpu_base=inst.gpu_base_s)

        greedy_s = median_seconds(decide, 500 if quick else 5000)
        milp_s = median_seconds(
            lambda inst=inst: solve_milp(inst, "highs", SolveOptions(time_limit=30)),
            3 if quick else 9,
        )
        print(
            f"| {active} | {greedy_s * 1e6:.1f} | {milp_s * 1e3:.1f} | {milp_s / greedy_s:,.0f} |"
        )


def summarize(name: str, performance: list[float]) -> None:
    values = np.array(performance)
    print(
        f"| {name} | {len(values)} | {values.mean():.4f} | {np.percentile(values, 5):.4f} | "
        f"{values.min():.4f} | {np.mean(values >= 1 - 1e-9) * 100:.0f} % |"
    )


def bench_greedy_over_optimal(quick: bool, data_dir: Path | None) -> None:
    print("\n## Greedy performance as a fraction of the optimum (OPT / greedy layer time)\n")
    print(
        "Greedy uses the difference key and the best prefix. "
        "DALI (arXiv:2602.03495) reports up to 0.92.\n"
    )
    print("| layers from | layer-steps | mean | 5th percentile | worst | exact |")
    print("|---|---|---|---|---|---|")
    steps = 3 if quick else 6
    for shape in SHAPES:
        trace = generate_trace(shape, seed=21, batch=16, prompt_tokens=16, decode_steps=steps)
        model = get_shape(shape)
        capacity = model.experts // 4
        resident = popular_initial(trace.popularity, capacity)
        performance = []
        for step in range(trace.steps):
            costs = cost_model(model, tokens=int(trace.tokens[step]))
            for layer in range(0, trace.layers, 2 if quick else 1):
                inst = Instance.from_layer_counts(
                    trace.workload[step, layer],
                    resident[layer],
                    costs,
                    top_k=model.top_k,
                    tokens=int(trace.tokens[step]),
                )
                result, solution = solve_milp(inst, "highs", SolveOptions(time_limit=30))
                if solution is None or result.termination.value != "optimal":
                    print(f"  skipped {shape} step {step} layer {layer}: {result.termination}")
                    continue
                optimum = layer_time(inst, solution.on_gpu)
                performance.append(optimum / layer_time(inst, greedy(inst).on_gpu))
        summarize(f"{shape} trace (prefill + decode, batch 16)", performance)

    if data_dir is None:
        print("| popularity files | skipped: pass --data-dir or set GAPLAB_DATA | | | | |")
        return
    performance = []
    for path in popularity_files(data_dir):
        popularity = load_popularity(path)
        for batch in (1, 4, 16, 64):
            for inst in instances_from_popularity(popularity, batch=batch, seed=batch):
                optimum, _ = brute_force(inst)
                performance.append(optimum / layer_time(inst, greedy(inst).on_gpu))
    summarize("Fiddler popularity, 7 subjects x 32 layers x batch 1/4/16/64", performance)


def bench_static_cache(data_dir: Path | None) -> None:
    if data_dir is None:
        return
    print("\n## Static cache chosen on one subject, hit mass on the other six (Mixtral)\n")
    print("Per layer: the 2 most popular of 8 experts; shared: the 64 most popular pairs.\n")
    print(
        "| chosen on | per layer, own | per layer, others (mean) | shared, own | shared, others |"
    )
    print("|---|---|---|---|---|")
    subjects = [load_popularity(path) for path in popularity_files(data_dir)]
    for chosen in subjects:
        others = [other for other in subjects if other is not chosen]
        cells = []
        for resident in (chosen.resident_top(2), chosen.resident_global(64)):
            cells.append(f"{hit_mass(resident, chosen.shares):.3f}")
            cells.append(f"{np.mean([hit_mass(resident, o.shares) for o in others]):.3f}")
        print(f"| {chosen.subject} | " + " | ".join(cells) + " |")


def bench_caches(quick: bool) -> None:
    print("\n## Decode hit rates with 25 % of each layer's experts cached (batch 16)\n")
    print("Every miss is copied and offered to the cache, as in GPU-only offloading.\n")
    grid = [(1, 1), (2, 2), (4, 2), (4, 4), (8, 4)]
    header = " | ".join(f"warc w{w}/u{u}" for w, u in grid)
    print(f"| shape | {header} | lru | lfu | score |")
    print("|---|" + "---|" * (len(grid) + 3))
    prefetch_rows = []
    speedup_rows = []
    combos = [("greedy", "none", "lru"), ("greedy", "none", "warc"), ("greedy", "residual", "warc")]
    for shape in SHAPES:
        trace = generate_trace(
            shape, seed=5, batch=16, prompt_tokens=16, decode_steps=16 if quick else 48
        )
        capacity = trace.num_experts // 4
        initial = popular_initial(trace.popularity, capacity)
        rates = []
        for window, swaps in grid:
            policy = make_policy(
                "warc",
                trace.layers,
                trace.num_experts,
                capacity,
                initial,
                window=window,
                swaps=swaps,
            )
            rates.append(replay_cache(trace, policy, include_prefill=False).hit_rate)
        for name in ("lru", "lfu", "score"):
            policy = make_policy(name, trace.layers, trace.num_experts, capacity, initial)
            rates.append(replay_cache(trace, policy, include_prefill=False).hit_rate)
        print(f"| {shape} | " + " | ".join(f"{rate:.3f}" for rate in rates) + " |")

        plain = precision_at_1(trace, "plain", phase="decode")
        residual = precision_at_1(trace, "residual", phase="decode")
        prefetch_rows.append(f"| {shape} | {plain:.3f} | {residual:.3f} |")

        naive = simulate(trace, assignment=NAIVE[0], prefetch=NAIVE[1], cache=NAIVE[2])
        speedups = []
        for assignment, prefetch, cache in combos:
            outcome = simulate(trace, assignment=assignment, prefetch=prefetch, cache=cache)
            speedups.append(f"{naive.seconds / outcome.seconds:.2f}x")
        speedup_rows.append(f"| {shape} | " + " | ".join(speedups) + " |")

    print("\n## Next-layer prediction, decode steps: precision at 1\n")
    print("| shape | plain | residual-corrected |")
    print("|---|---|---|")
    print("\n".join(prefetch_rows))
    print("\n## Simulated speedup over naive (cached experts on GPU, rest on CPU, no copies)\n")
    print("| shape | " + " | ".join("+".join(combo) for combo in combos) + " |")
    print("|---|" + "---|" * len(combos))
    print("\n".join(speedup_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and layers")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("GAPLAB_DATA"),
        help="folder laid out like the shared data (default: $GAPLAB_DATA)",
    )
    args = parser.parse_args()
    data_dir = Path(args.data_dir) if args.data_dir else None
    print("# moe-assign benchmark\n")
    print(f"Machine: {machine()}")
    started = time.perf_counter()
    bench_decision_time(args.quick)
    bench_greedy_over_optimal(args.quick, data_dir)
    bench_static_cache(data_dir)
    bench_caches(args.quick)
    print(f"\nTotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
