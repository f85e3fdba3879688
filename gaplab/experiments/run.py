"""``gaplab run``: every model's default suite, every method, validated, with a report.

All files go first to a hidden staging folder inside the output folder and are renamed into
place one by one at the end, so an interrupted run leaves complete files or none.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaplab.experiments.compare import add_ratios, compare_instance
from gaplab.experiments.gap import build_gap, generate_gap, greedy_gap
from gaplab.experiments.milp_files import KNOWN_OPTIMA, milp_files
from gaplab.experiments.report import plot_ratios, write_csv, write_markdown
from gaplab.solvers.result import SolveOptions

logger = logging.getLogger(__name__)

DEFAULT_TIME_LIMIT = 10.0
"""Seconds per exact solve in the default run."""
QUICK_TIME_LIMIT = 3.0
"""Seconds per exact solve with ``--quick``."""
SOLVER_CHECK_MODEL = "solver-check"
"""Name of the run's own section: a model defined in code and the standard MPS files."""

Progress = Callable[[int, int, str], None]


@dataclass
class RunSummary:
    rows: list[dict[str, Any]]
    files: list[Path]
    seconds: float
    invalid_exact: int
    invalid_heuristic: int
    errors: int
    models: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no exact method returned an invalid answer."""
        return self.invalid_exact == 0


def run_all(
    out_dir: Path,
    *,
    quick: bool = False,
    data_dir: Path | None = None,
    time_limit: float | None = None,
    models: Sequence[str] | None = None,
    progress: Progress | None = None,
    backend: str = "highs",
) -> RunSummary:
    """Solve every registered model's suite with exact methods and heuristics, then report."""
    from gaplab.models.registry import registered

    started = time.perf_counter()
    specs = registered()
    if models is not None:
        unknown = [name for name in models if name not in specs and name != SOLVER_CHECK_MODEL]
        if unknown:
            raise ValueError(
                f"unknown models {unknown}; known: {', '.join(sorted(specs))}, {SOLVER_CHECK_MODEL}"
            )
        specs = {name: spec for name, spec in specs.items() if name in models}
    limit = time_limit or (QUICK_TIME_LIMIT if quick else DEFAULT_TIME_LIMIT)
    options = SolveOptions(time_limit=limit, threads=1)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=out_dir))
    try:
        suites: list[tuple[Any, list[Any], str]] = []
        for name in sorted(specs):
            spec = specs[name]
            try:
                suite = spec.suite(quick, data_dir)
            except Exception as error:  # one broken suite must not hide the others
                logger.exception("suite of %s failed", name)
                suite = []
                suites.append((spec, [], f"{type(error).__name__}: {error}"))
                continue
            suites.append((spec, suite, ""))
        total = sum(len(s) for _, s, _ in suites) + 1
        done = 0
        rows: list[dict[str, Any]] = []

        if models is None or SOLVER_CHECK_MODEL in models:
            if progress:
                progress(done, total, SOLVER_CHECK_MODEL)
            rows.extend(solver_check(quick, data_dir, options))
            done += 1

        for spec, suite, failure in suites:
            if failure:
                rows.append(
                    {
                        "model": spec.name,
                        "instance": "(suite)",
                        "method": "suite",
                        "kind": "exact",
                        "status": "error",
                        "valid": None,
                        "violations": failure,
                    }
                )
            for item in suite:

                def step(message: str, _done: int = done) -> None:
                    if progress:
                        progress(_done, total, message)

                rows.extend(
                    compare_instance(
                        spec,
                        item.name,
                        item.instance,
                        backend,
                        options,
                        plots_dir=staging,
                        quick=quick,
                        progress=step,
                    )
                )
                done += 1
        if progress:
            progress(total, total, "writing report")

        _write_outputs(rows, staging, quick=quick, data_dir=data_dir, limit=limit)
        published = _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    return RunSummary(
        rows=rows,
        files=published,
        seconds=time.perf_counter() - started,
        invalid_exact=sum(1 for r in rows if r.get("kind") == "exact" and r.get("valid") is False),
        invalid_heuristic=sum(
            1 for r in rows if r.get("kind") == "heuristic" and r.get("valid") is False
        ),
        errors=sum(1 for r in rows if r.get("status") == "error"),
        models=list(dict.fromkeys(r["model"] for r in rows)),
    )


