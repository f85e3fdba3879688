"""Summaries of sweep results: per model and method, how often valid, how far from the optimum.

The optimum of an instance is the best objective among the valid exact results of that instance
in the folder (smallest for ``min`` models, largest for ``max``). It is only a proven optimum
when the solver reached optimality; a time-limited exact run makes it the best known value.
"""

from __future__ import annotations

import logging
import math
import os

import pandas as pd

from gaplab.experiments.sweep_store import read_results

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = (
    "model",
    "method",
    "count",
    "errors",
    "valid",
    "mean_ratio",
    "worst_ratio",
    "mean_seconds",
    "max_seconds",
)


def add_ratios(rows: pd.DataFrame) -> pd.DataFrame:
    """Return ``rows`` with the columns ``optimum`` and ``ratio`` added.

    ``ratio`` is the objective over the optimum for ``min`` models and the optimum over the
    objective for ``max`` models, so 1 is optimal and larger is worse in both senses. It is
    missing for invalid or failed rows, for instances without a valid exact result, and where
    the optimum or the objective is zero or of opposite sign, since a ratio means nothing there.
    """
    frame = rows.copy()
    usable = (frame["state"] == "ok") & (frame["valid"] == True) & frame["objective"].notna()  # noqa: E712
    exact = frame[usable & (frame["kind"] == "exact")]

    optimum: dict[tuple[str, str], float] = {}
    for (model, instance), group in exact.groupby(["model", "instance"], sort=False):
        sense = group["sense"].iloc[0]
        values = group["objective"].astype(float)
        optimum[(str(model), str(instance))] = float(
            values.max() if sense == "max" else values.min()
        )

    optima = []
    ratios = []
    for model, instance, sense, objective, ok in zip(
        frame["model"], frame["instance"], frame["sense"], frame["objective"], usable, strict=True
    ):
        best = optimum.get((model, instance), math.nan)
        optima.append(best)
        ratios.append(_ratio(float(objective), best, sense) if ok else math.nan)
    frame["optimum"] = optima
    frame["ratio"] = ratios
    return frame


def _ratio(objective: float, optimum: float, sense: str) -> float:
    if math.isnan(optimum):
        return math.nan
    if objective == optimum:
        return 1.0
    if objective * optimum <= 0:
        return math.nan
    return optimum / objective if sense == "max" else objective / optimum


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Aggregate result rows per model and method.

    Columns: ``count`` (tasks), ``errors`` (tasks that raised, crashed or timed out), ``valid``
    (tasks whose solution passed the validator), ``mean_ratio`` and ``worst_ratio`` to the
    optimum (see :func:`add_ratios`), ``mean_seconds`` and ``max_seconds`` of the method's own
    time over the tasks that finished.
    """
    if rows.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    frame = add_ratios(rows)
    records = []
    for (model, method), group in frame.groupby(["model", "method"], sort=True):
        ratio = group["ratio"].dropna()
        seconds = group["seconds"].dropna()
        records.append(
            {
                "model": model,
                "method": method,
                "count": len(group),
                "errors": int((group["state"] == "error").sum()),
                "valid": int((group["valid"] == True).sum()),  # noqa: E712
                "mean_ratio": float(ratio.mean()) if len(ratio) else math.nan,
                "worst_ratio": float(ratio.max()) if len(ratio) else math.nan,
                "mean_seconds": float(seconds.mean()) if len(seconds) else math.nan,
                "max_seconds": float(seconds.max()) if len(seconds) else math.nan,
            }
        )
    return pd.DataFrame.from_records(records, columns=list(SUMMARY_COLUMNS))


def summarize_folder(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a sweep folder and aggregate it with :func:`summarize`."""
    return summarize(read_results(folder))


def format_summary(table: pd.DataFrame) -> str:
    """Render a summary table as aligned plain text; missing values print as ``-``."""
    if table.empty:
        return "no results"
    text = table.copy()
    for column in ("mean_ratio", "worst_ratio"):
        text[column] = text[column].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    for column in ("mean_seconds", "max_seconds"):
        text[column] = text[column].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}")
    return text.to_string(index=False)
