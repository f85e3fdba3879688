"""The write-policy Instance: one episode of the drifting stream, a byte budget and a track."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.models.write_policy.costs import (
    TRACKS,
    canonical_json,
    merge_cost,
    merge_delta,
    policy_metadata,
    write_cost,
)
from gaplab.models.write_policy.generator import MODES, StreamConfig, generate_stream

FORMAT = "gaplab.write-policy.episode"
FORMAT_VERSION = 1

KIB = 1024
"""Bytes per KiB; budgets of the design grid are whole KiB."""


class EpisodeFormatError(ValueError):
    """An episode file or mapping is malformed; the message names the field and the value."""


@dataclass(frozen=True)
class Step:
    """One step of the stream: its index ``t``, the observation and the full metadata."""

    t: int
    observation: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class MergePairs:
    """Every legal MERGE of step ``t`` into an earlier step ``p`` (same api, non-empty delta)."""

    t: np.ndarray
    parent: np.ndarray
    cost: np.ndarray
    """Bytes of the delta item, ``len(json(delta)) + 16``."""

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True)
class Instance:
    """One episode with a hard byte budget, scored on one policy track.

    Parameters
    ----------
    name
        Label used in tables and file names.
    mode
        Stream mode the episode came from (one of ``default``, ``burst_drift``, ``redundancy``,
        ``burst_redundancy``).
    steps
        The stream, with ``steps[t].t == t``.
    utility
        Hidden utility ``u_t`` of every step (not visible to policies).
    critical_steps
        Sorted drift steps, the set R of the recall and precision metrics.
    budget_bytes
        Hard memory budget B in bytes, at least 1.
    track
        ``unprivileged`` (policies see the mode only) or ``privileged`` (also the priority).
        Byte costs are computed on the track's view of the metadata.
    seed, episode_id
        Generator seed and episode number, when the episode was generated.
    """

    name: str
    mode: str
    steps: tuple[Step, ...]
    utility: tuple[float, ...]
    critical_steps: tuple[int, ...]
    budget_bytes: int
    track: str = "unprivileged"
    seed: int | None = None
    episode_id: int | None = None

    def __post_init__(self) -> None:
        _check_instance(self)

    # ------------------------------------------------------------------ construction

    @classmethod
    def generate(
        cls,
        seed: int = 0,
        *,
        mode: str = "default",
        episode_id: int = 0,
        budget_kib: float = 4,
        track: str = "unprivileged",
        steps: int = 200,
        config: StreamConfig | None = None,
    ) -> Instance:
        """Generate an episode from the seeded stream and attach a budget of ``budget_kib`` KiB."""
        cfg = config or StreamConfig(steps=steps)
        stream = generate_stream(mode, seed, episode_id, cfg)
        rows = tuple(
            Step(t, obs, meta)
            for t, (obs, meta) in enumerate(zip(stream.observations, stream.metadata, strict=True))
        )
        budget = int(round(budget_kib * KIB))
        return cls(
            name=f"{mode}-s{seed}-e{episode_id}",
            mode=mode,
            steps=rows,
            utility=tuple(stream.utility),
            critical_steps=tuple(stream.critical_steps),
            budget_bytes=budget,
            track=track,
            seed=seed,
            episode_id=episode_id,
        )

    def with_budget(self, budget_bytes: int, track: str | None = None) -> Instance:
        """Return the same episode with another budget (and optionally another track)."""
        return Instance(
            name=self.name,
            mode=self.mode,
            steps=self.steps,
            utility=self.utility,
            critical_steps=self.critical_steps,
            budget_bytes=budget_bytes,
            track=track or self.track,
            seed=self.seed,
            episode_id=self.episode_id,
        )

    # ------------------------------------------------------------------ derived data

    @property
    def label(self) -> str:
        """Name, budget and track, for example ``default-s0-e0-4KiB-unprivileged``."""
        return f"{self.name}-{budget_label(self.budget_bytes)}-{self.track}"

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @cached_property
    def views(self) -> tuple[dict[str, Any], ...]:
        """Metadata of every step as the track's policies see it."""
        return tuple(policy_metadata(step.metadata, self.track) for step in self.steps)

    @cached_property
    def costs(self) -> np.ndarray:
        """WRITE cost ``c_t`` of every step in bytes, on the track's view (int64)."""
        return np.array(
            [write_cost(s.observation, v) for s, v in zip(self.steps, self.views, strict=True)],
            dtype=np.int64,
        )

    @cached_property
    def values(self) -> np.ndarray:
        """Utility ``u_t`` of every step as a float array."""
        return np.asarray(self.utility, dtype=float)

    @cached_property
    def critical_mask(self) -> np.ndarray:
        mask = np.zeros(self.num_steps, dtype=bool)
        mask[list(self.critical_steps)] = True
        return mask

    @cached_property
    def merge_pairs(self) -> MergePairs:
        """Every pair ``(t, p)``, ``p < t``, with equal api and a non-empty delta."""
        by_api: dict[str, list[int]] = {}
        for step in self.steps:
            by_api.setdefault(str(step.observation["api"]), []).append(step.t)
        texts = [canonical_json(s.observation) for s in self.steps]
        ts: list[int] = []
        parents: list[int] = []
        costs: list[int] = []
        for members in by_api.values():
            for i, t in enumerate(members):
                for p in members[:i]:
                    if texts[p] == texts[t]:
                        continue
                    delta = merge_delta(self.steps[p].observation, self.steps[t].observation)
                    if delta:
                        ts.append(t)
                        parents.append(p)
                        costs.append(merge_cost(delta))
        order = np.lexsort((np.asarray(parents, dtype=np.int64), np.asarray(ts, dtype=np.int64)))
        return MergePairs(
            t=np.asarray(ts, dtype=np.int64)[order],
            parent=np.asarray(parents, dtype=np.int64)[order],
            cost=np.asarray(costs, dtype=np.int64)[order],
        )

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """Return the episode as a JSON-ready mapping (the format :meth:`from_json` reads)."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "mode": self.mode,
            "seed": self.seed,
            "episode_id": self.episode_id,
            "budget_bytes": self.budget_bytes,
            "track": self.track,
            "critical_steps": list(self.critical_steps),
            "utility": list(self.utility),
            "steps": [
                {"t": s.t, "observation": s.observation, "metadata": s.metadata} for s in self.steps
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> Instance:
        """Build an Instance from a mapping written by :meth:`to_json`.

        Raises
        ------
        EpisodeFormatError
            When a field is missing or has the wrong type; the message names the field.
        ValueError
            When the values break a rule (a budget below 1 byte, an unknown mode, ...).
        """
        if not isinstance(data, Mapping):
            raise EpisodeFormatError(
                f"an episode must be a JSON object, got {type(data).__name__}; write it with "
                "Instance.to_json"
            )
        if data.get("format", FORMAT) != FORMAT:
            raise EpisodeFormatError(
                f"field 'format' is {data.get('format')!r}, expected {FORMAT!r}"
            )
        for key in ("mode", "budget_bytes", "critical_steps", "utility", "steps"):
            if key not in data:
                raise EpisodeFormatError(f"episode is missing the field {key!r}")
        raw_steps = data["steps"]
        if not isinstance(raw_steps, list):
            raise EpisodeFormatError(
                f"field 'steps' must be a list, got {type(raw_steps).__name__}"
            )
        steps = tuple(_read_step(i, raw) for i, raw in enumerate(raw_steps))
        return cls(
            name=str(data.get("name", "episode")),
            mode=data["mode"],
            steps=steps,
            utility=tuple(_read_list(data, "utility", (int, float))),
            critical_steps=tuple(_read_list(data, "critical_steps", (int,))),
            budget_bytes=data["budget_bytes"],
            track=data.get("track", "unprivileged"),
            seed=data.get("seed"),
            episode_id=data.get("episode_id"),
        )

    @classmethod
    def load(cls, path: Path | str) -> Instance:
        """Read an episode JSON file; a file that is not valid JSON raises EpisodeFormatError."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise EpisodeFormatError(
                f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column "
                f"{error.colno}); write episodes with `gaplab generate write-policy`"
            ) from error
        return cls.from_json(data)

    def dump(self, path: Path | str) -> None:
        """Write the episode as JSON through a temporary file and a rename."""
        from gaplab.models.registry import write_json_atomic

        write_json_atomic(Path(path), self.to_json())


