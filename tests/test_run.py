"""``gaplab run`` end to end: every model, validated answers, complete report files."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gaplab.experiments.run import SOLVER_CHECK_MODEL
from gaplab.models.registry import registered


def run_gaplab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gaplab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


def test_quick_run_covers_every_model(tmp_path):
    out = tmp_path / "results"
    started = time.perf_counter()
    done = run_gaplab("run", "--quick", "--out", str(out))
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]

    with (out / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    models = {row["model"] for row in rows}
    assert models == set(packaged_models()) | {SOLVER_CHECK_MODEL}
    invalid_exact = [r for r in rows if r["kind"] == "exact" and r["valid"] == "False"]
    assert invalid_exact == []
    for name in packaged_models():
        kinds = {r["kind"] for r in rows if r["model"] == name}
        assert "exact" in kinds, name
        assert "heuristic" in kinds, name

    report = (out / "report.md").read_text()
    for name in models:
        assert f"## {name}" in report
    plots = sorted(out.glob("*.png"))
    assert plots
    for plot in plots:
        assert plot.stat().st_size > 1000
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".partial-*"))
    # The quick run is meant to finish within a minute; allow slack for a loaded machine.
    assert seconds < 180


def packaged_models() -> list[str]:
    """Models from gaplab/models, leaving out ones that tests register for themselves."""
    return [
        name
        for name, spec in registered().items()
        if getattr(spec.load, "__module__", "").startswith("gaplab.models.")
    ]


def test_killed_run_leaves_no_partial_file(tmp_path):
    out = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "gaplab", "run", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    time.sleep(4.0)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    visible = [p for p in out.rglob("*") if p.is_file() and not _hidden(p, out)]
    assert visible == []

    # The next run removes the stale staging folder and publishes complete files.
    done = run_gaplab("run", "--quick", "--out", str(out), "--models", SOLVER_CHECK_MODEL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(out.glob(".partial-*"))
    assert (out / "results.csv").stat().st_size > 0


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def test_every_model_package_imports():
    from gaplab.models import import_errors

    registered()
    assert import_errors == {}
    assert len(packaged_models()) >= 7
