"""The llm-fluid Instance: request classes, GPU constants, prices and the number of GPUs.

Units: tokens for prompt and output lengths, seconds for times, 1/s for rates, and money per
token for prices, so revenue is money per GPU per second.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gaplab.models.registry import write_json_atomic

FORMAT = "gaplab.llm-fluid/1"


class InstanceError(ValueError):
    """Raised when llm-fluid input data breaks a rule of the model."""


@dataclass(frozen=True)
class ServiceLevels:
    """Service-level targets and penalty weights added to the bundled LP.

    A ``None`` hard bound is inactive and a zero penalty weight is inactive.

    Attributes
    ----------
    prefill_fairness
        Hard bound on ``x_i - x_j`` for every ordered pair of classes (share of GPU time).
    decode_fairness
        Hard bound on ``y_s,i - y_s,j`` for every ordered pair (solo decode streams per GPU).
    tpot
        Hard bound on the average time per output token (seconds), all slots occupied.
    prefill_fairness_weight, decode_fairness_weight
        Revenue subtracted per unit of the largest pairwise gap in ``x`` or ``y_s``.
    tpot_weight
        Revenue subtracted per second of average time per output token.
    """

    prefill_fairness: float | None = None
    decode_fairness: float | None = None
    tpot: float | None = None
    prefill_fairness_weight: float = 0.0
    decode_fairness_weight: float = 0.0
    tpot_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prefill_fairness", "decode_fairness", "tpot"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InstanceError(
                    f"service level {name} must be a finite number >= 0 or null, got {value!r}"
                )
        for name in ("prefill_fairness_weight", "decode_fairness_weight", "tpot_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InstanceError(f"penalty weight {name} must be finite and >= 0, got {value!r}")

    @property
    def active(self) -> bool:
        """True when any hard bound or penalty is set."""
        hard = (self.prefill_fairness, self.decode_fairness, self.tpot)
        weights = (self.prefill_fairness_weight, self.decode_fairness_weight, self.tpot_weight)
        return any(v is not None for v in hard) or any(w > 0 for w in weights)


@dataclass(frozen=True)
class Instance:
    """One LLM-serving system: I request classes on n identical GPUs.

    Attributes
    ----------
    name
        Instance label used in reports.
    classes
        Class names, one per request class.
    prompt_tokens, output_tokens
        Mean prompt length P_i and mean output length D_i of each class (tokens).
    arrival_rate
        Poisson arrival rate lambda_i of each class per GPU (requests per second per GPU).
    patience_rate
        Abandonment rate theta_i of a waiting class-i request (1/s).
    alpha, beta
        Mixed iteration time ``alpha + beta * C`` in seconds for a prefill chunk of C tokens.
    gamma
        Decode speed of one stream on a GPU without a prefill (tokens per second).
    batch_size
        Concurrent streams B per GPU (decodes plus the prefill slot); at least 2.
    chunk_tokens
        Prefill chunk size C (tokens per mixed iteration).
    price_prefill, price_decode
        Prices c_p and c_d per prompt token and per output token.
    gpus
        Number of GPUs n used by the simulator.
    service_levels
        Optional service-level targets for the ``sli`` LP.
    """

    name: str
    classes: tuple[str, ...]
    prompt_tokens: tuple[float, ...]
    output_tokens: tuple[float, ...]
    arrival_rate: tuple[float, ...]
    patience_rate: tuple[float, ...]
    alpha: float
    beta: float
    gamma: float
    batch_size: int
    chunk_tokens: float
    price_prefill: float
    price_decode: float
    gpus: int = 100
    service_levels: ServiceLevels = field(default_factory=ServiceLevels)

    def __post_init__(self) -> None:
        size = len(self.classes)
        if size == 0:
            raise InstanceError("an instance needs at least one request class, got none")
        if len(set(self.classes)) != size:
            raise InstanceError(f"class names must be distinct, got {list(self.classes)}")
        for name in ("prompt_tokens", "output_tokens", "arrival_rate", "patience_rate"):
            values = getattr(self, name)
            if len(values) != size:
                raise InstanceError(
                    f"{name} has {len(values)} entries but there are {size} classes; "
                    "give one value per class"
                )
            for label, value in zip(self.classes, values, strict=True):
                if not math.isfinite(value):
                    raise InstanceError(f"{name} of class {label!r} must be finite, got {value!r}")
                positive = name in ("prompt_tokens", "output_tokens")
                if (positive and value <= 0) or value < 0:
                    need = "> 0" if positive else ">= 0"
                    raise InstanceError(f"{name} of class {label!r} must be {need}, got {value!r}")
        for name in ("alpha", "beta", "gamma", "chunk_tokens"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InstanceError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("price_prefill", "price_decode"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InstanceError(f"{name} must be a finite number >= 0, got {value!r}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 2:
            raise InstanceError(
                f"batch_size must be an integer >= 2 (one prefill slot plus at least one decode "
                f"slot), got {self.batch_size!r}"
            )
        if int(self.gpus) != self.gpus or self.gpus < 1:
            raise InstanceError(f"gpus must be a positive integer, got {self.gpus!r}")

    # ------------------------------------------------------------------ derived rates

    @property
    def size(self) -> int:
        """Number of request classes I."""
        return len(self.classes)

    @property
    def tau(self) -> float:
        """Mixed iteration time ``alpha + beta * C`` (seconds)."""
        return self.alpha + self.beta * self.chunk_tokens

    @property
    def prompt(self) -> np.ndarray:
        return np.asarray(self.prompt_tokens, dtype=float)

    @property
    def output(self) -> np.ndarray:
        return np.asarray(self.output_tokens, dtype=float)

    @property
    def lam(self) -> np.ndarray:
        """Arrival rates per GPU (1/s)."""
        return np.asarray(self.arrival_rate, dtype=float)

    @property
    def theta(self) -> np.ndarray:
        """Abandonment rates (1/s)."""
        return np.asarray(self.patience_rate, dtype=float)

    @property
    def mu_prefill(self) -> np.ndarray:
        """Prefill service rate ``C / (P_i tau)`` (1/s)."""
        return self.chunk_tokens / (self.prompt * self.tau)

    @property
    def mu_mixed(self) -> np.ndarray:
        """Decode rate on a GPU running a prefill, ``1 / (D_i tau)`` (1/s)."""
        return 1.0 / (self.output * self.tau)

    @property
    def mu_solo(self) -> np.ndarray:
        """Decode rate on a GPU without a prefill, ``gamma / D_i`` (1/s)."""
        return self.gamma / self.output

    @property
    def bundled_price(self) -> np.ndarray:
        """Price per request ``w_i = c_p P_i + c_d D_i``, paid at decode completion."""
        return self.price_prefill * self.prompt + self.price_decode * self.output

    @property
    def solo_speedup(self) -> float:
        """``gamma * tau``: how much faster a decode runs without a prefill on its GPU."""
        return self.gamma * self.tau

    @property
    def zero_buffer_condition(self) -> bool:
        """True when ``gamma tau >= (B-1)/B``, so the bundled LP has an optimum with q_d = 0."""
        return self.solo_speedup >= (self.batch_size - 1) / self.batch_size

    def with_gpus(self, gpus: int) -> Instance:
        """Return a copy with another number of GPUs."""
        return replace(self, gpus=int(gpus))

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["service_levels"] = asdict(self.service_levels)
        for key in ("classes", "prompt_tokens", "output_tokens", "arrival_rate", "patience_rate"):
            data[key] = list(data[key])
        return {"format": FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        """Build an Instance from the JSON layout written by :meth:`to_dict`."""
        if not isinstance(data, dict):
            raise InstanceError(f"an llm-fluid instance must be a JSON object, got {type(data)}")
        fmt = data.get("format", FORMAT)
        if fmt != FORMAT:
            raise InstanceError(f"unknown instance format {fmt!r}; expected {FORMAT!r}")
        fields = {k: v for k, v in data.items() if k != "format"}
        required = [
            "name",
            "classes",
            "prompt_tokens",
            "output_tokens",
            "arrival_rate",
            "patience_rate",
            "alpha",
            "beta",
            "gamma",
            "batch_size",
            "chunk_tokens",
            "price_prefill",
            "price_decode",
        ]
        missing = [k for k in required if k not in fields]
        if missing:
            raise InstanceError(f"instance JSON is missing the fields {missing}")
        known = set(required) | {"gpus", "service_levels"}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise InstanceError(
                f"instance JSON has unknown fields {unknown}; known: {sorted(known)}"
            )
        try:
            levels = ServiceLevels(**(fields.pop("service_levels", None) or {}))
        except TypeError as error:
            raise InstanceError(f"invalid service_levels in instance JSON: {error}") from error
        for key in ("classes", "prompt_tokens", "output_tokens", "arrival_rate", "patience_rate"):
            if not isinstance(fields[key], list):
                raise InstanceError(f"{key} must be a JSON list, one entry per class")
        fields["classes"] = tuple(str(v) for v in fields["classes"])
        for key in ("prompt_tokens", "output_tokens", "arrival_rate", "patience_rate"):
            fields[key] = tuple(_number(v, key) for v in fields[key])
        for key in ("alpha", "beta", "gamma", "chunk_tokens", "price_prefill", "price_decode"):
            fields[key] = _number(fields[key], key)
        return cls(**fields, service_levels=levels)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Instance:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InstanceError(f"instance file is not valid JSON: {error}") from error
        return cls.from_dict(data)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InstanceError(f"{what} must be a number, got {value!r}")
    return float(value)


def load(path: Path) -> Instance:
    """Read an instance from a JSON file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise InstanceError(f"cannot read instance file {path}: {error}") from error
    return Instance.from_json(text)


