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
