"""Exact event-driven simulation of the llm-fluid many-GPU serving model.

Every clock is exponential, so the process is a continuous-time Markov chain and the simulator
draws one event at a time from the total rate (Gillespie's direct method):

- arrivals of class i at rate ``n lambda_i``;
- abandonments at rate ``theta_i`` per waiting request, in the prefill queue and in the decode
  buffers (a uniformly chosen waiting request of that class leaves);
- prefill completions at rate ``mu_p,i`` per prefill in service;
- decode completions at rate ``mu_m,i`` on a GPU that runs a prefill and ``mu_s,i`` on one that
  does not. Decodes on GPUs that can switch mode are drawn at the faster of the two rates and
  accepted with probability (rate of the GPU's current mode) / (faster rate). This thinning is
  exact, and it spares moving streams between lists at every mode switch.

GPUs that never prefill (the solo group of a static partition) are one pool of identical slots,
so only their per-class counts are kept. Queues keep FCFS order through arrival sequence numbers.
The state is recorded on a regular time grid; revenue per GPU per second is estimated after a
warm-up, with a confidence interval from batch means.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gaplab.models.llm_fluid.instance import Instance
from gaplab.sim.llm_fluid_engine import Engine
from gaplab.sim.llm_fluid_policies import Policy

logger = logging.getLogger(__name__)

SERIES_COLUMNS = ("q_p", "x", "q_d", "y_m", "y_s")


@dataclass
class SimResult:
    """Outcome of one simulation run.

    Attributes
    ----------
    policy, gpus, seed, horizon, warmup
        What was run: policy name, number of GPUs n, seed and times in seconds.
    revenue
        Revenue per GPU per second after the warm-up.
    revenue_ci
        Half-width of the 95 % confidence interval of ``revenue`` (batch means).
    pricing
        ``bundled`` or ``separate``: when revenue is credited.
    events
        State-changing events simulated (thinning rejections excluded).
    seconds
        Wall-clock time of the run.
    cpu_seconds
        Processor time of the run in this process; throughput is measured against it, so that
        other load on the machine does not count.
    partition
        M, GPUs with a reserved prefill slot (n without a partition).
    times
        Sample times of the time series (seconds).
    series
        Per-sample state scaled by n: ``q_p``, ``x``, ``q_d``, ``y_m``, ``y_s``, each of shape
        (samples, classes).
    counts
        Per-class event counters over the whole run: arrivals, prefill and decode
        abandonments, prefill and decode completions, and requests in the system at the end.
    capacity_violations
        Capacity rules found broken at the sample times (zero for a correct simulator).
    """

    policy: str
    gpus: int
    seed: int
    horizon: float
    warmup: float
    revenue: float
    revenue_ci: float
    pricing: str
    events: int
    seconds: float
    cpu_seconds: float
    partition: int
    times: np.ndarray
    series: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    capacity_violations: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Events per processor second (one core)."""
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")

    def means(self) -> dict[str, np.ndarray]:
        """Return the time averages after the warm-up of every series, per GPU and class."""
        keep = self.times >= self.warmup
        return {name: values[keep].mean(axis=0) for name, values in self.series.items()}

    def occupancy_table(self, classes: tuple[str, ...]) -> pd.DataFrame:
        """Return the time-averaged state per GPU, one row per class."""
        return pd.DataFrame(self.means(), index=pd.Index(list(classes), name="class"))

    def summary(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "gpus": self.gpus,
            "seed": self.seed,
            "revenue": self.revenue,
            "revenue_ci": self.revenue_ci,
            "events": self.events,
            "events_per_second": self.events_per_second,
            "partition": self.partition,
        }


