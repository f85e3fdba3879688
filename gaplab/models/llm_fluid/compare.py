"""Default suite and simulation extras of llm-fluid for ``gaplab compare`` and ``gaplab run``.

The extras simulate every policy for a range of GPU counts n and set each revenue next to the
LP value R*, then sweep the service-level bounds. Plots are written only when an output folder
is given.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gaplab.heuristics.llm_fluid import POLICY_NAMES, make_policy, plan_start
from gaplab.models.llm_fluid.build import tpot_ratio
from gaplab.models.llm_fluid.checks import SIMULATED_STATUS, bound_violation, clip_to_bound
from gaplab.models.llm_fluid.importers import classes_from_trace, instance_from_profile
from gaplab.models.llm_fluid.instance import Instance, generate, load, two_class_instance
from gaplab.models.llm_fluid.solution import FluidPlan
from gaplab.models.llm_fluid.solve import solve_fluid, sweep
from gaplab.models.registry import SuiteInstance
from gaplab.sim.llm_fluid import simulate

logger = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parents[3] / "data" / "llm-fluid" / "two-class.json"
TRACE = "llm_serving/AzureLLMInferenceTrace_code.csv"
PROFILE = "llm_serving/vidur_h100_Llama-2-7b-hf_mlp.csv"

GPU_COUNTS = (5, 20, 50, 200, 500)
QUICK_GPU_COUNTS = (5, 20, 50)
HORIZON = 100.0
"""Simulated seconds per run in the extras (a third is warm-up)."""
QUICK_HORIZON = 60.0
EVENT_BUDGET = 2_000_000
"""Estimated simulator events allowed for the policy table of one instance; the largest GPU
counts are dropped until the estimate fits (about 10 s at 200,000 events per second)."""
QUICK_EVENT_BUDGET = 200_000

SWEEP_STEPS = (1.0, 0.75, 0.5, 0.25, 0.1, 0.0)
"""Fractions of the way from the unconstrained plan's value to the tightest bound."""


def sweep_bounds(instance: Instance, plan: FluidPlan) -> dict[str, tuple[float, ...]]:
    """Return bounds for each service level, from slack at the unconstrained optimum to tight.

    Prefill fairness runs from the plan's largest gap in x down to 0, decode fairness from
    half the solo slots ``B (1 - sum x) / 2`` down to 0, and the time per output token from the
    plan's value down towards ``1 / gamma``, which no prefill at all would reach.
    """
    steps = np.array(SWEEP_STEPS)
    floor = 1.0 / instance.gamma
    bounds = {
        "prefill_fairness": steps * float(plan.x.max() - plan.x.min()),
        "decode_fairness": steps * instance.batch_size * (1 - plan.prefilling) / 2,
        "tpot": floor + (tpot_ratio(instance, plan.prefilling) - floor) * np.maximum(steps, 0.01),
    }
    return {name: tuple(float(v) for v in values) for name, values in bounds.items()}


def suite(quick: bool, data_dir: Path | None) -> list[SuiteInstance]:
    """Return the default instances: the shipped two-class instance, a generated one, and with
    ``data_dir`` the Azure code trace in 3 classes and the two-class instance with GPU constants
    fitted to the vidur H100 profile."""
    shipped = load(SHIPPED) if SHIPPED.is_file() else two_class_instance()
    instances = [SuiteInstance("two-class", shipped, "shipped")]
    if not quick and data_dir is None:
        instances.append(
            SuiteInstance("generated-small-0", generate(seed=0, size="small"), "generated")
        )
    if data_dir is not None:
        trace = Path(data_dir) / TRACE
        profile = Path(data_dir) / PROFILE
        if trace.is_file():
            instances.append(SuiteInstance("azure-code-k3", classes_from_trace(trace, 3), "real"))
        else:
            logger.warning("trace %s not found; the suite skips it", trace)
        if profile.is_file() and not quick:
            instances.append(
                SuiteInstance("two-class-vidur", instance_from_profile(profile), "real")
            )
    return instances


