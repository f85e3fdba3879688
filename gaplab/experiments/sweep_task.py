"""One task of a sweep: its small description, its id, and how a worker runs it.

A :class:`Task` is plain data (strings, numbers and tuples), so it pickles in a few hundred bytes
and every worker builds the instance and the model itself. :func:`run_task` returns one flat
result row; solver objects and solutions never leave the worker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import logging
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ROW_COLUMNS: dict[str, type] = {
    "task_id": str,
    "model": str,
    "instance": str,
    "seed": int,
    "size": str,
    "params": str,
    "instance_file": str,
    "method": str,
    "kind": str,
    "backend": str,
    "options": str,
    "time_limit": float,
    "sense": str,
    "state": str,
    "status": str,
    "objective": float,
    "bound": float,
    "valid": bool,
    "violations": str,
    "seconds": float,
    "wall_seconds": float,
    "error": str,
    "worker": str,
    "finished_at": str,
}
"""Columns of a result row and their Python types; every column may be missing (``None``).

``state`` is ``ok`` when the method ran to its end, whatever the solver's termination (time limit
and infeasible included) unless that termination is ``error``. It is ``error`` when the task
raised, crashed its worker, ran past its deadline or the solver failed, and the ``error`` column
then contains the reason. ``status`` is the solver's termination, or ``heuristic``. ``seconds``
is the method's own time and ``wall_seconds`` the whole task, with instance generation and
validation."""

TIMING_COLUMNS = ("seconds", "wall_seconds", "worker", "finished_at")
"""Columns that differ between two runs of the same task; the others are reproducible."""


@dataclass(frozen=True)
class Task:
    """The description of one solve: an instance, a method and a time limit.

    ``params`` and ``options`` are sorted ``(name, value)`` pairs with JSON values. For an
    instance file, ``instance_file`` is the absolute path that workers open and ``digest`` the
    SHA-256 of its content. The task id uses the digest and ``instance`` but not the path, so
    moving a folder of instances keeps its finished results.
    """

    model: str
    instance: str
    """Readable instance name, unique within the model: generator settings or a file path."""
    method: str
    """Method label: ``exact:<variant>`` (with the backend and options when not the defaults)
    or the heuristic name, unless the spec gives a label."""
    kind: str
    """``exact`` or ``heuristic``."""
    name: str
    """Exact variant or heuristic name, as the model registers it."""
    time_limit: float
    """Solver time limit in seconds; the task is killed at ``time_limit + grace``."""
    seed: int | None = None
    size: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    instance_file: str | None = None
    digest: str | None = None
    backend: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    imports: tuple[str, ...] = ()
    """Modules that workers import before looking up the model, to register models that live
    outside ``gaplab.models``."""
    grace: float = field(default=10.0, compare=False)
    """Seconds past ``time_limit`` after which the task counts as hung. Not part of the id."""

    def __post_init__(self) -> None:
        if self.kind not in ("exact", "heuristic"):
            raise ValueError(f"task kind must be 'exact' or 'heuristic', got {self.kind!r}")
        if (self.instance_file is None) == (self.seed is None):
            raise ValueError(
                f"task for instance {self.instance!r} needs either a seed or an instance file"
            )

    @property
    def deadline_seconds(self) -> float:
        """Wall seconds after which the task is treated as hung."""
        return self.time_limit + self.grace

    @property
    def task_id(self) -> str:
        """A stable id: the first 24 hex digits of the SHA-256 of the task's description."""
        described = asdict(self)
        del described["instance_file"], described["grace"]
        text = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def base_row(task: Task) -> dict[str, Any]:
    """Return a row with every column, filled from the task's description alone."""
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update(
        task_id=task.task_id,
        model=task.model,
        instance=task.instance,
        seed=task.seed,
        size=task.size,
        params=json.dumps(dict(task.params), sort_keys=True),
        instance_file=task.instance_file,
        method=task.method,
        kind=task.kind,
        backend=task.backend,
        options=json.dumps(dict(task.options), sort_keys=True),
        time_limit=task.time_limit,
    )
    return row


def error_row(task: Task, reason: str, *, wall_seconds: float | None = None) -> dict[str, Any]:
    """Return the row of a task that failed for ``reason``."""
    row = base_row(task)
    row.update(
        state="error",
        error=reason,
        wall_seconds=wall_seconds,
        finished_at=_now(),
    )
    return row


def run_task(task: Task) -> dict[str, Any]:
    """Build the task's instance, run its method and return the result row.

    Every ``Exception`` raised by the task becomes an error row, so a worker fails only when its
    process dies or is interrupted.
    """
    started = time.perf_counter()
    try:
        row = _run(task)
    except Exception as exc:  # noqa: BLE001 - any failure of the task is data for the sweep
        logger.info("task %s (%s on %s) failed: %s", task.task_id, task.method, task.instance, exc)
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        place = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
        row = error_row(task, f"{type(exc).__name__}: {exc}{place}")
    row["wall_seconds"] = time.perf_counter() - started
    row["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return row


def _run(task: Task) -> dict[str, Any]:
    from gaplab.models.registry import get_model, run_exact, run_heuristic
    from gaplab.solvers.result import SolveOptions

    for module in task.imports:
        importlib.import_module(module)
    spec = get_model(task.model)

    if task.instance_file is not None:
        instance = spec.load(Path(task.instance_file))
    else:
        instance = spec.generate(seed=task.seed, size=task.size, **dict(task.params))

    if task.kind == "exact":
        options = SolveOptions(time_limit=task.time_limit, **dict(task.options))
        assert task.backend is not None
        outcome = run_exact(spec, instance, task.instance, task.name, task.backend, options)
    else:
        outcome = run_heuristic(spec, instance, task.instance, task.name)

    row = base_row(task)
    produced = outcome.row()
    # A solver fault comes back as a Result with termination "error"; it is a failed task.
    solver_error = None
    if outcome.result is not None and produced["status"] == "error":
        solver_error = outcome.result.message or "the solver failed without a message"
    row.update(
        sense=spec.sense,
        state="ok" if solver_error is None else "error",
        error=solver_error,
        status=produced["status"],
        objective=produced["objective"],
        bound=produced["bound"],
        valid=produced["valid"],
        violations=produced["violations"] or None,
        seconds=produced["seconds"],
        finished_at=_now(),
    )
    return row


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
