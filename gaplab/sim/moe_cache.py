"""Per-layer GPU expert caches of fixed size, and their replay over a routing trace.

Every policy keeps ``capacity`` resident experts in each layer, so the cache size never
changes; a load replaces one resident. One routed event is one (step, layer, expert) triple
with at least one token; it is a hit when the expert is resident at the start of the step.
Ties between experts always break toward the lower expert id, so replays are reproducible.

Policies:

- ``warc``: the workload-aware window policy. Each layer adds the workload (tokens) of its
  active experts to their scores; every ``window`` steps the ``swaps`` highest-scoring
  non-resident experts replace the lowest-scoring residents, and the scores restart at zero.
  Swaps happen only at window ends. By default a pair is swapped only when the incoming
  expert outscored the outgoing one (a design choice; the rule as published leaves it open).
- ``lru`` and ``lfu``: on each miss that was copied to the GPU, the expert replaces the
  resident used least recently or least often (frequency since the last reset).
- ``score``: a decayed activation score (each step multiplies scores by ``decay`` and adds
  each expert's share of the layer's tokens); a copied miss replaces the lowest-scoring
  resident only if it now scores higher. It stands in for score-based baselines such as
  HybriMoE's, whose exact rule is not reproduced here.

Experts active in the current step are never evicted by ``lru``, ``lfu`` or ``score``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from gaplab.models.moe_assign.traces import RoutingTrace

logger = logging.getLogger(__name__)


class CachePolicy(ABC):
    """A fixed-size expert cache per layer.

    ``resident`` has shape ``(layers, experts)``; each row has exactly ``capacity`` True
    entries. :meth:`observe` is called once per layer and step after routing is known.
    """

    name = ""

    def __init__(
        self, layers: int, experts: int, capacity: int, initial: np.ndarray | None = None
    ) -> None:
        if not 0 <= capacity <= experts:
            raise ValueError(f"capacity must lie in [0, {experts}] experts, got {capacity}")
        if initial is None:
            initial = np.zeros((layers, experts), dtype=bool)
            initial[:, :capacity] = True
        initial = np.asarray(initial, dtype=bool)
        if initial.shape != (layers, experts):
            raise ValueError(f"initial has shape {initial.shape}, expected {(layers, experts)}")
        if np.any(initial.sum(axis=1) != capacity):
            raise ValueError(f"every layer of initial must hold exactly {capacity} experts")
        self.layers = layers
        self.experts = experts
        self.capacity = capacity
        self.initial = initial.copy()
        self.resident = initial.copy()
        self.reset()

    def reset(self) -> None:
        """Return to the initial residents and forget all statistics (end of a sequence)."""
        self.resident = self.initial.copy()
        self._clear()

    @abstractmethod
    def _clear(self) -> None: ...

    @abstractmethod
    def observe(self, layer: int, workload: np.ndarray, copied: np.ndarray) -> np.ndarray:
        """Update layer ``layer`` after a step.

        ``workload`` is the tokens per expert of this step and ``copied`` flags the
        non-resident experts whose weights were copied to the GPU during the step (admitting
        them costs no further transfer). Returns a boolean mask of experts that became
        resident.
        """

    def _replace(self, layer: int, incoming: int, outgoing: int) -> None:
        self.resident[layer, outgoing] = False
        self.resident[layer, incoming] = True


def _lowest(values: np.ndarray, candidates: np.ndarray) -> int | None:
    """Position of the smallest value among candidates, ties to the lower position."""
    positions = np.flatnonzero(candidates)
    if not len(positions):
        return None
    return int(positions[np.argmin(values[positions])])


def _admission_order(workload: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Experts in ``mask`` by decreasing workload, ties to the lower id."""
    positions = np.flatnonzero(mask)
    return positions[np.lexsort((positions, -workload[positions]))]


