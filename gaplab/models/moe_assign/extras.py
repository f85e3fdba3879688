"""Model-specific rows of ``compare`` and ``run``: decision times, greedy over optimal, cache
hit rates, end-to-end replay speedups, and a plot of the hit rates."""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.heuristics.moe_assign import greedy, greedy_assign, greedy_ratio
from gaplab.models.moe_assign.bounds import BRUTE_FORCE_MAX_EXPERTS, brute_force, lp_bound
from gaplab.models.moe_assign.build import solve_milp
from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.suite import INSTANCE_ROWS
from gaplab.models.moe_assign.traces import generate_trace
from gaplab.models.moe_assign.validate import evaluate
from gaplab.sim.moe_cache import make_policy, popular_initial, replay_cache
from gaplab.sim.moe_prefetch import precision_at_1
from gaplab.sim.moe_replay import NAIVE, simulate
from gaplab.solvers import SolveOptions

logger = logging.getLogger(__name__)

MODEL = "moe-assign"

CACHE_POLICIES: dict[str, dict[str, Any]] = {
    "warc": {"window": 4, "swaps": 2},
    "lru": {},
    "lfu": {},
    "score": {},
}
"""Cache policies compared in the extras, with their options."""

COMBINATIONS = [
    NAIVE,
    ("static", "none", "lru"),
    ("greedy", "none", "lru"),
    ("greedy", "none", "warc"),
    ("greedy", "plain", "warc"),
    ("greedy", "residual", "warc"),
    ("greedy", "residual", "lfu"),
    ("greedy", "residual", "score"),
]
"""(assignment, prefetch, cache) combinations replayed end to end; the first is the naive one."""

QUICK_COMBINATIONS = [NAIVE, ("greedy", "none", "lru"), ("greedy", "residual", "warc")]


def decision_microseconds(instance: Instance, repeats: int = 200) -> float:
    """Return the median time of one greedy decision on ``instance``, in microseconds.

    One decision computes ``g`` and ``p`` from the workloads and cache flags and runs the
    greedy rule, as a runtime would once per layer and step.
    """
    w = instance.workload
    cached = instance.cached
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        g = instance.gpu_fixed_s + instance.gpu_per_token_s * w
        g = g + np.where(cached, 0.0, instance.transfer_s)
        p = instance.cpu_fixed_s + instance.cpu_per_token_s * w
        greedy_assign(g, p, ~cached, slot_limit=instance.slot_limit, gpu_base=instance.gpu_base_s)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def instance_rows(instance: Instance, quick: bool) -> list[dict[str, Any]]:
    """Greedy over optimal, LP bound, decision times and (small layers) the brute-force check.

    The row's ``objective`` is the MILP optimum and its ``bound`` the LP relaxation value, both
    in milliseconds.
    """
    started = time.perf_counter()
    result, solution = solve_milp(instance, "highs", SolveOptions(time_limit=5.0))
    milp_seconds = time.perf_counter() - started
    lp_ms = lp_bound(instance) * 1e3
    row: dict[str, Any] = {
        "method": "extras:assignment",
        "status": result.termination.value,
        "shape": instance.shape,
        "phase": instance.phase,
        "batch": instance.tokens if instance.phase == "decode" else instance.meta.get("batch"),
        "experts_active": instance.n,
        "lp_bound_ms": lp_ms,
        "bound": lp_ms,
        "greedy_us": decision_microseconds(instance, 50 if quick else 200),
        "milp_ms": milp_seconds * 1e3,
    }
    if solution is not None:
        optimum = evaluate(instance, solution)  # milliseconds
        row["objective"] = optimum
        row["greedy_over_optimal"] = evaluate(instance, greedy(instance)) / optimum
        row["ratio_key_over_optimal"] = evaluate(instance, greedy_ratio(instance)) / optimum
        row["milp_over_greedy_time"] = row["milp_ms"] * 1e3 / row["greedy_us"]
        if instance.n <= min(16, BRUTE_FORCE_MAX_EXPERTS):
            best_ms = brute_force(instance)[0] * 1e3
            row["milp_equals_brute_force"] = bool(abs(best_ms - optimum) <= 1e-9 * max(1, best_ms))
    return [row]


CEILING_MARGIN = 0.01
"""Hit-rate distance from the ceiling within which policies count as indistinguishable."""


@dataclass(frozen=True)
class HitRates:
    """Decode hit rates of the cache policies on one trace, and what bounds them."""

    rates: dict[str, float]
    """Hit rate per cache policy."""
    max_rate: float
    """Hit rate of a cache that always held the active experts, the ceiling of every policy."""
    capacity: int
    """Resident experts per layer."""
    experts: int
    """Routed experts per layer."""
    mean_active: float
    """Mean number of active experts per layer and decode step."""

    def note(self) -> str:
        """Explain why the policies cannot differ, or return "" when they can.

        The policies cannot differ when every one is within :data:`CEILING_MARGIN` of
        :attr:`max_rate`: the cache then contains active experts only, in almost every layer and
        step, so no replacement rule changes the hit rate.
        """
        if not self.rates or self.max_rate - min(self.rates.values()) > CEILING_MARGIN:
            return ""
        if self.capacity >= self.experts:
            return f"All {self.experts} experts fit in the cache, so every policy hits always."
        if self.mean_active > self.capacity:
            reason = (
                f"{self.mean_active:.1f} of {self.experts} experts are active per layer and "
                f"step on average, more than the {self.capacity} cached,\nso almost every "
                "resident is hit in every step whatever the policy."
            )
        else:
            reason = (
                f"the {self.capacity} cached experts already hold the active ones in almost "
                "every layer and step,\nso no replacement rule can raise the hit rate."
            )
        return (
            f"Every policy is within {CEILING_MARGIN:.0%} of the best possible rate "
            f"{self.max_rate:.3f}:\n{reason}"
        )