def budget_label(budget_bytes: int) -> str:
    """Return ``4KiB`` for whole KiB and ``1000B`` otherwise."""
    if budget_bytes % KIB == 0:
        return f"{budget_bytes // KIB}KiB"
    return f"{budget_bytes}B"


def _read_step(position: int, raw: Any) -> Step:
    if not isinstance(raw, Mapping):
        raise EpisodeFormatError(
            f"steps[{position}] must be an object with t, observation and metadata, got "
            f"{type(raw).__name__}"
        )
    for key in ("t", "observation", "metadata"):
        if key not in raw:
            raise EpisodeFormatError(f"steps[{position}] is missing the field {key!r}")
    if not isinstance(raw["observation"], Mapping) or not isinstance(raw["metadata"], Mapping):
        raise EpisodeFormatError(
            f"steps[{position}]: observation and metadata must be JSON objects"
        )
    t = raw["t"]
    if isinstance(t, bool) or not isinstance(t, int):
        raise EpisodeFormatError(f"steps[{position}].t must be an integer, got {t!r}")
    return Step(t, dict(raw["observation"]), dict(raw["metadata"]))


def _read_list(data: Mapping[str, Any], key: str, kinds: tuple[type, ...]) -> list[Any]:
    values = data[key]
    if not isinstance(values, list):
        raise EpisodeFormatError(f"field {key!r} must be a list, got {type(values).__name__}")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, kinds):
            kind = " or ".join(k.__name__ for k in kinds)
            raise EpisodeFormatError(f"{key}[{i}] must be {kind}, got {value!r}")
    return values