class DemandPolicy(CachePolicy):
    """Admit copied misses, evicting the inactive resident with the lowest priority."""

    def _priority(self, layer: int) -> np.ndarray:
        raise NotImplementedError

    def _update(self, layer: int, workload: np.ndarray) -> None:
        raise NotImplementedError

    def _accepts(self, layer: int, incoming: int, outgoing: int) -> bool:
        return True

    def observe(self, layer: int, workload: np.ndarray, copied: np.ndarray) -> np.ndarray:
        self._update(layer, workload)
        active = workload > 0
        loaded = np.zeros(self.experts, dtype=bool)
        if self.capacity == 0:
            return loaded
        for incoming in _admission_order(workload, copied & ~self.resident[layer]):
            priority = self._priority(layer)
            outgoing = _lowest(priority, self.resident[layer] & ~active)
            if outgoing is None or not self._accepts(layer, incoming, outgoing):
                continue
            self._replace(layer, int(incoming), outgoing)
            loaded[incoming] = True
        return loaded


class LRU(DemandPolicy):
    """Least recently used replacement."""

    name = "lru"

    def _clear(self) -> None:
        self.clock = 0
        self.last_use = np.full((self.layers, self.experts), -1, dtype=np.int64)

    def _update(self, layer: int, workload: np.ndarray) -> None:
        self.clock += 1
        self.last_use[layer, workload > 0] = self.clock

    def _priority(self, layer: int) -> np.ndarray:
        return self.last_use[layer]


class LFU(DemandPolicy):
    """Least frequently used replacement; frequency counts routed steps since reset."""

    name = "lfu"

    def _clear(self) -> None:
        self.frequency = np.zeros((self.layers, self.experts), dtype=np.int64)

    def _update(self, layer: int, workload: np.ndarray) -> None:
        self.frequency[layer, workload > 0] += 1

    def _priority(self, layer: int) -> np.ndarray:
        return self.frequency[layer]


class ScoreCache(DemandPolicy):
    """Decayed activation-score replacement with score-gated admission."""

    name = "score"

    def __init__(
        self,
        layers: int,
        experts: int,
        capacity: int,
        initial: np.ndarray | None = None,
        *,
        decay: float = 0.5,
    ) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay must lie in [0, 1), got {decay}")
        self.decay = decay
        super().__init__(layers, experts, capacity, initial)

    def _clear(self) -> None:
        self.score = np.zeros((self.layers, self.experts))

    def _update(self, layer: int, workload: np.ndarray) -> None:
        total = workload.sum()
        self.score[layer] *= self.decay
        if total > 0:
            self.score[layer] += workload / total

    def _priority(self, layer: int) -> np.ndarray:
        return self.score[layer]

    def _accepts(self, layer: int, incoming: int, outgoing: int) -> bool:
        return bool(self.score[layer, incoming] > self.score[layer, outgoing])


class WindowCache(CachePolicy):
    """Workload-aware window replacement: swap up to ``swaps`` experts every ``window`` steps."""

    name = "warc"

    def __init__(
        self,
        layers: int,
        experts: int,
        capacity: int,
        initial: np.ndarray | None = None,
        *,
        window: int = 4,
        swaps: int = 2,
        strict_gain: bool = True,
    ) -> None:
        if window < 1 or swaps < 0:
            raise ValueError(f"window must be >= 1 and swaps >= 0, got {window} and {swaps}")
        self.window = window
        self.swaps = swaps
        self.strict_gain = strict_gain
        self.swap_steps: list[tuple[int, int]] = []
        """(layer, layer step counter) of every window end that swapped experts."""
        super().__init__(layers, experts, capacity, initial)

    def _clear(self) -> None:
        self.score = np.zeros((self.layers, self.experts))
        self.step = np.zeros(self.layers, dtype=np.int64)

    def observe(self, layer: int, workload: np.ndarray, copied: np.ndarray) -> np.ndarray:
        self.score[layer] += workload
        self.step[layer] += 1
        loaded = np.zeros(self.experts, dtype=bool)
        if self.step[layer] % self.window:
            return loaded
        score = self.score[layer]
        resident = self.resident[layer]
        outside = np.flatnonzero(~resident & (score > 0))
        incoming = outside[np.lexsort((outside, -score[outside]))][: self.swaps]
        inside = np.flatnonzero(resident)
        outgoing = inside[np.lexsort((inside, score[inside]))][: len(incoming)]
        for new, old in zip(incoming, outgoing, strict=False):
            if self.strict_gain and score[new] <= score[old]:
                break
            self._replace(layer, int(new), int(old))
            loaded[new] = True
        if loaded.any():
            self.swap_steps.append((layer, int(self.step[layer])))
        self.score[layer] = 0.0
        return loaded