@lru_cache(maxsize=16)
def _shape_analysis(
    shape: str, batch: int, quick: bool, popularity: tuple[tuple[float, ...], ...] | None
) -> tuple[list[dict[str, Any]], HitRates]:
    """Trace replays for one shape and batch; memoized because many instances share them."""
    trace = generate_trace(
        shape,
        seed=17,
        batch=batch,
        prompt_tokens=16 if quick else 32,
        decode_steps=8 if quick else 24,
        popularity=None if popularity is None else np.array(popularity),
    )
    capacity = max(1, trace.num_experts // 4)
    initial = popular_initial(trace.popularity, capacity)
    rows: list[dict[str, Any]] = []
    hit_rates: dict[str, float] = {}
    max_rate = 0.0
    for name, options in CACHE_POLICIES.items():
        policy = make_policy(name, trace.layers, trace.num_experts, capacity, initial, **options)
        replay = replay_cache(trace, policy, include_prefill=False)
        hit_rates[name] = replay.hit_rate
        max_rate = replay.max_hit_rate
        rows.append(
            {
                "method": f"extras:cache:{name}",
                "shape": shape,
                "batch": batch,
                "hit_rate": replay.hit_rate,
                "max_hit_rate": replay.max_hit_rate,
                "cache_loads": replay.loads,
                "cache_replacements": replay.replacements,
                "routed_events": replay.routed_events,
            }
        )
    decode = trace.phase == "decode"
    mean_active = float((trace.workload[decode] > 0).sum(axis=-1).mean()) if decode.any() else 0.0
    summary = HitRates(hit_rates, max_rate, capacity, trace.num_experts, mean_active)
    note = summary.note()
    for cache_row in rows:
        cache_row["note"] = note
    for predictor in ("plain", "residual"):
        rows.append(
            {
                "method": f"extras:prefetch:{predictor}",
                "shape": shape,
                "batch": batch,
                "precision_at_1": precision_at_1(trace, predictor, phase="decode"),
            }
        )
    naive_seconds = None
    for assignment, prefetch, cache in QUICK_COMBINATIONS if quick else COMBINATIONS:
        outcome = simulate(trace, assignment=assignment, prefetch=prefetch, cache=cache)
        if naive_seconds is None:
            naive_seconds = outcome.seconds
        row: dict[str, Any] = {"method": f"extras:replay:{assignment}+{prefetch}+{cache}"}
        row["shape"] = shape
        row.update(outcome.row())
        row["batch"] = batch
        row["speedup_over_naive"] = naive_seconds / outcome.seconds if outcome.seconds else None
        rows.append(row)
    return rows, summary


def plot_hit_rates(
    hit_rates: HitRates, shape: str, batch: int, out_dir: Path, label: str = ""
) -> Path:
    """Write a bar chart of decode hit rates per cache policy; returns the PNG path.

    A dashed line marks the best possible hit rate, and :meth:`HitRates.note` explains bars
    that cannot differ. ``label`` is added to the file name, to tell traces with other
    popularity apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    note = hit_rates.note()
    figure, axis = plt.subplots(figsize=(5.0, 3.6 if note else 3.0))
    names = list(hit_rates.rates)
    axis.bar(names, [hit_rates.rates[name] for name in names], color="tab:blue")
    axis.axhline(hit_rates.max_rate, color="black", linestyle="--", linewidth=1)
    axis.annotate(
        "best possible",
        (0.0, hit_rates.max_rate),
        xycoords=("axes fraction", "data"),
        xytext=(2, 2),
        textcoords="offset points",
        fontsize=7,
    )
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("decode hit rate")
    axis.set_title(
        f"{shape}, batch {batch}, {hit_rates.capacity} of {hit_rates.experts} experts cached",
        fontsize=9,
    )
    if note:
        figure.text(0.5, 0.01, note, ha="center", va="bottom", fontsize=7, wrap=True)
        figure.tight_layout(rect=(0, 0.14, 1, 1))
    else:
        figure.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"-{label}" if label else ""
    path = out_dir / f"{MODEL}-hit-rates-{shape}-b{batch}{suffix}.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    """Return the model-specific rows for one instance and write the hit-rate plot.

    Every instance gets its assignment row. Unless ``meta["extras"]`` is ``"instance"``, the
    rows also include cache hit rates per policy, prefetch precision and the end-to-end
    replay of each policy combination for the instance's shape and batch, computed once per
    shape and batch.
    """
    rows = instance_rows(instance, quick)
    if instance.meta.get("extras") == INSTANCE_ROWS or not instance.shape:
        return rows
    batch = int(instance.meta.get("batch") or instance.tokens or 16)
    popularity = instance.meta.get("popularity")
    key = None if popularity is None else tuple(tuple(row) for row in popularity)
    shape_rows, hit_rates = _shape_analysis(instance.shape, batch, quick, key)
    rows.extend(dict(row) for row in shape_rows)
    if out_dir is not None:
        label = "" if popularity is None else str(instance.meta.get("subject", "popularity"))
        plot_hit_rates(hit_rates, instance.shape, batch, Path(out_dir), label)
    return rows
