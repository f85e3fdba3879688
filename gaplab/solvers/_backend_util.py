"""Helpers shared by the pyomo, PuLP and cvxpy backends."""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaplab.modeling.compiled import CompiledModel
from gaplab.solvers.result import SolutionStatus, Termination

LOG_TAIL_LINES = 30
"""Number of solver log lines kept in ``Result.log_tail``."""


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``text``."""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class CapturedOutput:
    """Text that a solver library wrote to standard output inside :func:`capture_stdout`."""

    text: str = ""


@contextlib.contextmanager
def capture_stdout() -> Iterator[CapturedOutput]:
    """Send file descriptor 1 to a temporary file for the duration of the block.

    Solver libraries print their logs from C code or from child processes straight to
    descriptor 1, which would corrupt the command line's JSON output, so the log is captured
    here and kept for the Result's log tail. Output of other threads during the block is
    captured too.
    """
    captured = CapturedOutput()
    python_output = io.StringIO()
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        # No real descriptor 1 (for example under some notebook kernels): Python-level only.
        with contextlib.redirect_stdout(python_output):
            yield captured
        captured.text = python_output.getvalue()
        return
    with tempfile.TemporaryFile(mode="w+b", prefix="gaplab-log-") as handle:
        os.dup2(handle.fileno(), 1)
        try:
            # Some bindings (Clarabel's, for one) print through Python's sys.stdout, which a
            # test runner or notebook may have pointed somewhere other than descriptor 1.
            with contextlib.redirect_stdout(python_output):
                yield captured
        finally:
            with contextlib.suppress(ValueError):
                sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        handle.seek(0)
        captured.text = handle.read().decode("utf-8", errors="replace") + python_output.getvalue()


@dataclass(frozen=True)
class RowSplit:
    """Row indices of a CompiledModel grouped by which of their bounds are finite."""

    equal: np.ndarray
    """Rows with ``row_lower == row_upper``."""
    lower: np.ndarray
    """Rows with a finite lower bound only, or the lower side of a ranged row."""
    upper: np.ndarray
    """Rows with a finite upper bound only, or the upper side of a ranged row."""
    ranged: np.ndarray
    """Rows with two different finite bounds; they also appear in ``lower`` and ``upper``."""


def split_rows(model: CompiledModel) -> RowSplit:
    """Group the rows of ``model`` for libraries that take one sense per constraint."""
    lo, up = model.row_lower, model.row_upper
    finite_lo = np.isfinite(lo)
    finite_up = np.isfinite(up)
    equal = finite_lo & finite_up & (lo == up)
    return RowSplit(
        equal=np.flatnonzero(equal),
        lower=np.flatnonzero(finite_lo & ~equal),
        upper=np.flatnonzero(finite_up & ~equal),
        ranged=np.flatnonzero(finite_lo & finite_up & ~equal),
    )


def solution_status_for(termination: Termination, has_point: bool) -> SolutionStatus:
    """Return the solution status for a termination and the presence of a point.

    A point that comes back with a limit is a feasible point, never a proof of optimality.
    :func:`gaplab.solvers.base.finish_result` later downgrades it when it violates the model.
    """
    if not has_point:
        return SolutionStatus.NO_SOLUTION
    if termination in (Termination.INFEASIBLE, Termination.ERROR, Termination.NUMERICAL_ERROR):
        return SolutionStatus.UNKNOWN
    return SolutionStatus.FEASIBLE_POINT


def cbc_log_bound(log: str) -> float | None:
    """Return the dual bound that CBC prints at the end of a MILP solve, or ``None``.

    CBC 2.10 prints ``Lower bound:`` when minimizing and ``Upper bound:`` under ``-max``, both
    in the sense of the objective in the file it read, with that file's objective constant.
    """
    match = re.search(r"^(?:Lower|Upper) bound:\s*(\S+)", log, flags=re.MULTILINE)
    if match is None:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_highs_options(options: dict[str, object]) -> None:
    """Raise ``ValueError`` for a HiGHS option that HiGHS rejects, before a library that ignores
    the rejection (PuLP, pyomo) hands it over."""
    if not options:
        return
    import highspy

    from gaplab.solvers._highs_util import new_highs

    solver = new_highs()
    for key, value in options.items():
        if solver.setOptionValue(key, value) == highspy.HighsStatus.kError:
            raise ValueError(
                f"HiGHS rejected option {key}={value!r}: unknown name or invalid value. "
                "See the HiGHS option list for valid names and ranges"
            )


def check_cbc_log(log: str) -> None:
    """Raise ``ValueError`` when CBC's log shows that it skipped an unknown option."""
    match = re.search(r"No match for (\S+)", log)
    if match is not None:
        raise ValueError(
            f"CBC rejected option {match.group(1)!r}: unknown name. Run the cbc executable "
            "with '?' for the list of its options"
        )


def bundled_cbc_path() -> str | None:
    """Path of the CBC executable shipped inside PuLP, or ``None`` when it is missing."""
    try:
        from pulp.apis import coin_api
    except ImportError:
        return None
    # PuLP 2 and 3 keep the path in this module constant. Reading it avoids PULP_CBC_CMD, which
    # PuLP 3 deprecates.
    path = Path(str(getattr(coin_api, "pulp_cbc_path", ""))).resolve()
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    return None
