"""Reader for WritePolicyBench's episode files (JSON Lines, one episode per line).

Each line is ``{"steps": [{"t", "observation", "metadata"}, ...], "labels": {...}}`` where the
labels carry ``mode``, ``episode_id``, ``critical_steps`` and ``utility_by_step`` (a mapping
from the step, written as a string, to its utility).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gaplab.models.write_policy.instance import KIB, EpisodeFormatError, Instance, Step


def read_writepolicybench(
    path: Path | str, *, budget_bytes: int = 4 * KIB, track: str = "unprivileged"
) -> list[Instance]:
    """Read every episode of a WritePolicyBench JSONL file as an Instance.

    Parameters
    ----------
    path
        File with one JSON episode per line; blank lines are ignored.
    budget_bytes, track
        Budget and policy track attached to every episode (the file has neither).

    Raises
    ------
    EpisodeFormatError
        When a line is not valid JSON or misses a field; the message names the line.
    """
    path = Path(path)
    episodes: list[Instance] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            raise EpisodeFormatError(
                f"{path}, line {number}: not valid JSON ({error.msg}); expected one "
                "WritePolicyBench episode per line"
            ) from error
        try:
            episodes.append(_episode(raw, budget_bytes, track, path.stem, number))
        except (KeyError, TypeError, ValueError) as error:
            raise EpisodeFormatError(f"{path}, line {number}: {error}") from error
    if not episodes:
        raise EpisodeFormatError(f"{path} contains no episodes")
    return episodes


def import_first_episode(path: Path) -> Instance:
    """Read the first episode of a WritePolicyBench JSONL file (the ``import`` command's reader)."""
    return read_writepolicybench(path)[0]


def _episode(raw: Any, budget_bytes: int, track: str, stem: str, number: int) -> Instance:
    if not isinstance(raw, dict) or "steps" not in raw or "labels" not in raw:
        raise EpisodeFormatError("an episode needs the fields 'steps' and 'labels'")
    labels = raw["labels"]
    steps = tuple(
        Step(int(s["t"]), dict(s["observation"]), dict(s.get("metadata", {}))) for s in raw["steps"]
    )
    by_step = {str(k): float(v) for k, v in labels["utility_by_step"].items()}
    missing = [s.t for s in steps if str(s.t) not in by_step]
    if missing:
        raise EpisodeFormatError(f"utility_by_step has no value for steps {missing[:5]}")
    episode_id = labels.get("episode_id", number - 1)
    return Instance(
        name=f"{labels.get('mode', 'default')}-{stem}-e{episode_id}",
        mode=str(labels.get("mode", "default")),
        steps=steps,
        utility=tuple(by_step[str(s.t)] for s in steps),
        critical_steps=tuple(sorted(int(t) for t in labels.get("critical_steps", []))),
        budget_bytes=budget_bytes,
        track=track,
        episode_id=int(episode_id),
    )
