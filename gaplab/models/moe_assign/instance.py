"""One MoE layer-step: the activated experts, their token workloads, cache state and costs.

Notation follows the model: expert ``e`` has workload ``w_e`` (tokens of the batch routed to
it), cache flag ``c_e`` (1 when its weights are resident on the GPU), GPU cost
``g_e = T_gpu(w_e) + (1 - c_e) t_trans`` and CPU cost ``p_e = T_cpu(w_e)``. The two devices
run at once, so the layer takes ``max(GPU load, CPU load)``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from gaplab.models.moe_assign.hardware import SHAPES, CostModel, cost_model, get_shape

logger = logging.getLogger(__name__)

FORMAT = "gaplab.moe-assign.instance/1"
"""Value of the ``format`` field in instance JSON files."""

PHASES = ("prefill", "decode")

_PER_EXPERT_COSTS = (
    "cpu_fixed_s",
    "cpu_per_token_s",
    "gpu_fixed_s",
    "gpu_per_token_s",
    "transfer_s",
)


@dataclass(frozen=True, eq=False)
class Instance:
    """The activated experts of one MoE layer in one forward step.

    Arrays have one entry per activated expert, in the order of ``experts``. Build instances
    with :meth:`create`, which accepts lists and broadcasts scalar costs; the constructor
    validates and freezes the arrays.

    Raises
    ------
    ValueError
        When a workload is negative or zero, an expert id repeats or lies outside the layer,
        ``top_k`` exceeds ``num_experts``, a cost is negative or not finite, or the arrays
        differ in length.
    """

    experts: np.ndarray
    """Expert ids within the layer, unique, in ``[0, num_experts)``."""
    workload: np.ndarray
    """Tokens routed to each expert (``w_e``), at least 1."""
    cached: np.ndarray
    """``c_e``: True when the expert's weights are resident on the GPU."""
    cpu_fixed_s: np.ndarray
    cpu_per_token_s: np.ndarray
    gpu_fixed_s: np.ndarray
    gpu_per_token_s: np.ndarray
    transfer_s: np.ndarray
    """Host-to-device copy time of each expert's weights."""
    num_experts: int
    """Routed experts in the layer (``N``), activated or not."""
    top_k: int
    name: str = "moe-layer"
    slot_limit: int | None = None
    """``B_l``: most uncached experts that may be copied to the GPU; ``None`` for no limit."""
    gpu_base_s: float = 0.0
    """GPU time every schedule pays (shared experts), added to the GPU side."""
    copy_overlap: bool = False
    """False: copies and kernels share one GPU stream, so the GPU side is
    ``gpu_base + sum_e x_e g_e``. True: a copy engine runs beside the kernels, so the GPU side
    is the larger of the copy total ``sum_e x_e (1 - c_e) t_trans`` and ``gpu_base`` plus the
    kernels plus the longest copy among the GPU set (the kernels wait for a first copy)."""
    expert_bytes: float = 0.0
    """Bytes of one expert's weights, for PCIe traffic counts."""
    tokens: int | None = None
    """Tokens in the batch; when given, the workloads must sum to ``tokens * top_k``."""
    shape: str = ""
    """Model shape name, empty for hand-made layers."""
    layer: int = 0
    phase: str = "decode"
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form provenance (seed, source file); written to JSON unchanged."""

    def __post_init__(self) -> None:
        experts = _as_array(self.experts, np.int64, "experts")
        n = len(experts)
        if n == 0:
            raise ValueError(
                "an instance needs at least one activated expert, got an empty expert list"
            )
        workload = _as_array(self.workload, np.float64, "workload", n)
        cached = _as_array(self.cached, np.bool_, "cached", n)
        object.__setattr__(self, "experts", experts)
        object.__setattr__(self, "workload", workload)
        object.__setattr__(self, "cached", cached)
        for name in _PER_EXPERT_COSTS:
            values = _as_array(getattr(self, name), np.float64, name, n)
            _check_nonnegative(values, name, experts)
            object.__setattr__(self, name, values)
        self._check()
        for name in ("experts", "workload", "cached", *_PER_EXPERT_COSTS):
            getattr(self, name).flags.writeable = False

    def _check(self) -> None:
        n = len(self.experts)
        if int(self.num_experts) < 1:
            raise ValueError(f"num_experts must be at least 1, got {self.num_experts}")
        if int(self.top_k) < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")
        if self.top_k > self.num_experts:
            raise ValueError(
                f"top_k={self.top_k} exceeds num_experts={self.num_experts}; a token is routed "
                "to at most as many experts as the layer has, so lower top_k"
            )
        if n > self.num_experts:
            raise ValueError(
                f"{n} activated experts but the layer has only num_experts={self.num_experts}"
            )
        bad = (self.experts < 0) | (self.experts >= self.num_experts)
        if bad.any():
            raise ValueError(
                f"expert id {int(self.experts[bad][0])} is outside [0, {self.num_experts}); "
                "ids number the layer's routed experts from 0"
            )
        if len(np.unique(self.experts)) != n:
            values, counts = np.unique(self.experts, return_counts=True)
            raise ValueError(
                f"expert id {int(values[counts > 1][0])} appears twice; list each activated "
                "expert once with its total workload"
            )

        w = self.workload
        if not np.all(np.isfinite(w)):
            raise ValueError("workload contains NaN or infinite values; give token counts")
        if (w < 0).any():
            e = int(self.experts[np.argmax(w < 0)])
            raise ValueError(
                f"workload of expert {e} is {w[w < 0][0]:g} tokens; workloads are token counts "
                "and cannot be negative"
            )
        if (w == 0).any():
            e = int(self.experts[np.argmax(w == 0)])
            raise ValueError(
                f"expert {e} has workload 0; list only activated experts (at least one token)"
            )
        if not np.all(w == np.round(w)):
            raise ValueError("workload must hold whole token counts, got fractional values")

        if self.slot_limit is not None and int(self.slot_limit) < 0:
            raise ValueError(
                f"slot_limit must be a non-negative number of experts or None, "
                f"got {self.slot_limit}"
            )
        for name in ("gpu_base_s", "expert_bytes"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
        if self.tokens is not None:
            if self.tokens < 1:
                raise ValueError(f"tokens must be at least 1 or None, got {self.tokens}")
            if w.max() > self.tokens:
                raise ValueError(
                    f"an expert has workload {w.max():g} but the batch has only "
                    f"{self.tokens} tokens; each token visits an expert at most once"
                )
            if w.sum() != self.tokens * self.top_k:
                raise ValueError(
                    f"workloads sum to {w.sum():g}, expected tokens * top_k = "
                    f"{self.tokens * self.top_k}; pass tokens=None for a partial layer"
                )
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {self.phase!r}")

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        experts: ArrayLike,
        workload: ArrayLike,
        cached: ArrayLike | bool = False,
        *,
        costs: CostModel | None = None,
        cpu_fixed_s: ArrayLike | None = None,
        cpu_per_token_s: ArrayLike | None = None,
        gpu_fixed_s: ArrayLike | None = None,
        gpu_per_token_s: ArrayLike | None = None,
        transfer_s: ArrayLike | None = None,
        num_experts: int | None = None,
        top_k: int = 1,
        **options: Any,
    ) -> Instance:
        """Build an instance from lists, with costs from ``costs`` or given per expert.

        Scalars broadcast over the experts. A cost given explicitly overrides the one in
        ``costs``; without ``costs`` every cost must be given. ``num_experts`` defaults to one
        more than the largest id. ``options`` are the remaining fields (``name``,
        ``slot_limit``, ``gpu_base_s``, ``expert_bytes``, ``tokens``, ``shape``, ...).
        """
        ids = np.asarray(experts, dtype=np.int64).ravel()
        n = len(ids)
        explicit = {
            "cpu_fixed_s": cpu_fixed_s,
            "cpu_per_token_s": cpu_per_token_s,
            "gpu_fixed_s": gpu_fixed_s,
            "gpu_per_token_s": gpu_per_token_s,
            "transfer_s": transfer_s,
        }
        values: dict[str, np.ndarray] = {}
        for name, given in explicit.items():
            if given is None:
                if costs is None:
                    raise ValueError(f"{name} is missing; pass it or a CostModel as costs=")
                given = getattr(costs, name)
            values[name] = np.broadcast_to(np.asarray(given, dtype=np.float64), (n,)).copy()
        if costs is not None:
            options.setdefault("expert_bytes", costs.expert_bytes)
            options.setdefault("gpu_base_s", costs.shared_gpu_s)
        flags = np.broadcast_to(np.asarray(cached, dtype=bool), (n,)).copy()
        return cls(
            experts=ids,
            workload=np.asarray(workload, dtype=np.float64),
            cached=flags,
            num_experts=int(num_experts if num_experts is not None else ids.max() + 1),
            top_k=int(top_k),
            cpu_fixed_s=values["cpu_fixed_s"],
            cpu_per_token_s=values["cpu_per_token_s"],
            gpu_fixed_s=values["gpu_fixed_s"],
            gpu_per_token_s=values["gpu_per_token_s"],
            transfer_s=values["transfer_s"],
            **options,
        )

    @classmethod
    def from_layer_counts(
        cls,
        counts: ArrayLike,
        resident: ArrayLike,
        costs: CostModel,
        *,
        top_k: int,
        tokens: int | None = None,
        **options: Any,
    ) -> Instance:
        """Build an instance from per-expert token counts over the whole layer.

        ``counts[e]`` is the workload of expert ``e`` (zero for inactive experts) and
        ``resident[e]`` its cache flag; both have one entry per routed expert of the layer.
        """
        counts = np.asarray(counts, dtype=np.float64)
        resident = np.asarray(resident, dtype=bool)
        if counts.shape != resident.shape or counts.ndim != 1:
            raise ValueError(
                f"counts {counts.shape} and resident {resident.shape} must be vectors with one "
                "entry per routed expert"
            )
        active = np.flatnonzero(counts > 0)
        return cls.create(
            active,
            counts[active],
            resident[active],
            costs=costs,
            num_experts=len(counts),
            top_k=top_k,
            tokens=tokens,
            **options,
        )

    # ------------------------------------------------------------------ derived costs

    @property
    def n(self) -> int:
        """Activated experts."""
        return len(self.experts)

    @cached_property
    def gpu_cost(self) -> np.ndarray:
        """``g_e = a_g + b_g w_e + (1 - c_e) t_trans``: GPU time with the copy of a miss."""
        cost = self.gpu_fixed_s + self.gpu_per_token_s * self.workload
        cost = cost + np.where(self.cached, 0.0, self.transfer_s)
        cost.flags.writeable = False
        return cost

    @cached_property
    def cpu_cost(self) -> np.ndarray:
        """``p_e = a_c + b_c w_e``: CPU time, with no copy."""
        cost = self.cpu_fixed_s + self.cpu_per_token_s * self.workload
        cost.flags.writeable = False
        return cost

    @property
    def uncached(self) -> np.ndarray:
        """``1 - c_e`` as booleans."""
        return ~self.cached

    def with_cached(self, cached: ArrayLike) -> Instance:
        """Return a copy with other cache flags (one per activated expert)."""
        return self.replace(cached=np.asarray(cached, dtype=bool))

    def replace(self, **changes: Any) -> Instance:
        """Return a validated copy with some fields changed."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.update(changes)
        return Instance(**data)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """Return the instance as plain JSON values; uniform costs are written once."""
        out: dict[str, Any] = {
            "format": FORMAT,
            "name": self.name,
            "shape": self.shape,
            "layer": int(self.layer),
            "phase": self.phase,
            "num_experts": int(self.num_experts),
            "top_k": int(self.top_k),
            "tokens": None if self.tokens is None else int(self.tokens),
            "slot_limit": None if self.slot_limit is None else int(self.slot_limit),
            "gpu_base_s": float(self.gpu_base_s),
            "copy_overlap": bool(self.copy_overlap),
            "expert_bytes": float(self.expert_bytes),
            "experts": self.experts.tolist(),
            "workload": [int(v) for v in self.workload],
            "cached": [bool(v) for v in self.cached],
        }
        for name in _PER_EXPERT_COSTS:
            values = getattr(self, name)
            out[name] = float(values[0]) if np.all(values == values[0]) else values.tolist()
        out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        """Read an instance written by :meth:`to_dict`."""
        if not isinstance(data, dict):
            raise ValueError(f"an instance must be a JSON object, got {type(data).__name__}")
        fmt = data.get("format", FORMAT)
        if fmt != FORMAT:
            raise ValueError(f"unsupported instance format {fmt!r}; expected {FORMAT!r}")
        required = ("experts", "workload", "cached", "num_experts", "top_k", *_PER_EXPERT_COSTS)
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(f"instance JSON lacks the fields {missing}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise ValueError(f"instance JSON has unknown fields {unknown}; known: {sorted(known)}")
        fields = {key: value for key, value in data.items() if key != "format"}
        costs = {name: fields.pop(name) for name in _PER_EXPERT_COSTS}
        return cls.create(
            fields.pop("experts"),
            fields.pop("workload"),
            fields.pop("cached"),
            num_experts=fields.pop("num_experts"),
            top_k=fields.pop("top_k"),
            **costs,
            **fields,
        )

    def to_json(self, path: str | Path | None = None) -> str:
        """Return the JSON text; also write it atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        if path is not None:
            from gaplab.modeling.compiled import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> Instance:
        """Read an instance from a JSON file path or from JSON text."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"instance file {str(path)!r} not found")
            text = path.read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"instance JSON is malformed: {error}") from error
        return cls.from_dict(data)

    # ------------------------------------------------------------------ generation

    @classmethod
    def generate(
        cls,
        seed: int = 0,
        size: str = "small",
        *,
        shape: str | None = None,
        batch: int | None = None,
        phase: str = "decode",
        cache_ratio: float = 0.25,
        zipf: float = 1.0,
        slot_limit: int | None = None,
    ) -> Instance:
        """Generate one layer-step of a model shape with Zipf-popular experts.

        ``size`` picks a default shape and batch: ``small`` is Mixtral-8x7B at batch 16,
        ``medium`` DeepSeek-V2-Lite at batch 32, ``large`` Qwen3-30B-A3B at batch 64, all in
        decode. The ``cache_ratio`` most popular experts are resident, as a static cache
        would choose. A prefill step routes ``batch * 64`` prompt tokens.
        """
        from gaplab.models.moe_assign.traces import sample_topk, zipf_popularity

        defaults = {
            "small": ("mixtral-8x7b", 16),
            "medium": ("deepseek-v2-lite", 32),
            "large": ("qwen3-30b-a3b", 64),
        }
        if size not in defaults:
            raise ValueError(f"size must be one of {list(defaults)}, got {size!r}")
        shape_name = shape or defaults[size][0]
        model = get_shape(shape_name)
        batch = batch or defaults[size][1]
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        if not 0 <= cache_ratio <= 1:
            raise ValueError(f"cache_ratio must lie in [0, 1], got {cache_ratio}")
        tokens = batch * (64 if phase == "prefill" else 1)

        rng = np.random.default_rng(seed)
        popularity = zipf_popularity(model.experts, zipf, rng)
        picks = sample_topk(rng, np.log(popularity), tokens, model.top_k)
        counts = np.bincount(picks.ravel(), minlength=model.experts)
        resident_ids = np.argsort(-popularity, kind="stable")[: round(cache_ratio * model.experts)]
        resident = np.zeros(model.experts, dtype=bool)
        resident[resident_ids] = True
        return cls.from_layer_counts(
            counts,
            resident,
            cost_model(model, tokens=tokens),
            top_k=model.top_k,
            tokens=tokens,
            name=f"{shape_name}-{phase}-b{batch}-s{seed}",
            shape=shape_name,
            phase=phase,
            slot_limit=slot_limit,
            meta={"seed": seed, "batch": batch, "cache_ratio": cache_ratio, "zipf": zipf},
        )


def load(path: str | Path) -> Instance:
    """Read an instance JSON file."""
    return Instance.from_json(Path(path))


def dump(instance: Instance, path: str | Path) -> None:
    """Write ``instance`` to ``path`` as JSON, atomically."""
    instance.to_json(Path(path))


def known_shapes() -> list[str]:
    """Names of the model shapes :meth:`Instance.generate` accepts."""
    return list(SHAPES)


def _as_array(values: Any, dtype: Any, name: str, length: int | None = None) -> np.ndarray:
    try:
        array = np.array(values, dtype=dtype).ravel()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a list of numbers, got {values!r:.80}") from error
    if length is not None and len(array) != length:
        raise ValueError(f"{name} has {len(array)} entries, expected one per expert ({length})")
    return array


def _check_nonnegative(values: np.ndarray, name: str, experts: np.ndarray) -> None:
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        position = int(np.argmax(bad))
        raise ValueError(
            f"{name} of expert {int(experts[position])} is {values[position]!r}; times must be "
            "finite and non-negative (use a large finite value to model a very slow copy)"
        )
