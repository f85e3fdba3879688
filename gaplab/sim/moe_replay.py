"""End-to-end replay of a routing trace through assignment, prefetch and cache policies.

Per step and layer, with the affine cost model of the layer's experts:

1. the cache policy gives the resident experts; a prefetched expert (copied while the
   previous layer computed) counts as resident for this layer only, in a staging slot;
2. the assignment rule splits the active experts between CPU and GPU; the layer takes
   ``max(GPU load, CPU load)`` plus ``attention_s``; uncached GPU experts are copied on the
   GPU stream, so their copy time is in the GPU load;
3. the prefetcher picks one expert of the next layer and copies it on the copy engine; the
   copy shares the PCIe link with this layer's demand copies, and any part of it that does
   not finish within this layer's time delays the next layer;
4. the cache observes the step (window swaps and admissions are issued after the layer, off
   the critical path, and only counted as PCIe bytes).

PCIe bytes are ``(demand copies + prefetches + cache loads not already copied) * S_e``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gaplab.heuristics.moe_assign import greedy_assign
from gaplab.models.moe_assign.hardware import cost_model, get_shape
from gaplab.models.moe_assign.traces import RoutingTrace
from gaplab.sim.moe_cache import make_policy, popular_initial
from gaplab.sim.moe_prefetch import PREDICTORS, predicted_workload, prefetch_candidate

logger = logging.getLogger(__name__)

AssignRule = Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]


def _greedy_rule(key: str) -> AssignRule:
    def rule(g: np.ndarray, p: np.ndarray, cached: np.ndarray, base: float) -> np.ndarray:
        return greedy_assign(g, p, ~cached, key=key, gpu_base=base)[0]

    return rule


ASSIGNMENT_RULES: dict[str, AssignRule] = {
    "greedy": _greedy_rule("difference"),
    "greedy-ratio": _greedy_rule("ratio"),
    "static": lambda g, p, cached, base: g <= p,
    "cached-gpu": lambda g, p, cached, base: cached.copy(),
    "all-cpu": lambda g, p, cached, base: np.zeros(len(g), dtype=bool),
}
"""Assignment rules on cost vectors ``(g, p, cached, gpu_base)``, mirroring the heuristics."""

NAIVE = ("cached-gpu", "none", "lru")
"""The naive combination: cached experts on the GPU, the rest on the CPU, no prefetch; with
no copies the LRU cache never changes, so the cache stays at its initial popular set."""


@dataclass
class ReplayResult:
    """Totals of one (assignment, prefetch, cache) combination over a trace."""

    assignment: str
    prefetch: str
    cache: str
    seconds: float = 0.0
    """Simulated time of all MoE layers of all steps."""
    step_seconds: list[float] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    demand_copies: int = 0
    prefetches: int = 0
    useful_prefetches: int = 0
    cache_loads: int = 0
    pcie_bytes: float = 0.0
    min_layer_bound_ok: bool = True
    """False if some layer took less than max(GPU compute, CPU compute) of its schedule."""

    @property
    def hit_rate(self) -> float:
        events = self.hits + self.misses
        return self.hits / events if events else 0.0

    @property
    def prefetch_precision(self) -> float:
        """Share of prefetched experts that the next layer used."""
        return self.useful_prefetches / self.prefetches if self.prefetches else 0.0

    def row(self) -> dict[str, object]:
        return {
            "assignment": self.assignment,
            "prefetch": self.prefetch,
            "cache": self.cache,
            "seconds": self.seconds,
            "hit_rate": self.hit_rate,
            "pcie_gb": self.pcie_bytes / 1e9,
            "prefetch_precision": self.prefetch_precision,
        }


def simulate(
    trace: RoutingTrace,
    *,
    assignment: str = "greedy",
    prefetch: str = "residual",
    cache: str = "warc",
    cache_ratio: float = 0.25,
    attention_s: float = 0.0,
    cache_options: dict[str, object] | None = None,
) -> ReplayResult:
    """Replay ``trace`` through one policy combination and return its totals.

    Parameters
    ----------
    trace
        A routing trace of one of the known model shapes.
    assignment
        A key of :data:`ASSIGNMENT_RULES`.
    prefetch
        ``none``, ``plain``, ``residual`` or ``oracle``.
    cache
        ``warc``, ``lru``, ``lfu`` or ``score``.
    cache_ratio
        Share of each layer's experts the GPU cache holds; the initial residents are the most
        popular experts of the trace's target popularity.
    attention_s
        Fixed time per layer outside the routed experts (attention, norms).
    cache_options
        Extra arguments of the cache policy (``window``, ``swaps`` for ``warc``).
    """
    if assignment not in ASSIGNMENT_RULES:
        raise KeyError(f"unknown assignment {assignment!r}; known: {', '.join(ASSIGNMENT_RULES)}")
    if prefetch not in PREDICTORS:
        raise KeyError(f"unknown prefetch {prefetch!r}; known: {', '.join(PREDICTORS)}")
    shape = get_shape(trace.shape)
    capacity = round(cache_ratio * shape.experts)
    policy = make_policy(
        cache,
        trace.layers,
        trace.num_experts,
        capacity,
        popular_initial(trace.popularity, capacity),
        **(cache_options or {}),
    )
    rule = ASSIGNMENT_RULES[assignment]
    result = ReplayResult(assignment, prefetch, cache)
    previous_sequence = None
    for step in range(trace.steps):
        if trace.sequence[step] != previous_sequence:
            policy.reset()
            previous_sequence = trace.sequence[step]
        costs = cost_model(shape, tokens=int(trace.tokens[step]))
        step_time = 0.0
        staged: int | None = None
        for layer in range(trace.layers):
            workload = trace.workload[step, layer]
            active = np.flatnonzero(workload > 0)
            resident = policy.resident[layer].copy()
            if staged is not None:
                result.useful_prefetches += int(workload[staged] > 0)
                resident[staged] = True
            w = workload[active].astype(float)
            cached = resident[active]
            gpu_compute = costs.gpu_fixed_s + costs.gpu_per_token_s * w
            g = gpu_compute + np.where(cached, 0.0, costs.transfer_s)
            p = costs.cpu_fixed_s + costs.cpu_per_token_s * w
            on_gpu = rule(g, p, cached, costs.shared_gpu_s)
            gpu_load = costs.shared_gpu_s + float(g[on_gpu].sum())
            cpu_load = float(p[~on_gpu].sum())
            layer_time = max(gpu_load, cpu_load) + attention_s
            if layer_time < max(float(gpu_compute[on_gpu].sum()), cpu_load):
                result.min_layer_bound_ok = False

            copies = int(np.count_nonzero(on_gpu & ~cached))
            result.demand_copies += copies
            result.hits += int(np.count_nonzero(cached))
            result.misses += int(np.count_nonzero(~cached))

            staged = None
            if prefetch != "none" and layer + 1 < trace.layers:
                predicted = predicted_workload(trace, prefetch, step, layer + 1)
                staged = prefetch_candidate(predicted, policy.resident[layer + 1])
                if staged is not None:
                    result.prefetches += 1
                    link_busy = copies * costs.transfer_s + costs.transfer_s
                    layer_time += max(0.0, link_busy - layer_time)

            copied = np.zeros(trace.num_experts, dtype=bool)
            copied[active[on_gpu & ~cached]] = True
            loaded = policy.observe(layer, workload, copied)
            result.cache_loads += int(np.count_nonzero(loaded & ~copied))
            step_time += layer_time
        result.step_seconds.append(step_time)
        result.seconds += step_time
    copies = result.demand_copies + result.prefetches + result.cache_loads
    result.pcie_bytes = copies * shape.expert_bytes
    return result


def speedups(
    trace: RoutingTrace,
    combinations: list[tuple[str, str, str]],
    **options: object,
) -> list[dict[str, object]]:
    """Simulate each combination and the naive one; add the speedup over naive to each row."""
    naive = simulate(trace, assignment=NAIVE[0], prefetch=NAIVE[1], cache=NAIVE[2], **options)  # type: ignore[arg-type]
    rows = []
    for assignment, prefetch, cache in combinations:
        outcome = simulate(trace, assignment=assignment, prefetch=prefetch, cache=cache, **options)  # type: ignore[arg-type]
        row = outcome.row()
        row["speedup"] = naive.seconds / outcome.seconds if outcome.seconds > 0 else float("nan")
        rows.append(row)
    return rows
