"""Byte-accurate cost model of the memory: WRITE items, MERGE deltas and the policy's view.

Every byte count is the length of a canonical JSON text (``json.dumps`` with sorted keys and
the default separators ``", "`` and ``": "``), so two runs on the same episode agree byte for
byte.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

HEADER_BYTES = 32
"""Fixed header charged for every WRITE item."""

INDEX_BYTES = 16
"""Index entry charged for every WRITE item and every MERGE delta."""

TRACKS = ("unprivileged", "privileged")
"""Policy tracks: the unprivileged view shows the mode only, the privileged one adds priority."""

VISIBLE_METADATA = {"unprivileged": ("mode",), "privileged": ("mode", "priority")}
"""Metadata keys visible to a policy on each track. Byte costs are computed on this view."""


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (sorted keys, default separators)."""
    return json.dumps(value, sort_keys=True)


def policy_metadata(metadata: Mapping[str, Any], track: str) -> dict[str, Any]:
    """Return the part of a step's metadata that is visible to a policy on ``track``."""
    if track not in VISIBLE_METADATA:
        raise ValueError(f"unknown track {track!r}; expected one of {', '.join(TRACKS)}")
    return {key: metadata[key] for key in VISIBLE_METADATA[track] if key in metadata}


def write_cost(observation: Mapping[str, Any], metadata: Mapping[str, Any]) -> int:
    """Return the bytes of a WRITE item: observation and metadata JSON, header and index entry.

    ``metadata`` must already be the policy's view (see :func:`policy_metadata`).
    """
    payload = len(canonical_json(observation)) + len(canonical_json(metadata))
    return payload + HEADER_BYTES + INDEX_BYTES


def merge_delta(base: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Return the shallow delta from ``base`` to ``new``: every key but ``api`` whose value differs.

    Keys present in ``base`` but absent from ``new`` are not part of the delta, so a delta
    cannot delete a field.
    """
    return {key: value for key, value in new.items() if key != "api" and base.get(key) != value}


def merge_cost(delta: Mapping[str, Any]) -> int:
    """Return the bytes of a MERGE item: the delta's JSON plus the index entry."""
    return len(canonical_json(delta)) + INDEX_BYTES


def merge_rejection(base: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """Return why ``new`` cannot be stored as a delta against ``base``, or ``None`` if it can.

    A MERGE needs both observations to carry the same ``api`` value and a non-empty delta.
    Whether the base is a WRITE item in memory is the store's check, not this one.
    """
    base_api = base.get("api")
    new_api = new.get("api")
    if base_api is None or new_api is None:
        return "an observation has no 'api' value"
    if base_api != new_api:
        return f"the api differs ({new_api!r} against the base's {base_api!r})"
    if not merge_delta(base, new):
        return "the delta is empty (the observation repeats its base)"
    return None