def _remove_stale_staging(out_dir: Path) -> None:
    for stale in out_dir.glob(".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _write_outputs(
    rows: list[dict[str, Any]], staging: Path, *, quick: bool, data_dir: Path | None, limit: float
) -> None:
    """Write the CSV, the ratio plots and the Markdown report into ``staging``."""
    write_csv(rows, staging / "results.csv")
    images: dict[str, list[str]] = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        plot_ratios(rows, model, staging / f"{model}-ratios.png")
        own = sorted(p.name for p in staging.glob(f"{model}*.png"))
        images[model] = own
    notes = [
        f"Suite: {'quick' if quick else 'default'}; time limit {limit:g} s per exact solve; "
        f"real data: {data_dir if data_dir else 'not used'}.",
        "`ratio` is a method's objective over the reference of the same instance: the "
        "model's default exact variant when it returned a valid point, otherwise the best "
        "valid exact objective. `gap` is the solver's relative gap between incumbent and "
        "bound.",
    ]
    write_markdown(rows, staging / "report.md", title="gaplab run", notes=notes, images=images)


def _publish(staging: Path, out_dir: Path) -> list[Path]:
    """Rename every staged file into ``out_dir``; each rename is atomic."""
    published = []
    for path in sorted(staging.rglob("*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        target = out_dir / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        published.append(target)
    return published


# ---------------------------------------------------------------------- solver check


def solver_check(quick: bool, data_dir: Path | None, options: SolveOptions) -> list[dict[str, Any]]:
    """A generalized assignment model defined in code through every available LP/MILP backend,
    its regret-greedy heuristic, and, with real data, each standard MPS file on HiGHS."""
    from gaplab.solvers import get_backend
    from gaplab.solvers.base import Capability
    from gaplab.solvers.registry import backends_with

    rows: list[dict[str, Any]] = []
    items, machines = (30, 5) if quick else (60, 8)
    data = generate_gap(items, machines, seed=7)
    compiled = build_gap(data, name="gap").compile()
    instance = f"gap-{items}x{machines}"
    names = ["highs"] + [b for b in backends_with(Capability.MILP) if b != "highs"]
    if quick:
        names = names[:2]
    for name in names:
        result = get_backend(name).solve(compiled, options)
        rows.append(_result_row(instance, name, result))

    started = time.perf_counter()
    assignment = greedy_gap(data)
    seconds = time.perf_counter() - started
    row: dict[str, Any] = {
        "model": SOLVER_CHECK_MODEL,
        "instance": instance,
        "method": "regret-greedy",
        "kind": "heuristic",
        "status": "heuristic" if assignment is not None else "no_solution",
        "objective": None,
        "bound": None,
        "seconds": seconds,
        "valid": None,
        "violations": "",
    }
    if assignment is not None:
        import numpy as np

        x = np.zeros((items, machines))
        x[np.arange(items), assignment] = 1.0
        flat = x.ravel()
        violation = compiled.max_violation(flat)
        row["objective"] = compiled.objective_value(flat)
        row["valid"] = violation <= 1e-9
        if not row["valid"]:
            row["violations"] = f"max violation {violation:.3g}"
    rows.append(row)
    add_ratios(rows, "min")

    if data_dir is not None:
        from gaplab.modeling import read_model

        for path in milp_files(data_dir):
            model = read_model(path)
            result = get_backend("highs").solve(model, options)
            file_row = _result_row(path.stem, "highs", result)
            known = KNOWN_OPTIMA.get(path.stem)
            if known is not None and file_row["objective"] is not None:
                file_row["reference"] = "published optimum"
                file_row["ratio"] = (
                    file_row["objective"] / known
                    if known != 0
                    else (1.0 if abs(file_row["objective"]) < 1e-9 else math.inf)
                )
                agrees = abs(file_row["objective"] - known) <= 1e-6 * max(1.0, abs(known))
                if result.termination.value == "optimal" and not agrees:
                    file_row["valid"] = False
                    file_row["violations"] = f"objective differs from the published optimum {known}"
            rows.append(file_row)
    return rows


def _result_row(instance: str, method: str, result: Any) -> dict[str, Any]:
    has_point = result.x is not None
    return {
        "model": SOLVER_CHECK_MODEL,
        "instance": instance,
        "method": method,
        "kind": "exact",
        "status": result.termination.value,
        "objective": result.objective,
        "bound": result.bound,
        "gap": result.gap,
        "ratio": None,
        "seconds": result.build_seconds + result.solve_seconds,
        "valid": (result.solution_status.value == "feasible_point") if has_point else None,
        "violations": result.message,
    }