def dump(instance: Instance, path: Path) -> None:
    """Write ``instance`` as JSON through a temporary file, so nothing partial is left."""
    write_json_atomic(Path(path), instance.to_dict())


def two_class_instance(gpus: int = 100) -> Instance:
    """Return the two-class reference instance with Qwen-8B constants.

    Class ``decode-heavy`` (P = 300, D = 1000) and class ``prefill-heavy`` (P = 3000,
    D = 400), 0.5 requests per second per GPU each, patience rate 0.1 1/s, B = 16, C = 256.
    """
    return Instance(
        name="two-class",
        classes=("decode-heavy", "prefill-heavy"),
        prompt_tokens=(300.0, 3000.0),
        output_tokens=(1000.0, 400.0),
        arrival_rate=(0.5, 0.5),
        patience_rate=(0.1, 0.1),
        alpha=0.0174,
        beta=6.2e-5,
        gamma=45.45,
        batch_size=16,
        chunk_tokens=256.0,
        price_prefill=0.1,
        price_decode=0.2,
        gpus=gpus,
    )


SIZES = {"small": 2, "medium": 4, "large": 8}


def generate(seed: int = 0, size: str = "small", gpus: int = 50) -> Instance:
    """Draw a random instance in the parameter ranges of the policy-comparison grid.

    ``size`` sets the number of classes (small 2, medium 4, large 8). Lengths are drawn in
    200..3000 tokens, arrival rates in 0.25..0.5 per GPU, alpha in 0.015..0.02 s, beta in
    1e-5..1e-3 s/token (log-uniform) and gamma in 10..50 tokens/s.
    """
    if size not in SIZES:
        raise InstanceError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
    rng = np.random.default_rng(seed)
    classes = SIZES[size]
    beta = float(np.exp(rng.uniform(np.log(1e-5), np.log(1e-3))))
    return Instance(
        name=f"generated-{size}-{seed}",
        classes=tuple(f"class{i}" for i in range(classes)),
        prompt_tokens=tuple(float(v) for v in rng.integers(200, 3001, classes)),
        output_tokens=tuple(float(v) for v in rng.integers(200, 3001, classes)),
        arrival_rate=tuple(float(v) for v in np.round(rng.uniform(0.25, 0.5, classes), 3)),
        patience_rate=tuple(0.1 for _ in range(classes)),
        alpha=float(np.round(rng.uniform(0.015, 0.02), 4)),
        beta=beta,
        gamma=float(np.round(rng.uniform(10, 50), 2)),
        batch_size=16,
        chunk_tokens=256.0,
        price_prefill=0.1,
        price_decode=0.2,
        gpus=gpus,
    )


def from_arrays(
    name: str,
    prompt_tokens: Sequence[float],
    output_tokens: Sequence[float],
    arrival_rate: Sequence[float],
    patience_rate: Sequence[float] | float,
    **constants: Any,
) -> Instance:
    """Build an instance from per-class arrays; ``constants`` are the scalar fields."""
    size = len(prompt_tokens)
    if isinstance(patience_rate, int | float):
        patience_rate = [float(patience_rate)] * size
    return Instance(
        name=name,
        classes=tuple(constants.pop("classes", [f"class{i}" for i in range(size)])),
        prompt_tokens=tuple(float(v) for v in prompt_tokens),
        output_tokens=tuple(float(v) for v in output_tokens),
        arrival_rate=tuple(float(v) for v in arrival_rate),
        patience_rate=tuple(float(v) for v in patience_rate),
        **constants,
    )