def _check_instance(inst: Instance) -> None:
    """Raise ValueError naming the field and value of the first broken rule."""
    if inst.mode not in MODES:
        raise ValueError(f"mode is {inst.mode!r}; expected one of {', '.join(MODES)}")
    if inst.track not in TRACKS:
        raise ValueError(f"track is {inst.track!r}; expected one of {', '.join(TRACKS)}")
    budget = inst.budget_bytes
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(
            f"budget_bytes is {budget!r}; the budget must be a positive whole number of bytes "
            "(for example 4096 for 4 KiB)"
        )
    if not inst.steps:
        raise ValueError("the episode has no steps; an episode needs at least one step")
    for position, step in enumerate(inst.steps):
        if step.t != position:
            raise ValueError(
                f"steps[{position}] has t={step.t}; steps must be numbered 0, 1, 2, ... in order"
            )
        api = step.observation.get("api")
        if not isinstance(api, str) or not api:
            raise ValueError(
                f"steps[{position}].observation has api={api!r}; every observation needs a "
                "non-empty string 'api'"
            )
    if len(inst.utility) != len(inst.steps):
        raise ValueError(
            f"utility has {len(inst.utility)} values for {len(inst.steps)} steps; give one "
            "utility per step"
        )
    for t, u in enumerate(inst.utility):
        if not (math.isfinite(u) and u >= 0):
            raise ValueError(f"utility[{t}] is {u!r}; utilities must be finite and non-negative")
    previous = -1
    for t in inst.critical_steps:
        if not 0 <= t < len(inst.steps):
            raise ValueError(
                f"critical step {t} is outside the episode (steps 0 to {len(inst.steps) - 1})"
            )
        if t <= previous:
            raise ValueError(f"critical_steps must be sorted and unique; {t} follows {previous}")
        previous = t
