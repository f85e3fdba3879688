"""Report files of a run: CSV, Markdown and plots, each written atomically."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaplab.experiments.compare import COLUMNS, format_table
from gaplab.modeling.compiled import atomic_write_text, replace_atomically

logger = logging.getLogger(__name__)


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The standard columns first, then any extra ones in first-seen order."""
    columns = list(COLUMNS) + ["reference"]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` as CSV through a temporary file and a rename."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_of(rows), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return atomic_write_text(Path(path), buffer.getvalue())


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return value


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and method: count, invalid count, mean and worst ratio to the reference."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("kind") in ("exact", "heuristic"):
            groups[(row["model"], row["method"])].append(row)
    summary = []
    for (model, method), members in groups.items():
        ratios = [
            r["ratio"] for r in members if r.get("ratio") is not None and math.isfinite(r["ratio"])
        ]
        summary.append(
            {
                "model": model,
                "method": method,
                "kind": members[0]["kind"],
                "runs": len(members),
                "invalid": sum(1 for r in members if r.get("valid") is False),
                "errors": sum(1 for r in members if r.get("status") == "error"),
                "mean_ratio": sum(ratios) / len(ratios) if ratios else None,
                "worst_ratio": None,
                "mean_seconds": sum(float(r.get("seconds") or 0) for r in members) / len(members),
            }
        )
        if ratios:
            summary[-1]["worst_ratio"] = max(ratios, key=lambda v: abs(v - 1.0))
    return summary


def format_summary(summary: Sequence[dict[str, Any]]) -> str:
    """Plain-text table of :func:`summarize`: how each method compares with the reference."""
    header = ("model", "method", "kind", "runs", "invalid", "mean ratio", "worst ratio", "mean s")
    lines = [header]
    for entry in summary:
        lines.append(
            (
                entry["model"],
                entry["method"][:28],
                entry["kind"],
                str(entry["runs"]),
                str(entry["invalid"]),
                _num(entry["mean_ratio"]),
                _num(entry["worst_ratio"]),
                f"{entry['mean_seconds']:.4f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def write_markdown(
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    title: str,
    notes: Sequence[str] = (),
    images: dict[str, list[str]] | None = None,
) -> Path:
    """Write the Markdown report with one section per model."""
    images = images or {}
    lines = [f"# {title}", ""]
    lines.extend(notes)
    if notes:
        lines.append("")
    summary = summarize(rows)
    models = list(dict.fromkeys(row["model"] for row in rows))
    for model in models:
        lines.append(f"## {model}")
        lines.append("")
        lines.append(
            "| method | kind | runs | invalid | errors | mean ratio | worst ratio | mean s |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for entry in summary:
            if entry["model"] != model:
                continue
            lines.append(
                f"| {entry['method']} | {entry['kind']} | {entry['runs']} | {entry['invalid']} | "
                f"{entry['errors']} | {_num(entry['mean_ratio'])} | {_num(entry['worst_ratio'])} | "
                f"{entry['mean_seconds']:.4f} |"
            )
        lines.append("")
        lines.append("```")
        lines.append(format_table([r for r in rows if r["model"] == model]))
        lines.append("```")
        lines.append("")
        for image in images.get(model, []):
            lines.append(f"![{model}]({image})")
            lines.append("")
    return atomic_write_text(Path(path), "\n".join(lines) + "\n")


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def plot_ratios(rows: Sequence[dict[str, Any]], model: str, path: Path) -> Path | None:
    """Bar chart of each method's mean objective over the reference for one model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [e for e in summarize(rows) if e["model"] == model and e["mean_ratio"] is not None]
    if not entries:
        return None
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(entries) + 2), 3.2))
    names = [e["method"] for e in entries]
    values = [e["mean_ratio"] for e in entries]
    colors = ["#4c72b0" if e["kind"] == "exact" else "#dd8452" for e in entries]
    ax.bar(range(len(entries)), values, color=colors)
    ax.axhline(1.0, color="black", linewidth=0.8)
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        # One diverged method would flatten every other bar on a linear axis.
        ax.set_yscale("log")
    ax.set_xticks(range(len(entries)))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("objective / exact reference")
    ax.set_title(f"{model}: heuristics against the exact reference")
    fig.tight_layout()
    saved = save_figure(fig, path)
    plt.close(fig)
    return saved


def save_figure(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure as PNG through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png")
        replace_atomically(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
