"""Shared helpers for talking to highspy."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

_banner_lock = threading.Lock()
_banner_shown = False


@contextlib.contextmanager
def silence_stdout() -> Iterator[None]:
    """Send file descriptor 1 to the null device for the duration of the block.

    HiGHS prints its copyright banner from C++ straight to descriptor 1 when the first solver
    object of a process is created, which would corrupt the command line's JSON output. The
    version it shows is in every Result as ``solver_version``.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):
        yield
        return
    try:
        os.dup2(null, 1)
        os.close(null)
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def new_highs() -> Any:
    """A silent ``highspy.Highs`` object; its first-use banner is discarded."""
    global _banner_shown
    import highspy

    with _banner_lock:
        if _banner_shown:
            solver = highspy.Highs()
        else:
            with silence_stdout():
                solver = highspy.Highs()
            _banner_shown = True
    solver.setOptionValue("output_flag", False)
    return solver


def highs_version() -> str:

    solver = new_highs()
    return f"{solver.versionMajor()}.{solver.versionMinor()}.{solver.versionPatch()}"
