"""Import llm-fluid inputs from real data: request classes from an Azure LLM inference trace and
GPU constants from a vidur per-operator profile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.cluster.vq import kmeans2

from gaplab.models.llm_fluid.instance import Instance, InstanceError, two_class_instance

logger = logging.getLogger(__name__)

TRACE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
PROFILE_OPERATORS = (
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
)
"""Per-layer operators summed into one layer's time; the embedding is added once per iteration."""


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    path = Path(path)
    try:
        return pd.read_csv(path)
    except FileNotFoundError as error:
        raise InstanceError(f"{what} file not found: {path}") from error
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InstanceError(f"cannot read {what} file {path} as CSV: {error}") from error


def read_trace(path: Path) -> pd.DataFrame:
    """Read an Azure-format trace and check its columns and values.

    Returns a frame with ``time`` (seconds from the first request), ``prompt`` and ``output``
    (tokens), one row per request.
    """
    frame = _read_csv(path, "trace")
    missing = [c for c in TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise InstanceError(
            f"trace {path} is missing the columns {missing}; an Azure LLM inference trace has "
            f"{list(TRACE_COLUMNS)}"
        )
    if frame.empty:
        raise InstanceError(f"trace {path} has no requests")
    stamps = pd.to_datetime(frame["TIMESTAMP"], errors="coerce")
    prompt = pd.to_numeric(frame["ContextTokens"], errors="coerce")
    output = pd.to_numeric(frame["GeneratedTokens"], errors="coerce")
    for name, column in (
        ("TIMESTAMP", stamps),
        ("ContextTokens", prompt),
        ("GeneratedTokens", output),
    ):
        bad = column.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InstanceError(
                f"trace {path}: invalid {name} value {frame[name].iloc[row]!r} "
                f"in data row {row + 1}"
            )
    if (prompt <= 0).any() or (output <= 0).any():
        raise InstanceError(f"trace {path}: token counts must be positive")
    seconds = (stamps - stamps.min()).dt.total_seconds()
    return pd.DataFrame(
        {"time": seconds, "prompt": prompt.astype(float), "output": output.astype(float)}
    )


def classes_from_trace(
    path: Path,
    k: int = 2,
    *,
    gpus: int = 1,
    patience_rate: float = 0.1,
    seed: int = 0,
    base: Instance | None = None,
) -> Instance:
    """Build request classes from an Azure-format trace by k-means on (log P, log D).

    Each class gets the mean prompt and output lengths of its cluster and the arrival rate
    ``count / (duration * gpus)`` per GPU, so a cluster of ``gpus`` GPUs receives the trace's own
    request rate. Patience is not in the data; every class gets ``patience_rate``. GPU constants
    and prices come from ``base`` (the two-class instance's Qwen-8B constants by default).
    """
    if int(k) != k or k < 1:
        raise InstanceError(f"k must be a positive number of classes, got {k!r}")
    if gpus < 1:
        raise InstanceError(f"gpus must be a positive integer, got {gpus!r}")
    trace = read_trace(path)
    if len(trace) < k:
        raise InstanceError(f"trace {path} has {len(trace)} requests, fewer than k = {k} classes")
    duration = float(trace["time"].max())
    if duration <= 0:
        raise InstanceError(f"trace {path} spans no time, so arrival rates are undefined")

    labels = _clusters(trace, k, seed)
    groups = trace.groupby(labels)
    summary = groups.agg(
        prompt=("prompt", "mean"), output=("output", "mean"), count=("prompt", "size")
    )
    logger.info("trace %s: %d requests over %.0f s in %d classes", path, len(trace), duration, k)

    base = base or two_class_instance()
    return replace(
        base,
        name=f"{Path(path).stem}-k{k}",
        classes=tuple(f"cluster{i}" for i in range(len(summary))),
        prompt_tokens=tuple(float(v) for v in summary["prompt"]),
        output_tokens=tuple(float(v) for v in summary["output"]),
        arrival_rate=tuple(float(c) / (duration * gpus) for c in summary["count"]),
        patience_rate=tuple(float(patience_rate) for _ in range(len(summary))),
        gpus=int(gpus),
    )


def _clusters(trace: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Return k-means labels on (log P, log D), renumbered by increasing mean prompt length."""
    _, labels = kmeans2(np.log(trace[["prompt", "output"]].to_numpy()), k, seed=seed, minit="++")
    order = trace.groupby(labels)["prompt"].mean().sort_values().index
    renumber = {int(old): new for new, old in enumerate(order)}
    return np.array([renumber[int(v)] for v in labels])


def exponential_fit(path: Path, k: int = 2, seed: int = 0) -> pd.DataFrame:
    """Compare each cluster's output lengths with an exponential law of the same mean.

    Returns per class the mean, the coefficient of variation (1 for an exponential law) and
    the Kolmogorov-Smirnov distance to the fitted exponential.
    """
    from scipy import stats

    trace = read_trace(path)
    labels = _clusters(trace, k, seed)
    rows = []
    for label in np.unique(labels):
        output = trace.loc[labels == label, "output"].to_numpy()
        mean = output.mean()
        rows.append(
            {
                "cluster": int(label),
                "requests": len(output),
                "mean_output": mean,
                "cv_output": output.std() / mean,
                "ks_distance": stats.kstest(output, "expon", args=(0, mean)).statistic,
            }
        )
    return pd.DataFrame(rows).set_index("cluster")


@dataclass(frozen=True)
class ProfileFit:
    """Hinge law ``c + a max(0, b - b0)`` (seconds) fitted to iteration time against tokens b."""

    c: float
    a: float
    b0: float
    r2: float
    points: int

    @property
    def alpha(self) -> float:
        """Mixed-iteration intercept ``c - a b0`` (seconds)."""
        return self.c - self.a * self.b0

    @property
    def beta(self) -> float:
        """Mixed-iteration slope (seconds per token)."""
        return self.a

    @property
    def gamma(self) -> float:
        """Decode speed of one stream on a GPU without a prefill, ``1 / c`` (tokens/s)."""
        return 1.0 / self.c


def fit_profile(path: Path, *, layers: int = 32, tensor_parallel: int = 1) -> ProfileFit:
    """Fit the hinge iteration-time law to a vidur per-operator profile (``mlp.csv`` format).

    The iteration time at b batch tokens is ``layers`` times the sum of the per-layer operator
    means plus the embedding once, converted from milliseconds to seconds. The breakpoint b0 is
    chosen among the measured token counts by least squares. Attention is not in the profile,
    so the fit covers only the token-linear part of an iteration.
    """
    frame = _read_csv(path, "profile")
    columns = [f"time_stats.{op}.mean" for op in PROFILE_OPERATORS]
    required = [*columns, "time_stats.emb.mean", "num_tokens", "num_tensor_parallel_workers"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InstanceError(f"profile {path} is missing the columns {missing}")
    frame = frame[frame["num_tensor_parallel_workers"] == tensor_parallel]
    if len(frame) < 3:
        raise InstanceError(
            f"profile {path} has {len(frame)} rows with num_tensor_parallel_workers = "
            f"{tensor_parallel}; at least 3 are needed for the fit"
        )
    per_token = frame.groupby("num_tokens")[[*columns, "time_stats.emb.mean"]].mean()
    tokens = per_token.index.to_numpy(dtype=float)
    milliseconds = layers * per_token[columns].sum(axis=1) + per_token["time_stats.emb.mean"]
    seconds = milliseconds.to_numpy() / 1e3
    if not np.isfinite(seconds).all():
        raise InstanceError(f"profile {path} has missing or non-numeric operator times")

    best: tuple[float, float, float, float] | None = None
    for b0 in tokens[:-2]:
        hinge = np.maximum(0.0, tokens - b0)
        design = np.column_stack([np.ones_like(tokens), hinge])
        (c, a), *_ = np.linalg.lstsq(design, seconds, rcond=None)
        if c <= 0 or a <= 0:
            continue
        residual = float(((design @ np.array([c, a]) - seconds) ** 2).sum())
        if best is None or residual < best[0]:
            best = (residual, float(c), float(a), float(b0))
    if best is None:
        raise InstanceError(f"profile {path}: no breakpoint gives a positive intercept and slope")
    residual, c, a, b0 = best
    total = float(((seconds - seconds.mean()) ** 2).sum())
    r2 = 1.0 - residual / total if total > 0 else 1.0
    logger.info("profile %s: c=%.4g s, a=%.4g s/token, b0=%.0f, R^2=%.4f", path, c, a, b0, r2)
    return ProfileFit(c=c, a=a, b0=b0, r2=r2, points=len(tokens))


def instance_from_profile(path: Path, base: Instance | None = None) -> Instance:
    """Return ``base`` (default: the two-class instance) with alpha, beta, gamma from a profile."""
    fit = fit_profile(path)
    base = base or two_class_instance()
    if fit.alpha <= 0:
        raise InstanceError(
            f"profile {path}: fitted alpha = {fit.alpha:.4g} s is not positive, so the mixed "
            "iteration time cannot be used"
        )
    return replace(
        base, name=f"{base.name}-{Path(path).stem}", alpha=fit.alpha, beta=fit.beta, gamma=fit.gamma
    )


def import_csv(path: Path) -> Instance:
    """Import a CSV file as an Azure trace or a vidur profile, whichever its header matches.

    A header with the trace columns :data:`TRACE_COLUMNS` gives request classes in the default
    number of clusters (:func:`classes_from_trace`). A header with the operator times of a vidur
    ``mlp.csv`` profile gives the two-class instance with fitted GPU constants
    (:func:`instance_from_profile`).
    """
    try:
        header = pd.read_csv(path, nrows=0).columns
    except FileNotFoundError as error:
        raise InstanceError(f"CSV file not found: {path}") from error
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InstanceError(f"cannot read {path} as CSV: {error}") from error
    if all(column in header for column in TRACE_COLUMNS):
        return classes_from_trace(path)
    if "num_tokens" in header and any(str(c).startswith("time_stats.") for c in header):
        return instance_from_profile(path)
    raise InstanceError(
        f"{path} is neither an Azure LLM inference trace (columns {list(TRACE_COLUMNS)}) nor a "
        "vidur mlp profile (time_stats.<operator>.mean and num_tokens columns)"
    )
