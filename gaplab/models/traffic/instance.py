"""The traffic Instance: source rates, node capacities, access-path capacities and delays.

Sources ``i`` split a fixed rate ``lambda_i`` over service nodes ``j``. The access path from
``i`` to ``j`` is an M/M/1 queue of capacity ``mu_ij`` (zero means there is no path), and node
``j`` is an M/M/1 queue of capacity ``mu_j``. An optional constant propagation delay ``a_ij``
(seconds) adds to the access delay, so the delay of route ``(i, j)`` at flow ``x`` and node load
``X`` is ``a_ij + 1 / (mu_ij - x) + 1 / (mu_j - X)``. Rates and capacities share one unit of
work per second (MB/s in the shipped instance).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

FORMAT = "gaplab-traffic-1"
"""The ``format`` field of instance JSON files."""


class InstanceError(ValueError):
    """The instance data are invalid; the message names the field and value."""


def _as_vector(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim != 1:
        raise InstanceError(
            f"{name} must be a list of numbers, got an array of shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise InstanceError(f"{name}[{bad}] = {array[bad]} is not finite; give a finite number")
    array.setflags(write=False)
    return array


def _as_matrix(name: str, value: Any, shape: tuple[int, int]) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != shape:
        raise InstanceError(f"{name} must have shape {shape} (sources x nodes), got {array.shape}")
    if not np.all(np.isfinite(array)):
        i, j = np.argwhere(~np.isfinite(array))[0]
        raise InstanceError(f"{name}[{i}][{j}] = {array[i, j]} is not finite; give a finite number")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Instance:
    """A validated traffic-allocation instance.

    Parameters
    ----------
    name
        Instance name used in reports.
    sources, nodes
        Labels of the N sources and the M service nodes (unique strings).
    rates
        ``lambda_i``, the total rate of each source (work units per second), all positive.
    node_capacity
        ``mu_j``, the service capacity of each node (work units per second), all positive.
    access_capacity
        ``mu_ij``, shape (N, M): capacity of the access path from source i to node j; zero means
        there is no path, negative values are invalid.
    propagation
        ``a_ij``, shape (N, M): constant propagation delay of each access path in seconds
        (zeros when absent or empty).

    Raises
    ------
    InstanceError
        On a negative or non-finite capacity, a non-positive rate, or a demand that exceeds the
        total capacity of the nodes or of a source's access paths.
    """

    name: str
    sources: tuple[str, ...]
    nodes: tuple[str, ...]
    rates: np.ndarray
    node_capacity: np.ndarray
    access_capacity: np.ndarray
    propagation: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sources = tuple(str(s) for s in self.sources)
        nodes = tuple(str(s) for s in self.nodes)
        for what, labels in (("sources", sources), ("nodes", nodes)):
            if not labels:
                raise InstanceError(f"{what} is empty; an instance needs at least one")
            if len(set(labels)) != len(labels):
                dup = sorted({s for s in labels if labels.count(s) > 1})
                raise InstanceError(f"{what} has duplicate labels {dup[:5]}; labels must be unique")
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "nodes", nodes)
        n, m = len(sources), len(nodes)

        rates = _as_vector("rates", self.rates)
        mu_node = _as_vector("node_capacity", self.node_capacity)
        if rates.shape != (n,):
            raise InstanceError(f"rates has {rates.size} entries but there are {n} sources")
        if mu_node.shape != (m,):
            raise InstanceError(f"node_capacity has {mu_node.size} entries but there are {m} nodes")
        mu_access = _as_matrix("access_capacity", self.access_capacity, (n, m))
        if self.propagation is None or np.size(self.propagation) == 0:
            prop = np.zeros((n, m))
            prop.setflags(write=False)
        else:
            prop = _as_matrix("propagation", self.propagation, (n, m))
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "node_capacity", mu_node)
        object.__setattr__(self, "access_capacity", mu_access)
        object.__setattr__(self, "propagation", prop)
        self._check_values()

    def _check_values(self) -> None:
        if np.any(self.rates <= 0):
            i = int(np.flatnonzero(self.rates <= 0)[0])
            raise InstanceError(
                f"rates[{i}] (source {self.sources[i]!r}) = {self.rates[i]}; every source rate "
                "must be positive, so drop sources that send nothing"
            )
        if np.any(self.node_capacity <= 0):
            j = int(np.flatnonzero(self.node_capacity <= 0)[0])
            raise InstanceError(
                f"node_capacity[{j}] (node {self.nodes[j]!r}) = {self.node_capacity[j]}; node "
                "capacities must be positive, so drop nodes that cannot serve"
            )
        if np.any(self.access_capacity < 0):
            i, j = np.argwhere(self.access_capacity < 0)[0]
            raise InstanceError(
                f"access_capacity[{i}][{j}] ({self.sources[i]!r} -> {self.nodes[j]!r}) = "
                f"{self.access_capacity[i, j]} is negative; use a positive capacity, or 0 for "
                "no path"
            )
        if np.any(self.propagation < 0):
            i, j = np.argwhere(self.propagation < 0)[0]
            raise InstanceError(
                f"propagation[{i}][{j}] = {self.propagation[i, j]} is negative; propagation "
                "delays are seconds >= 0"
            )
        total_rate = float(self.rates.sum())
        total_capacity = float(self.node_capacity.sum())
        if total_rate >= total_capacity:
            raise InstanceError(
                f"total demand {total_rate:.6g} is not below the total node capacity "
                f"{total_capacity:.6g}, so every allocation overloads some node; lower the rates "
                "or raise node_capacity"
            )
        reach = self.access_capacity.sum(axis=1)
        short = np.flatnonzero(self.rates >= reach)
        if short.size:
            i = int(short[0])
            raise InstanceError(
                f"source {self.sources[i]!r} sends {self.rates[i]:.6g} but its access paths "
                f"carry at most {reach[i]:.6g} in total; lower its rate or add access capacity"
            )

    # ------------------------------------------------------------------ shape and views

    @property
    def num_sources(self) -> int:
        return len(self.sources)

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def links(self) -> np.ndarray:
        """Boolean (N, M) mask of the access paths that exist (``mu_ij > 0``)."""
        return self.access_capacity > 0

    @property
    def total_rate(self) -> float:
        return float(self.rates.sum())

    @property
    def has_propagation(self) -> bool:
        return bool(np.any(self.propagation > 0))

    def describe(self) -> str:
        links = int(self.links.sum())
        return (
            f"traffic instance {self.name!r}: {self.num_sources} sources, {self.num_nodes} nodes, "
            f"{links} access paths, total rate {self.total_rate:.6g}, "
            f"node utilization at best {self.total_rate / self.node_capacity.sum():.3f}"
        )

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "format": FORMAT,
            "name": self.name,
            "sources": list(self.sources),
            "nodes": list(self.nodes),
            "rates": self.rates.tolist(),
            "node_capacity": self.node_capacity.tolist(),
            "access_capacity": self.access_capacity.tolist(),
        }
        if self.has_propagation:
            payload["propagation"] = self.propagation.tolist()
        if self.meta:
            payload["meta"] = self.meta
        return payload

    def to_json(self, path: Path | str | None = None) -> str:
        """Return the instance as JSON text, and write it atomically when ``path`` is given."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        if path is not None:
            from gaplab.modeling.compiled import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Instance:
        if not isinstance(payload, dict):
            raise InstanceError(
                f"a traffic instance is a JSON object, got {type(payload).__name__}"
            )
        if payload.get("format", FORMAT) != FORMAT:
            raise InstanceError(
                f"format {payload.get('format')!r} is not {FORMAT!r}; this file is not a traffic "
                "instance"
            )
        missing = [
            key
            for key in ("sources", "nodes", "rates", "node_capacity", "access_capacity")
            if key not in payload
        ]
        if missing:
            raise InstanceError(f"traffic instance JSON lacks the fields {missing}")

        def array(key: str) -> np.ndarray:
            try:
                return np.asarray(payload.get(key, []), dtype=float)
            except (TypeError, ValueError) as error:
                raise InstanceError(f"{key} must contain only numbers: {error}") from error

        return cls(
            name=str(payload.get("name", "traffic")),
            sources=tuple(payload["sources"]),
            nodes=tuple(payload["nodes"]),
            rates=array("rates"),
            node_capacity=array("node_capacity"),
            access_capacity=array("access_capacity"),
            propagation=array("propagation"),
            meta=dict(payload.get("meta", {})),
        )

    @classmethod
    def from_json(cls, source: Path | str) -> Instance:
        """Read an instance from a JSON file path or from JSON text."""
        text = str(source)
        if isinstance(source, Path) or not text.lstrip().startswith("{"):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError as error:
                raise InstanceError(f"instance file {path} not found") from error
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise InstanceError(f"invalid JSON in traffic instance: {error}") from error
        return cls.from_dict(payload)


def load(path: Path) -> Instance:
    """Read an instance JSON file."""
    return Instance.from_json(Path(path))


def dump(instance: Instance, path: Path) -> None:
    """Write an instance JSON file atomically."""
    instance.to_json(Path(path))