POLICIES: dict[str, type[CachePolicy]] = {
    "warc": WindowCache,
    "lru": LRU,
    "lfu": LFU,
    "score": ScoreCache,
}


def make_policy(
    name: str,
    layers: int,
    experts: int,
    capacity: int,
    initial: np.ndarray | None = None,
    **options: object,
) -> CachePolicy:
    """Create the cache policy called ``name`` (``warc``, ``lru``, ``lfu`` or ``score``)."""
    if name not in POLICIES:
        raise KeyError(f"unknown cache policy {name!r}; known: {', '.join(POLICIES)}")
    return POLICIES[name](layers, experts, capacity, initial, **options)


def popular_initial(popularity: np.ndarray, capacity: int) -> np.ndarray:
    """Per-layer initial residents: the ``capacity`` most popular experts, ties to lower ids."""
    order = np.argsort(-np.asarray(popularity), axis=1, kind="stable")[:, :capacity]
    initial = np.zeros(np.shape(popularity), dtype=bool)
    np.put_along_axis(initial, order, True, axis=1)
    return initial


@dataclass
class CacheReplay:
    """Counts of one policy replayed over a trace."""

    policy: str
    hits: int = 0
    misses: int = 0
    loads: int = 0
    """Experts the cache brought in (each one expert-sized PCIe copy)."""
    replacements: int = 0
    """Residents replaced, by admitted misses and by window swaps alike."""
    max_hits: int = 0
    """Hits of a cache that always held the active experts: ``min(capacity, active)`` summed
    over the replayed layers and steps, the ceiling of every policy of this capacity."""
    expert_bytes: float = 0.0
    step_hit_rate: list[float] = field(default_factory=list)
    sizes_constant: bool = True

    @property
    def routed_events(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        return self.hits / self.routed_events if self.routed_events else 0.0

    @property
    def max_hit_rate(self) -> float:
        """Hit rate of :attr:`max_hits`, which no policy of this capacity exceeds."""
        return self.max_hits / self.routed_events if self.routed_events else 0.0

    @property
    def pcie_bytes(self) -> float:
        """Bytes of the copies: every miss is copied to the GPU, plus cache loads not already
        copied as a miss."""
        return (self.misses + self.loads) * self.expert_bytes


def replay_cache(
    trace: RoutingTrace,
    policy: CachePolicy,
    *,
    expert_bytes: float = 0.0,
    include_prefill: bool = True,
) -> CacheReplay:
    """Replay ``trace`` through ``policy`` as a GPU-only offloading run would.

    Every miss is copied to the GPU for the step and offered to the cache. Caches reset at
    the start of each batch of sequences. ``loads`` counts experts a policy brought in that
    were not misses of that step (window swaps), and ``replacements`` every resident replaced.
    Prefill steps are counted and observed unless ``include_prefill`` is False.
    """
    stats = CacheReplay(policy.name, expert_bytes=expert_bytes)
    previous_sequence = None
    for step in range(trace.steps):
        if trace.sequence[step] != previous_sequence:
            policy.reset()
            previous_sequence = trace.sequence[step]
        if not include_prefill and trace.phase[step] == "prefill":
            continue
        hits = misses = 0
        for layer in range(trace.layers):
            workload = trace.workload[step, layer]
            active = workload > 0
            resident = policy.resident[layer]
            layer_hits = int(np.count_nonzero(active & resident))
            hits += layer_hits
            misses += int(np.count_nonzero(active)) - layer_hits
            missed = active & ~resident
            before = resident.copy()
            loaded = policy.observe(layer, workload, missed)
            stats.loads += int(np.count_nonzero(loaded & ~missed))
            stats.replacements += int(np.count_nonzero(before & ~policy.resident[layer]))
            stats.max_hits += min(policy.capacity, int(np.count_nonzero(active)))
            if int(policy.resident[layer].sum()) != policy.capacity:
                stats.sizes_constant = False
        stats.hits += hits
        stats.misses += misses
        stats.step_hit_rate.append(hits / max(1, hits + misses))
    return stats
