"""Seeded stream generator with controlled API drift, bursts and redundancy.

The random draws follow the order of the WritePolicyBench generator (Python's ``random.Random``
seeded with ``seed + episode_id``), so the streams match its published seed-0 episodes. The
tests check the start of the first published episode and the mean optima over all ten.
The draws, in order:

1. one ``randint(2, max_params)`` per endpoint for its initial parameter count;
2. per step, the endpoint: in the redundancy modes (from the second step on) one ``random()``
   decides whether to repeat the previous endpoint, and otherwise ``randrange(api_pool)`` picks
   one;
3. per step, one ``random()`` for drift, and on drift one ``random()`` for dropping or adding a
   parameter and one for deprecation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

MODES = ("default", "burst_drift", "redundancy", "burst_redundancy")
"""Stream modes: plain drift, drift bursts, endpoint repeats, and both."""

BURSTY_MODES = frozenset({"burst_drift", "burst_redundancy"})
REDUNDANT_MODES = frozenset({"redundancy", "burst_redundancy"})


@dataclass(frozen=True)
class StreamConfig:
    """Parameters of the drifting stream; the defaults are those of WritePolicyBench."""

    steps: int = 200
    api_pool: int = 8
    drift_prob: float = 0.08
    max_params: int = 6
    burst_interval: int = 50
    """A burst window opens every ``burst_interval`` steps."""
    burst_len: int = 8
    """Steps per burst window."""
    burst_drift_prob: float = 0.6
    """Drift probability inside a burst window (bursty modes only)."""
    redundancy_prob: float = 0.7
    """Probability of repeating the previous endpoint (redundancy modes only)."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.api_pool < 1:
            raise ValueError(f"api_pool must be at least 1 endpoint, got {self.api_pool}")
        if self.max_params < 2:
            raise ValueError(f"max_params must be at least 2, got {self.max_params}")
        for name in ("drift_prob", "burst_drift_prob", "redundancy_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if self.burst_len < 0:
            raise ValueError(f"burst_len must be zero or positive, got {self.burst_len}")

    def in_burst(self, t: int) -> bool:
        """Return whether step ``t`` lies in a burst window."""
        if self.burst_interval <= 0:
            return False
        return t % self.burst_interval < self.burst_len


@dataclass(frozen=True)
class GeneratedStream:
    """Raw output of :func:`generate_stream`, before it becomes an Instance."""

    observations: list[dict[str, Any]]
    metadata: list[dict[str, Any]]
    utility: list[float]
    critical_steps: list[int]


def step_utility(drift: bool, burst: bool, redundant: bool, t: int) -> float:
    """Return the hidden utility of a step.

    A drift step is worth 5, or 6 inside a burst window of a bursty mode. Any other step is
    worth 1, except in the redundancy modes, where every non-drift step after the first is worth
    0.5. WritePolicyBench meant 0.5 for repeats only, but its repeat test compares a value with
    itself, so the 0.5 applies to every such step. This generator keeps that rule so that it
    reproduces the benchmark's episodes.
    """
    if drift:
        return 6.0 if burst else 5.0
    if redundant and t > 0:
        return 0.5
    return 1.0


def generate_stream(
    mode: str, seed: int = 0, episode_id: int = 0, config: StreamConfig | None = None
) -> GeneratedStream:
    """Generate one episode of observations, metadata, utilities and critical (drift) steps.

    Parameters
    ----------
    mode
        One of :data:`MODES`.
    seed, episode_id
        The random stream is seeded with ``seed + episode_id``, as in WritePolicyBench.
    config
        Stream parameters; WritePolicyBench's defaults when omitted.

    Returns
    -------
    GeneratedStream
        Observations ``{api, params, deprecated, version}``, metadata ``{mode, priority}``
        with ``priority = min(1, utility / 6)``, utilities and the sorted drift steps.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    cfg = config or StreamConfig()
    rng = random.Random(seed + episode_id)
    bursty = mode in BURSTY_MODES
    redundant = mode in REDUNDANT_MODES

    versions = [1] * cfg.api_pool
    params = [
        [f"p{api}_{j}" for j in range(rng.randint(2, cfg.max_params))]
        for api in range(cfg.api_pool)
    ]

    observations: list[dict[str, Any]] = []
    metadata: list[dict[str, Any]] = []
    utility: list[float] = []
    critical: list[int] = []
    previous_api = 0
    for t in range(cfg.steps):
        if redundant and t > 0 and rng.random() < cfg.redundancy_prob:
            api = previous_api
        else:
            api = rng.randrange(cfg.api_pool)
        burst = bursty and cfg.in_burst(t)
        drift = rng.random() < (cfg.burst_drift_prob if burst else cfg.drift_prob)
        if drift:
            versions[api] += 1
            if rng.random() < 0.5 and params[api]:
                params[api] = params[api][:-1]
            else:
                params[api] = [*params[api], f"p{api}_{versions[api]}"]
            critical.append(t)
        deprecated = drift and rng.random() < 0.3

        observations.append(
            {
                "api": f"api.v{versions[api]}.endpoint_{api}",
                "params": list(params[api]),
                "deprecated": deprecated,
                "version": versions[api],
            }
        )
        u = step_utility(drift, burst, redundant, t)
        utility.append(u)
        metadata.append({"mode": mode, "priority": max(0.0, min(1.0, u / 6.0))})
        previous_api = api
    return GeneratedStream(observations, metadata, utility, critical)
