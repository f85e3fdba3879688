"""Shared fixtures: the real data folder, which may be absent outside CI."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


def _data_root() -> Path | None:
    value = os.environ.get("GAPLAB_DATA")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder; skips when absent, fails when GAPLAB_REQUIRE_DATA=1."""
    root = _data_root()
    if root is None or not root.is_dir():
        reason = f"real data folder not found (GAPLAB_DATA={os.environ.get('GAPLAB_DATA')!r})"
        if os.environ.get("GAPLAB_REQUIRE_DATA") == "1":
            pytest.fail(reason + " but GAPLAB_REQUIRE_DATA=1")
        pytest.skip(reason)
    return root


def require_data_file(root: Path, relative: str) -> Path:
    """Path of one data file; skips or fails like ``data_dir`` when it is missing."""
    path = root / relative
    if not path.is_file():
        reason = f"data file {relative!r} not found under {root}"
        if os.environ.get("GAPLAB_REQUIRE_DATA") == "1":
            pytest.fail(reason + " but GAPLAB_REQUIRE_DATA=1")
        pytest.skip(reason)
    return path
