"""The ``local`` sweep executor: worker processes started with the spawn method.

Each worker runs one task at a time and talks to the parent over its own pipe, so the parent
always tracks which task each worker runs. That is what lets the pool turn a dead worker into an
error row for exactly the task it was running, and kill a worker whose task runs past its
deadline; :class:`concurrent.futures.ProcessPoolExecutor` can do neither, because one dead worker
breaks the whole pool. Dead and killed workers are replaced and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from gaplab.experiments.sweep_task import Task, error_row

logger = logging.getLogger(__name__)

RowCallback = Callable[[dict[str, Any]], None]

MAX_START_FAILURES = 3
"""Workers that die before reporting ready, in a row, after which the pool gives up."""


class WorkerStartError(RuntimeError):
    """Worker processes of the local pool cannot start."""


class _Worker:
    def __init__(self, context: Any) -> None:
        parent_end, child_end = context.Pipe(duplex=True)
        self.conn = parent_end
        self.process = context.Process(target=_serve, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()
        self.spawned_at = time.monotonic()
        self.ready = False
        self.task: Task | None = None
        self.started_at = 0.0

    def assign(self, task: Task) -> None:
        self.conn.send(task)
        self.task = task
        self.started_at = time.monotonic()

    def stop(self, timeout: float) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(timeout)
        self.kill()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)
        self.conn.close()


def _serve(conn: mpc.Connection) -> None:
    """Run tasks received on ``conn`` until the parent sends ``None`` or goes away."""
    # Ctrl-C reaches every process of the terminal's group. The parent handles it and stops
    # the workers, so a worker ignores it instead of printing a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Importing the models before reporting ready keeps the import time out of the first
    # task's deadline.
    import gaplab.models  # noqa: F401
    from gaplab.experiments.sweep_task import run_task

    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(("row", run_task(task)))


class LocalPool:
    """A pool of spawned worker processes that runs sweep tasks and survives their failures.

    Use it as a context manager to keep the workers warm across several sweeps; otherwise
    :func:`~gaplab.experiments.sweep.solve_many` starts one and closes it at the end. As with
    any spawn-based pool, a script that starts one needs an ``if __name__ == "__main__":``
    guard.

    Parameters
    ----------
    workers
        Number of worker processes; the machine's CPU count when ``None``. Each task requests one
        solver thread, so one worker per core keeps the cores busy without oversubscribing
        them.
    start_timeout
        Seconds a new worker may take to import gaplab and report ready.
    """

    def __init__(self, workers: int | None = None, *, start_timeout: float = 120.0) -> None:
        size = workers if workers is not None else (os.cpu_count() or 1)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.size = size
        self.start_timeout = start_timeout
        self._context = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._start_failures = 0

    def __enter__(self) -> LocalPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def start(self) -> None:
        """Start the missing workers; they import gaplab in the background."""
        while len(self._workers) < self.size:
            self._workers.append(_Worker(self._context))

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every worker has reported ready (used by benchmarks to time warm runs)."""
        self.start()
        limit = time.monotonic() + (timeout if timeout is not None else self.start_timeout)
        while not all(w.ready for w in self._workers):
            if time.monotonic() > limit:
                raise WorkerStartError(f"local workers not ready after {self.start_timeout} s")
            self._poll([w for w in self._workers if not w.ready], 0.5, lambda row: None)

    def close(self) -> None:
        """Stop every worker, killing those that do not exit within a few seconds."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop(timeout=5.0)

    def run(self, tasks: Sequence[Task], on_row: RowCallback) -> None:
        """Run ``tasks`` and call ``on_row`` in this process with each task's row, in any order.

        A task whose worker dies, or that runs past ``task.deadline_seconds``, gets an error row
        and its worker is replaced.
        """
        self.start()
        queue = deque(tasks)
        try:
            while queue or any(w.task is not None for w in self._workers):
                for worker in list(self._workers):
                    if queue and worker.ready and worker.task is None:
                        task = queue.popleft()
                        try:
                            worker.assign(task)
                        except OSError:
                            # The worker died since its last message; the task never reached it.
                            queue.appendleft(task)
                            self._replace_dead(worker, on_row)
                self._poll(self._workers, self._wait_seconds(), on_row)
                self._kill_overdue(on_row)
        except BaseException:
            # An interrupt or a failing callback leaves the running tasks unfinished: they have
            # no row and a rerun picks them up. Their workers must not keep running.
            self.close()
            raise

    def _wait_seconds(self) -> float:
        now = time.monotonic()
        wait = 1.0
        for worker in self._workers:
            if worker.task is not None:
                wait = min(wait, worker.started_at + worker.task.deadline_seconds - now)
        return max(wait, 0.0)

    def _poll(self, workers: list[_Worker], timeout: float, on_row: RowCallback) -> None:
        watched: dict[Any, _Worker] = {}
        for worker in workers:
            watched[worker.conn] = worker
            watched[worker.process.sentinel] = worker
        for ready in mpc.wait(list(watched), timeout):
            worker = watched[ready]
            if worker not in self._workers:
                continue  # replaced while handling an earlier entry of this batch
            if ready is worker.conn:
                self._receive(worker, on_row)
            elif not worker.process.is_alive():
                self._replace_dead(worker, on_row)

        now = time.monotonic()
        for worker in list(self._workers):
            if not worker.ready and now - worker.spawned_at > self.start_timeout:
                raise WorkerStartError(
                    f"a local worker process did not start within {self.start_timeout} s; "
                    "check that `python -c 'import gaplab'` works and that the machine is not "
                    "out of memory"
                )

    def _receive(self, worker: _Worker, on_row: RowCallback) -> None:
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            self._replace_dead(worker, on_row)
            return
        if kind == "ready":
            worker.ready = True
            self._start_failures = 0
            logger.debug("local worker %s ready", payload)
            return
        task, worker.task = worker.task, None
        if task is None or payload.get("task_id") != task.task_id:
            logger.error("local worker sent a row for a task it was not running; row dropped")
            return
        on_row(payload)

    def _replace_dead(self, worker: _Worker, on_row: RowCallback) -> None:
        # A row sent just before the process ended is still in the pipe; deliver it first.
        try:
            running = worker.task
            if running is not None and worker.conn.poll(0):
                kind, payload = worker.conn.recv()
                if kind == "row" and payload.get("task_id") == running.task_id:
                    worker.task = None
                    on_row(payload)
        except (EOFError, OSError):
            pass
        worker.process.join(5.0)
        code = worker.process.exitcode
        worker.kill()
        self._workers.remove(worker)
        task = worker.task
        if task is not None:
            seconds = time.monotonic() - worker.started_at
            logger.warning(
                "worker died with exit code %s while running task %s", code, task.task_id
            )
            on_row(
                error_row(
                    task,
                    f"worker process died with exit code {code} while running the task",
                    wall_seconds=seconds,
                )
            )
        elif not worker.ready:
            self._start_failures += 1
            if self._start_failures >= MAX_START_FAILURES:
                raise WorkerStartError(
                    f"{self._start_failures} local worker processes in a row exited with code "
                    f"{code} during start-up; check that `python -c 'import gaplab'` works"
                )
        self._workers.append(_Worker(self._context))

    def _kill_overdue(self, on_row: RowCallback) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            task = worker.task
            if task is None or now - worker.started_at <= task.deadline_seconds:
                continue
            logger.warning(
                "task %s ran past its deadline of %.1f s; killing worker %s",
                task.task_id,
                task.deadline_seconds,
                worker.process.pid,
            )
            worker.kill()
            self._workers.remove(worker)
            on_row(
                error_row(
                    task,
                    f"timed out: still running {now - worker.started_at:.1f} s after it started "
                    f"(time limit {task.time_limit:g} s plus grace {task.grace:g} s); "
                    "worker killed",
                    wall_seconds=now - worker.started_at,
                )
            )
            self._workers.append(_Worker(self._context))