def simulate(
    instance: Instance,
    policy: Policy,
    *,
    gpus: int | None = None,
    horizon: float = 600.0,
    warmup: float | None = None,
    seed: int = 0,
    pricing: str = "bundled",
    samples: int = 400,
    batches: int = 20,
    check_every_event: bool = False,
    start: dict[str, np.ndarray] | None = None,
) -> SimResult:
    """Simulate ``policy`` on ``instance`` from an empty system for ``horizon`` seconds.

    Parameters
    ----------
    instance
        The serving system; ``gpus`` overrides ``instance.gpus``.
    policy
        The serving policy.
    horizon
        Simulated seconds.
    warmup
        Seconds discarded before estimating revenue and averages; a third of the horizon by
        default.
    seed
        Seed of the random stream; the same seed gives the same run.
    pricing
        ``bundled`` credits ``w_i`` at decode completion; ``separate`` credits ``c_p P_i`` at
        prefill completion and ``c_d D_i`` at decode completion.
    samples
        Number of points of the recorded time series.
    batches
        Number of batches for the confidence interval of revenue.
    check_every_event
        Check every capacity rule after each event (slow; for tests).
    start
        Initial state per GPU and class: ``x`` (prefills in service), ``y`` (decode streams)
        and ``q_p`` (waiting requests), for example an LP plan. Counts are rounded to whole
        requests and cut to capacity. Starting near the steady state shortens the transient that the
        warm-up has to absorb. ``None`` starts from an empty system.

    Returns
    -------
    SimResult
    """
    n = int(gpus if gpus is not None else instance.gpus)
    if n < 1:
        raise ValueError(f"gpus must be a positive integer, got {gpus!r}")
    if not horizon > 0:
        raise ValueError(f"horizon must be positive seconds, got {horizon!r}")
    warmup = horizon / 3 if warmup is None else float(warmup)
    if not 0 <= warmup < horizon:
        raise ValueError(f"warmup must lie in [0, horizon), got {warmup!r}")
    if pricing not in ("bundled", "separate"):
        raise ValueError(f"unknown pricing {pricing!r}; choose 'bundled' or 'separate'")
    size = instance.size
    for name, values in (
        ("prefill_target", policy.prefill_target),
        ("queue_target", policy.queue_target),
        ("solo_share", policy.solo_share),
    ):
        if values and len(values) != size:
            raise ValueError(
                f"policy {policy.name!r}: {name} has {len(values)} entries, not {size}"
            )
    if policy.admission == "gate" and not policy.prefill_target:
        raise ValueError(f"policy {policy.name!r} uses the gate but has no prefill_target")

    engine = Engine(instance, policy, n, seed, pricing, check_every_event)
    if start is not None:
        engine.fill(start)
    started = time.perf_counter()
    cpu_started = time.process_time()
    times, snapshots, revenue_at = engine.run(horizon, samples)
    cpu_seconds = time.process_time() - cpu_started
    seconds = time.perf_counter() - started

    keep = times >= warmup
    revenue, half_width = _batch_means(times[keep], revenue_at[keep], n, batches)
    series = {
        name: np.array([s[k] for s in snapshots]) / n for k, name in enumerate(SERIES_COLUMNS)
    }
    counts = {name: np.array(values) for name, values in engine.counts.items()}
    counts["in_system"] = counts["arrivals"] - (
        counts["prefill_abandons"] + counts["decode_abandons"] + counts["decode_completions"]
    )
    logger.info(
        "simulated %s on %d GPUs for %.0f s: %d events in %.2f s",
        policy.name,
        n,
        horizon,
        engine.events,
        seconds,
    )
    return SimResult(
        policy=policy.name,
        gpus=n,
        seed=seed,
        horizon=horizon,
        warmup=warmup,
        revenue=revenue,
        revenue_ci=half_width,
        pricing=pricing,
        events=engine.events,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        partition=engine.tracked,
        times=times,
        series=series,
        counts=counts,
        capacity_violations=engine.violations,
    )


def _batch_means(
    times: np.ndarray, revenue_at: np.ndarray, gpus: int, batches: int
) -> tuple[float, float]:
    """Return revenue per GPU per second and the 95 % half-width from batch means."""
    if len(times) < 2:
        return float("nan"), float("nan")
    total = (revenue_at[-1] - revenue_at[0]) / (gpus * (times[-1] - times[0]))
    edges = np.linspace(0, len(times) - 1, min(batches, len(times) - 1) + 1).round().astype(int)
    rates = np.diff(revenue_at[edges]) / (gpus * np.diff(times[edges]))
    if len(rates) < 2:
        return float(total), float("nan")
    quantile = stats.t.ppf(0.975, len(rates) - 1)
    return float(total), float(quantile * rates.std(ddof=1) / math.sqrt(len(rates)))
