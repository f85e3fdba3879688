"""Exact methods against heuristics on the same instances, one validated row per answer."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gaplab.models.registry import ModelSpec, Outcome, run_exact, run_heuristic
from gaplab.solvers.result import SolveOptions

logger = logging.getLogger(__name__)

COLUMNS = (
    "model",
    "instance",
    "method",
    "kind",
    "status",
    "objective",
    "bound",
    "gap",
    "ratio",
    "seconds",
    "valid",
    "violations",
)
"""Columns every row has; extra rows from a model may add more."""

Progress = Callable[[str], None]


def compare_instance(
    spec: ModelSpec,
    name: str,
    instance: Any,
    backend: str,
    options: SolveOptions,
    *,
    plots_dir: Path | None = None,
    quick: bool = False,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Run every exact variant and heuristic of ``spec`` on one instance, then the extras.

    A method that raises is recorded as a row with status ``error`` and the message, so one
    failing method never hides the others.
    """
    outcomes: list[Outcome] = []
    for variant in spec.exact:
        if progress:
            progress(f"{spec.name} {name} exact:{variant}")

        def exact(variant: str = variant) -> Outcome:
            return run_exact(spec, instance, name, variant, backend, options)

        outcomes.append(_guarded(spec, name, f"exact:{variant}", "exact", exact))
    for heuristic in spec.heuristics:
        if progress:
            progress(f"{spec.name} {name} {heuristic}")

        def fast(heuristic: str = heuristic) -> Outcome:
            return run_heuristic(spec, instance, name, heuristic)

        outcomes.append(_guarded(spec, name, heuristic, "heuristic", fast))

    rows = [_row(outcome) for outcome in outcomes]
    add_ratios(rows, spec.sense, preferred=f"exact:{spec.exact_default}")
    if spec.extras is not None:
        if progress:
            progress(f"{spec.name} {name} extras")
        try:
            extra = spec.extras(instance, plots_dir, quick)
        except Exception as error:  # a model's extra analysis must not stop the comparison
            logger.exception("extras of %s failed on %s", spec.name, name)
            extra = [
                {"method": "extras", "kind": "extra", "status": "error", "violations": str(error)}
            ]
        for row in extra:
            full: dict[str, Any] = {column: None for column in COLUMNS}
            full.update({"model": spec.name, "instance": name, "kind": "extra"})
            full.update(row)
            rows.append(full)
    return rows


def compare_instances(
    spec: ModelSpec,
    named: Sequence[tuple[str, Any]],
    backend: str,
    options: SolveOptions,
    *,
    plots_dir: Path | None = None,
    quick: bool = False,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, instance in named:
        rows.extend(
            compare_instance(
                spec, name, instance, backend, options, plots_dir=plots_dir, quick=quick
            )
        )
    return rows


def _guarded(
    spec: ModelSpec, instance: str, method: str, kind: str, call: Callable[[], Outcome]
) -> Outcome:
    try:
        return call()
    except Exception as error:  # recorded in the table instead of aborting the run
        logger.exception("%s %s failed on %s", spec.name, method, instance)
        return Outcome(
            model=spec.name,
            instance=instance,
            method=method,
            kind=kind,
            objective=None,
            bound=None,
            seconds=0.0,
            valid=None,
            violations=[f"{type(error).__name__}: {error}"],
            status="error",
        )


def _row(outcome: Outcome) -> dict[str, Any]:
    row = outcome.row()
    row["gap"] = outcome.result.gap if outcome.result is not None else None
    row["ratio"] = None
    return row


def add_ratios(rows: list[dict[str, Any]], sense: str, preferred: str | None = None) -> None:
    """Set ``ratio`` = objective / reference on every row with an objective.

    The reference is the objective of the ``preferred`` exact method (the model's default
    variant, since other variants may solve a different problem, such as another pricing) when
    it returned a valid point, and otherwise the best valid exact objective of the instance.
    ``reference`` says whether that value is a proven optimum or only an incumbent.
    """
    exact = [r for r in rows if r["kind"] == "exact" and r["valid"] and r["objective"] is not None]
    if not exact:
        return
    chosen = [r for r in exact if r["method"] == preferred]
    if chosen:
        best = chosen[0]
    else:
        pick = min if sense == "min" else max
        best = pick(exact, key=lambda r: r["objective"])
    reference = best["objective"]
    proven = best["status"] == "optimal"
    for row in rows:
        value = row.get("objective")
        if value is None or reference is None:
            continue
        if reference == 0:
            row["ratio"] = 1.0 if value == 0 else math.inf
        else:
            row["ratio"] = value / reference
        row["reference"] = "optimal" if proven else "incumbent"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Plain-text table: model, instance, method, objective, bound, gap or ratio, time, valid."""
    header = (
        "model",
        "instance",
        "method",
        "status",
        "objective",
        "bound",
        "gap/ratio",
        "seconds",
        "valid",
    )
    lines = [header]
    for row in rows:
        if row.get("kind") == "extra" and row.get("objective") is None:
            continue
        if row.get("kind") == "exact":
            relation = _pct(row.get("gap"), "gap ")
        else:
            relation = _ratio(row.get("ratio"))
        lines.append(
            (
                str(row.get("model", "")),
                str(row.get("instance", ""))[:40],
                str(row.get("method", ""))[:28],
                str(row.get("status") or ""),
                _num(row.get("objective")),
                _num(row.get("bound")),
                relation,
                _num(row.get("seconds"), 3),
                {True: "yes", False: "NO", None: "-"}.get(row.get("valid"), str(row.get("valid"))),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def _num(value: Any, digits: int = 6) -> str:
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return str(number)
    return f"{number:.{digits}g}"


def _pct(value: Any, prefix: str) -> str:
    if value is None:
        return "-"
    return f"{prefix}{100 * float(value):.2f}%"


def _ratio(value: Any) -> str:
    if value is None:
        return "-"
    return f"x{float(value):.4f}"
