"""The command line contract: JSON fields, exit codes, errors on standard error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gaplab.experiments.milp_files import KNOWN_OPTIMA
from tests.conftest import require_data_file

JSON_FIELDS = {
    "model",
    "instance",
    "backend",
    "termination",
    "solution_status",
    "objective",
    "bound",
    "gap",
    "build_seconds",
    "solve_seconds",
    "valid",
}


def gaplab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gaplab", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_backends_lists_highs():
    done = gaplab("backends", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    highs = [row for row in rows if row["backend"] == "highs"]
    assert highs
    assert highs[0]["available"] is True
    assert "milp" in highs[0]["capabilities"]


@pytest.mark.parametrize("name", sorted(KNOWN_OPTIMA))
def test_solve_file_json_reaches_optimum(data_dir, name):
    path = require_data_file(data_dir, f"milp/{name}.mps")
    done = gaplab("solve-file", str(path), "--backend", "highs", "--time-limit", "60", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload.keys() >= JSON_FIELDS
    assert payload["termination"] == "optimal"
    assert payload["valid"] is True
    assert payload["objective"] == pytest.approx(KNOWN_OPTIMA[name], rel=1e-6, abs=1e-6)


def test_solve_file_time_limit_on_hard_instance(tmp_path):
    from gaplab.experiments.gap import build_gap, generate_gap

    path = (
        build_gap(generate_gap(400, 20, seed=3, slack=1.05)).compile().to_mps(tmp_path / "hard.mps")
    )
    done = gaplab("solve-file", str(path), "--time-limit", "0.3", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["termination"] == "time_limit"
    if payload["solution_status"] == "no_solution":
        assert payload["objective"] is None
    else:
        assert payload["solution_status"] == "feasible_point"
        assert payload["gap"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("solve-file", "MISSING.mps"), "does not exist"),
        (("solve-file", "BROKEN.mps"), "could not read"),
        (("solve-file", "GOOD.mps", "--backend", "nosuch"), "unknown backend 'nosuch'"),
        (("solve-file", "GOOD.mps", "--time-limit", "-2"), "positive number of seconds"),
        (("solve", "no-such-model", "GOOD.json"), "unknown model 'no-such-model'"),
        (("run", "--quick", "--data-dir", "MISSING_DIR"), "does not exist"),
        (("generate", "moe-assign", "--seed", "-5", "-o", "x.json"), "seed must be zero or"),
        (("generate", "moe-assign", "-o", "SUBDIR"), "is a folder"),
        (("generate", "moe-assign", "-o", "nowhere/x.json"), "does not exist"),
        (("solve", "moe-assign", "SUBDIR"), "is a folder"),
        (("solve-file", "GOOD.mps", "--mip-gap", "-1"), "relative gap must be zero or positive"),
    ],
)
def test_bad_input_exits_non_zero_with_message(tmp_path, args, message):
    from gaplab.modeling import Model

    (tmp_path / "BROKEN.mps").write_text("ROWS\n this is not mps\n")
    m = Model("good")
    x = m.continuous("x", upper=1)
    m.maximize(x)
    m.compile().to_mps(tmp_path / "GOOD.mps")
    (tmp_path / "SUBDIR").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())

    done = gaplab(*args, cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_generate_unknown_model_writes_nothing(tmp_path):
    target = tmp_path / "out.json"
    done = gaplab("generate", "no-such-model", "--seed", "1", "-o", str(target))
    assert done.returncode != 0
    assert "unknown model" in done.stderr
    assert not target.exists()


def test_unavailable_backend_is_one_line_error(tmp_path):
    from gaplab.solvers import get_backend

    missing = [
        name
        for name in ("pyomo:gurobi", "pyomo:glpk")
        if not get_backend(name).check_available().available
    ]
    if not missing:
        pytest.skip("every optional solver is installed here")
    path = require_good_mps(tmp_path)
    done = gaplab("solve-file", str(path), "--backend", missing[0])
    assert done.returncode == 2
    assert "is not available here" in done.stderr
    assert "Traceback" not in done.stderr


def test_written_files_follow_umask(tmp_path):
    import os
    import stat

    target = tmp_path / "gen.json"
    old = os.umask(0o022)
    try:
        done = gaplab("generate", "moe-assign", "--seed", "1", "-o", str(target))
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def require_good_mps(tmp_path: Path) -> Path:
    from gaplab.modeling import Model

    m = Model("good")
    x = m.continuous("x", upper=1)
    m.maximize(x)
    return m.compile().to_mps(tmp_path / "good.mps")