def policy_table(
    instance: Instance,
    gpus: tuple[int, ...] = GPU_COUNTS,
    horizon: float = HORIZON,
    seed: int = 0,
    policies: tuple[str, ...] = POLICY_NAMES,
) -> pd.DataFrame:
    """Simulate each policy for each n and return revenue next to the LP value.

    The bound is R* of the bundled LP for every policy except prioritize-and-route (``PR-SP``),
    which is scored under separate pricing against the separate LP. ``revenue`` is the
    simulation estimate with its 95 % half-width ``ci95``. ``objective`` is the estimate
    clipped to the bound and ``gap_percent`` its gap to the bound (both never below the LP's
    side, see :func:`~gaplab.models.llm_fluid.checks.clip_to_bound`). ``bound_violation`` is
    empty unless the estimate exceeds the bound by more than ``ci95``.
    """
    plans: dict[str, FluidPlan] = {}
    for pricing in ("bundled", "separate"):
        result, plan = solve_fluid(instance, pricing)
        if plan is None or not result.is_optimal:
            raise RuntimeError(f"{pricing} LP of {instance.name!r}: {result.termination.value}")
        plans[pricing] = plan
    rows = []
    for name in policies:
        pricing = "separate" if name == "PR-SP" else "bundled"
        plan = plans[pricing] if name != "SLI-GG" or not instance.service_levels.active else None
        policy, plan = make_policy(name, instance, plan)
        for n in gpus:
            sim = simulate(
                instance,
                policy,
                gpus=n,
                horizon=horizon,
                seed=seed,
                pricing=pricing,
                start=plan_start(plan),
            )
            bound = plans[pricing].objective
            objective = clip_to_bound(sim.revenue, bound)
            excess = bound_violation(sim.revenue, sim.revenue_ci, bound)
            rows.append(
                {
                    "policy": name,
                    "gpus": n,
                    "pricing": pricing,
                    "revenue": sim.revenue,
                    "ci95": sim.revenue_ci,
                    "lp_value": bound,
                    "objective": objective,
                    "gap_percent": 100 * (bound - objective) / bound if bound else np.nan,
                    "bound_violation": excess or "",
                    "events": sim.events,
                    "events_per_second": sim.events_per_second,
                    "partition": sim.partition,
                    **{f"mean_{k}": float(v.sum()) for k, v in sim.means().items()},
                }
            )
    return pd.DataFrame(rows)


def estimated_events(instance: Instance, gpus: tuple[int, ...], horizon: float) -> float:
    """Estimate the events of one policy table: each request arrives, finishes its prefill and
    finishes or abandons its decode, so about three events per request."""
    per_gpu_second = 3.0 * float(instance.lam.sum())
    return len(POLICY_NAMES) * horizon * per_gpu_second * sum(gpus)


def affordable_gpu_counts(
    instance: Instance, gpus: tuple[int, ...], horizon: float, budget: float
) -> tuple[int, ...]:
    """Drop the largest GPU counts until the estimated events fit within ``budget``."""
    counts = tuple(sorted(gpus))
    while len(counts) > 1 and estimated_events(instance, counts, horizon) > budget:
        counts = counts[:-1]
    if counts != tuple(sorted(gpus)):
        logger.info(
            "llm-fluid extras on %s: GPU counts cut to %s to fit the time budget",
            instance.name,
            counts,
        )
    return counts


def extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    """Return simulated policy rows and service-level sweep rows; write plots to ``out_dir``.

    A simulated row has status ``simulated-estimate``. Its ``objective`` is the estimate
    clipped to the LP bound, ``estimate`` and ``ci95`` are the raw estimate and its 95 %
    half-width, and ``valid`` is false only when the estimate exceeds the bound by more than
    that half-width (see :func:`policy_table`).
    """
    horizon = QUICK_HORIZON if quick else HORIZON
    gpus = affordable_gpu_counts(
        instance,
        QUICK_GPU_COUNTS if quick else GPU_COUNTS,
        horizon,
        QUICK_EVENT_BUDGET if quick else EVENT_BUDGET,
    )
    table = policy_table(instance, gpus, horizon)
    rows: list[dict[str, Any]] = [
        {
            "method": f"sim:{row.policy}@n={row.gpus}",
            "kind": "simulation",
            "status": SIMULATED_STATUS,
            "objective": row.objective,
            "estimate": row.revenue,
            "ci95": row.ci95,
            "bound": row.lp_value,
            "gap_percent": row.gap_percent,
            "valid": not row.bound_violation,
            "violations": row.bound_violation,
        }
        for row in table.itertuples()
    ]
    _, plan = solve_fluid(instance, "bundled")
    bounds = sweep_bounds(instance, plan) if plan is not None else {}
    sweeps = {field: sweep(instance, field, values) for field, values in bounds.items()}
    for field, frame in sweeps.items():
        for row in frame.itertuples():
            rows.append(
                {
                    "method": f"lp:{field}<={row.bound:g}",
                    "kind": "sweep",
                    "objective": row.revenue,
                    "bound": None,
                }
            )
    if out_dir is not None:
        write_plots(instance, table, sweeps, Path(out_dir), horizon)
    return rows


def write_plots(
    instance: Instance,
    table: pd.DataFrame,
    sweeps: dict[str, pd.DataFrame],
    out_dir: Path,
    horizon: float,
) -> list[Path]:
    """Write revenue against n, occupancies against LP targets and revenue against bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"llm-fluid-{instance.name}"
    written = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, group in table.groupby("policy", sort=False):
        ax.errorbar(
            group["gpus"], group["revenue"], yerr=group["ci95"], marker="o", label=name, capsize=3
        )
    bundled = table.loc[table["pricing"] == "bundled", "lp_value"].iloc[0]
    ax.axhline(bundled, color="black", linestyle="--", label="R* (bundled LP)")
    ax.set_xscale("log")
    ax.set_xlabel("GPUs n")
    ax.set_ylabel("revenue per GPU per second\n(simulation estimate, 95 % CI)")
    ax.set_title(f"{instance.name}: simulated revenue against the LP bound")
    ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / f"{prefix}-revenue-vs-n.png"))

    result, plan = solve_fluid(instance, "bundled")
    if plan is not None:
        policy, _ = make_policy("GG-SP", instance, plan)
        n = int(table["gpus"].max())
        sim = simulate(instance, policy, gpus=n, horizon=horizon, seed=1, start=plan_start(plan))
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for i, label in enumerate(instance.classes):
            axes[0].plot(sim.times, sim.series["x"][:, i], label=f"X/n {label}")
            axes[0].axhline(plan.x[i], linestyle="--", color=f"C{i}")
            axes[1].plot(sim.times, sim.series["q_p"][:, i], label=f"Q_p/n {label}")
            axes[1].axhline(plan.q_p[i], linestyle="--", color=f"C{i}")
        axes[1].plot(sim.times, sim.series["q_d"].sum(axis=1), color="gray", label="Q_d/n (all)")
        for ax, title in zip(axes, ("prefill occupancy", "queues"), strict=True):
            ax.set_xlabel("time (s)")
            ax.set_title(f"GG-SP, n={n}: {title} (dashed: LP)")
            ax.legend(fontsize=7)
        written.append(_save(fig, out_dir / f"{prefix}-occupancy.png"))

    fig, axes = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.5))
    for ax, (field, frame) in zip(np.atleast_1d(axes), sweeps.items(), strict=True):
        ax.plot(frame["bound"], frame["revenue"], marker="o")
        ax.set_xlabel(f"{field} bound")
        ax.set_ylabel("LP revenue per GPU per second")
        ax.invert_xaxis()
    fig.suptitle(f"{instance.name}: revenue against service-level bounds (tighter to the right)")
    written.append(_save(fig, out_dir / f"{prefix}-service-levels.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
