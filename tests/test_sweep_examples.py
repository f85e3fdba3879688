"""The example sweep specs shipped in examples/sweeps stay valid as models change."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaplab.experiments.sweep_spec import load_spec

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_spec_loads(path):
    tasks = load_spec(path)
    assert len(tasks) > 0


def test_sweep_results_follow_umask(tmp_path):
    import os
    import stat

    from gaplab.experiments.sweep import solve_many

    old = os.umask(0o022)
    try:
        tasks = load_spec(EXAMPLES[0])[:2]
        solve_many(tasks, executor="local", out=tmp_path / "out", workers=1)
    finally:
        os.umask(old)
    files = sorted((tmp_path / "out").glob("*.parquet"))
    assert len(files) == 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
