"""Running sweep tasks on executors that hand back futures: concurrent.futures and Dask.

Both go through :func:`drive_futures`, which keeps up to twice as many tasks submitted as the
executor has slots, so the next task is already waiting when one finishes. A task's deadline
clock starts when the executor reports it running (``Future.running()`` for concurrent.futures,
the scheduler's processing list for Dask) and restarts if it goes back to waiting, as a Dask task
does when its worker dies.

A task past its deadline is abandoned: its future is cancelled and its row records the timeout.
A future cannot stop a running thread. Unless the runner can end the worker that runs the task
(on Dask clusters that the sweep started itself), the slot stays busy, and the runner counts one
slot fewer from then on.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gaplab.experiments.sweep_task import Task, error_row, run_task

logger = logging.getLogger(__name__)

RowCallback = Callable[[dict[str, Any]], None]


class Runner(Protocol):
    """Something that runs sweep tasks and reports one row per task."""

    def run(self, tasks: Sequence[Task], on_row: RowCallback) -> None:
        """Run ``tasks`` and call ``on_row`` with each task's row, in this thread."""
        ...


class ExecutorBrokenError(RuntimeError):
    """The executor can run no more tasks; tasks without a row stay unfinished."""


class _Backend(Protocol):
    def submit(self, task: Task) -> Any: ...

    def slots(self) -> int: ...

    def is_running(self, future: Any) -> bool: ...

    def row_of(self, future: Any, task: Task) -> dict[str, Any] | None:
        """Return the task's row, or None when the future went back to pending."""
        ...

    def abandon(self, future: Any, task: Task) -> bool:
        """Cancel a hung task; return True when its slot is free again."""
        ...


@dataclass
class _Pending:
    task: Task
    future: Any
    started_at: float | None = None


def drive_futures(backend: _Backend, tasks: Sequence[Task], on_row: RowCallback) -> None:
    """Submit ``tasks`` through ``backend`` in a sliding window and report every row."""
    todo = list(reversed(tasks))
    pending: dict[int, _Pending] = {}  # insertion order is submission order
    finished: queue.Queue[int] = queue.Queue()
    lost_slots = 0
    serial = 0
    try:
        while todo or pending:
            slots = backend.slots() - lost_slots
            if slots < 1 and backend.slots() > 0:
                raise ExecutorBrokenError(
                    f"every slot of the executor is held by a task that ran past its deadline "
                    f"({lost_slots} lost); {len(todo) + len(pending)} tasks were not run"
                )
            slots = max(slots, 1)

            while todo and len(pending) < 2 * slots:
                task = todo.pop()
                future = backend.submit(task)
                serial += 1
                key = serial
                pending[key] = _Pending(task, future)
                future.add_done_callback(lambda _, key=key: finished.put(key))

            now = time.monotonic()
            for item in pending.values():
                if backend.is_running(item.future):
                    if item.started_at is None:
                        item.started_at = now
                elif not item.future.done():
                    item.started_at = None

            try:
                key = finished.get(timeout=_wait_seconds(pending))
            except queue.Empty:
                pass
            else:
                keys = [key]
                while not finished.empty():
                    keys.append(finished.get_nowait())
                for key in keys:
                    _collect(backend, pending, key, on_row, finished)

            lost_slots += _abandon_overdue(backend, pending, on_row)
    finally:
        for item in pending.values():
            item.future.cancel()


def _wait_seconds(pending: dict[int, _Pending]) -> float:
    now = time.monotonic()
    wait = 1.0
    for item in pending.values():
        if item.started_at is not None:
            wait = min(wait, item.started_at + item.task.deadline_seconds - now)
    return max(wait, 0.001)


def _collect(
    backend: _Backend,
    pending: dict[int, _Pending],
    key: int,
    on_row: RowCallback,
    finished: queue.Queue[int],
) -> None:
    item = pending.get(key)
    if item is None:
        return  # abandoned earlier; its late callback carries nothing to record
    row = backend.row_of(item.future, item.task)
    if row is None:
        # The result was lost with its worker and the task runs again: wait for it anew.
        item.future.add_done_callback(lambda _: finished.put(key))
        return
    del pending[key]
    on_row(row)


def _abandon_overdue(backend: _Backend, pending: dict[int, _Pending], on_row: RowCallback) -> int:
    lost = 0
    now = time.monotonic()
    for key, item in list(pending.items()):
        if item.started_at is None or now - item.started_at <= item.task.deadline_seconds:
            continue
        del pending[key]
        freed = backend.abandon(item.future, item.task)
        lost += 0 if freed else 1
        action = "task cancelled, slot freed" if freed else "task abandoned, its slot stays busy"
        logger.warning("task %s ran past its deadline; %s", item.task.task_id, action)
        on_row(
            error_row(
                item.task,
                f"timed out: still running {now - item.started_at:.1f} s after it started "
                f"(time limit {item.task.time_limit:g} s plus grace {item.task.grace:g} s); "
                f"{action}",
                wall_seconds=now - item.started_at,
            )
        )
    return lost


class FuturesRunner:
    """Runs sweep tasks on any :class:`concurrent.futures.Executor`.

    A process pool runs tasks in worker processes, but a thread pool runs them in this process,
    so there a task that calls ``os._exit`` ends the sweep too, and a hung task keeps its thread
    (and the interpreter, at exit) waiting. When a worker of a process pool
    dies, the whole pool breaks and cannot tell which task caused it. The pending tasks then
    keep no row, and :class:`ExecutorBrokenError` tells the caller to rerun. The built-in
    ``local`` executor (:class:`~.sweep_local.LocalPool`) has none of these limits.

    Parameters
    ----------
    executor
        The executor; the caller owns it and shuts it down.
    slots
        Tasks the executor runs at once; read from the executor's ``_max_workers`` when it has
        one, the CPU count otherwise.
    """

    def __init__(self, executor: cf.Executor, slots: int | None = None) -> None:
        self.executor = executor
        found = getattr(executor, "_max_workers", None)
        self._slots = slots or (found if isinstance(found, int) else None) or os.cpu_count() or 1

    def run(self, tasks: Sequence[Task], on_row: RowCallback) -> None:
        try:
            drive_futures(self, tasks, on_row)
        except cf.BrokenExecutor as exc:
            raise ExecutorBrokenError(
                f"the executor broke ({exc}); tasks that were running keep no row, so rerun the "
                "sweep to finish them, or use the local executor, which replaces dead workers"
            ) from exc

    def submit(self, task: Task) -> cf.Future[dict[str, Any]]:
        return self.executor.submit(run_task, task)

    def slots(self) -> int:
        return self._slots

    def is_running(self, future: Any) -> bool:
        return bool(future.running())

    def row_of(self, future: Any, task: Task) -> dict[str, Any] | None:
        try:
            row: dict[str, Any] = future.result()
        except cf.BrokenExecutor:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the task's error row
            return error_row(task, f"{type(exc).__name__}: {exc}")
        return row

    def abandon(self, future: Any, task: Task) -> bool:
        future.cancel()
        return False
