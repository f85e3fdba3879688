"""Reader for per-layer expert popularity counts, and layer instances drawn from them.

The files are those of Fiddler's profiler (efeslab/fiddler, Apache-2.0), one per MMLU subject:
``{"total_input_tokens": N, "expert_popularity": [[c_0, ..., c_7], ...]}`` with one row per
layer of Mixtral-8x7B. ``c_e`` counts how often expert ``e`` of that layer was picked (top-2),
so every row sums to twice the number of routed tokens. ``total_input_tokens`` counts
whitespace-separated words, not tokenizer tokens, so it is kept only as metadata.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaplab.models.moe_assign.hardware import ModelShape, cost_model, get_shape
from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.traces import cap_shares, sample_topk

logger = logging.getLogger(__name__)

POPULARITY_FOLDER = Path("moe") / "fiddler_mixtral_8x7b_instruct"
"""Location of the popularity files inside a data folder laid out like the shared data."""


@dataclass(frozen=True, eq=False)
class Popularity:
    """Per-layer expert selection counts of one workload."""

    counts: np.ndarray
    """Shape ``(layers, experts)``, non-negative integers."""
    shape: ModelShape
    subject: str
    total_input_words: int | None = None

    @property
    def shares(self) -> np.ndarray:
        """``pi_l,e``: each count over its row sum."""
        return self.counts / self.counts.sum(axis=1, keepdims=True)

    @property
    def routed_tokens(self) -> int:
        """Tokens routed through each layer (row sum over top-k)."""
        return int(self.counts[0].sum() // self.shape.top_k)

    def resident_top(self, capacity: int) -> np.ndarray:
        """Per-layer static cache: the ``capacity`` most popular experts, ties to lower ids.

        Returns a boolean array of shape ``(layers, experts)``; with per-layer capacities the
        knapsack of the static cache choice reduces to this top-``capacity`` pick.
        """
        if not 0 <= capacity <= self.shape.experts:
            raise ValueError(f"capacity must lie in [0, {self.shape.experts}], got {capacity}")
        order = np.argsort(-self.counts, axis=1, kind="stable")[:, :capacity]
        resident = np.zeros(self.counts.shape, dtype=bool)
        np.put_along_axis(resident, order, True, axis=1)
        return resident

    def resident_global(self, total: int) -> np.ndarray:
        """Static cache under one budget shared by all layers: the ``total`` most popular
        (layer, expert) pairs by share, ties to the lower layer and then the lower id.

        With experts of equal size the knapsack over (layer, expert) pairs that maximizes the
        expected hit mass ``sum pi_l,e`` is solved exactly by this pick.
        """
        layers, experts = self.counts.shape
        if not 0 <= total <= layers * experts:
            raise ValueError(f"total must lie in [0, {layers * experts}], got {total}")
        flat = -self.shares.ravel()
        order = np.lexsort((np.arange(flat.size), flat))[:total]
        resident = np.zeros(flat.size, dtype=bool)
        resident[order] = True
        return resident.reshape(layers, experts)


def hit_mass(resident: np.ndarray, shares: np.ndarray) -> float:
    """Return the expected hit rate of a static cache: the resident share, averaged over layers."""
    resident = np.asarray(resident, dtype=bool)
    shares = np.asarray(shares, dtype=float)
    if resident.shape != shares.shape:
        raise ValueError(f"resident {resident.shape} and shares {shares.shape} differ in shape")
    return float((shares * resident).sum(axis=1).mean())


def load_popularity(path: str | Path, shape: str = "mixtral-8x7b") -> Popularity:
    """Read one popularity JSON file and check it against the model shape.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the JSON is malformed, lacks ``expert_popularity``, has a matrix of another shape
        than (layers, experts) of ``shape``, contains negative or fractional counts, or has rows
        with different sums.
    """
    path = Path(path)
    model = get_shape(shape)
    if not path.is_file():
        raise FileNotFoundError(f"popularity file {str(path)!r} not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"popularity file {path.name!r} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or "expert_popularity" not in data:
        raise ValueError(
            f"popularity file {path.name!r} lacks the 'expert_popularity' matrix; expected "
            '{"total_input_tokens": N, "expert_popularity": [[...], ...]}'
        )
    try:
        counts = np.array(data["expert_popularity"], dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"expert_popularity in {path.name!r} is not a rectangular matrix of numbers"
        ) from error
    expected = (model.layers, model.experts)
    if counts.shape != expected:
        raise ValueError(
            f"expert_popularity in {path.name!r} has shape {counts.shape}, expected {expected} "
            f"(layers x experts of {shape}); pass the shape the file was profiled on"
        )
    if not np.all(np.isfinite(counts)) or (counts < 0).any() or np.any(counts != np.round(counts)):
        raise ValueError(f"expert_popularity in {path.name!r} must hold non-negative counts")
    sums = counts.sum(axis=1)
    if sums.min() <= 0 or not np.all(sums == sums[0]):
        raise ValueError(
            f"rows of expert_popularity in {path.name!r} sum to {sorted(set(sums.tolist()))[:4]}; "
            "every layer routes the same tokens, so all rows must have one positive sum"
        )
    if sums[0] % model.top_k:
        raise ValueError(
            f"rows of {path.name!r} sum to {sums[0]:g}, not a multiple of top_k={model.top_k}"
        )
    words = data.get("total_input_tokens")
    subject = path.stem.removeprefix("expert_popularity_")
    return Popularity(
        counts.astype(np.int64), model, subject, None if words is None else int(words)
    )


def popularity_files(data_dir: str | Path) -> list[Path]:
    """List the popularity files under a data folder laid out like the shared data, sorted."""
    folder = Path(data_dir) / POPULARITY_FOLDER
    if not folder.is_dir():
        raise FileNotFoundError(f"popularity folder {str(folder)!r} not found")
    return sorted(folder.glob("expert_popularity_*.json"))


def instances_from_popularity(
    popularity: Popularity,
    *,
    batch: int = 32,
    layers: list[int] | None = None,
    cache_ratio: float = 0.25,
    seed: int = 0,
    phase: str = "decode",
) -> list[Instance]:
    """Draw one layer-step per chosen layer from the popularity counts.

    Each of ``batch`` tokens picks ``top_k`` distinct experts with probabilities proportional
    to the layer's counts (the correlation between a token's picks and across layers is not in
    the data and is ignored). The ``cache_ratio`` most popular experts of the layer are
    resident, as a static cache chosen from the same counts would be.
    """
    model = popularity.shape
    chosen = list(range(model.layers)) if layers is None else layers
    capacity = round(cache_ratio * model.experts)
    resident = popularity.resident_top(capacity)
    costs = cost_model(model, tokens=batch)
    rng = np.random.default_rng(seed)
    # Real counts never exceed a 1/top_k share, so cap_shares only normalizes the rows here,
    # and the 1e-9 keeps the log finite for experts that were never picked.
    shares = cap_shares(popularity.counts + 1e-9, model.top_k, headroom=1.0)
    out = []
    for layer in chosen:
        picks = sample_topk(rng, np.log(shares[layer]), batch, model.top_k)
        workload = np.bincount(picks.ravel(), minlength=model.experts)
        out.append(
            Instance.from_layer_counts(
                workload,
                resident[layer],
                costs,
                top_k=model.top_k,
                tokens=batch,
                name=f"{popularity.subject}-l{layer}-b{batch}-s{seed}",
                shape=model.name,
                layer=layer,
                phase=phase,
                meta={"source": "popularity", "subject": popularity.subject, "seed": seed},
            )
        )
    return out


def import_popularity(path: str | Path) -> Instance:
    """Import layer 0 of a popularity file at batch 32 (the command line's ``import``)."""
    return instances_from_popularity(load_popularity(path), batch=32, layers=[0])[0]
