"""Sweeps: many solves over a grid of instances and methods, on local processes or on Dask.

The flow of a sweep::

    spec (YAML) --load_spec--> tasks --skip finished--> runner --rows--> one Parquet file per task

:func:`solve_many` is the Python entry and :func:`main` the command line (``gaplab sweep``). The
concepts live in their own modules: ``sweep_spec`` (YAML and grid), ``sweep_task`` (the task and
what a worker does with it), ``sweep_local`` and ``sweep_executors`` and ``sweep_dask`` (runners),
``sweep_store`` (Parquet files), ``sweep_summary`` (the aggregated table) and ``sweep_progress``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gaplab.experiments.sweep_executors import ExecutorBrokenError, FuturesRunner, Runner
from gaplab.experiments.sweep_local import LocalPool, WorkerStartError
from gaplab.experiments.sweep_progress import Progress
from gaplab.experiments.sweep_spec import SpecError, load_spec
from gaplab.experiments.sweep_store import ResultStore, rows_to_frame
from gaplab.experiments.sweep_summary import format_summary, summarize, summarize_folder
from gaplab.experiments.sweep_task import Task

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "dask")

__all__ = ["SweepReport", "load_spec", "main", "solve_many"]


@dataclass
class SweepReport:
    """The outcome of one call of :func:`solve_many`."""

    rows: pd.DataFrame
    """One row per task of the sweep in grid order: those run now and those finished before."""
    ran: int
    """Tasks run by this call, failed ones included."""
    skipped: int
    """Tasks skipped because the output folder already had their result."""
    failed: int
    """Tasks of this call that ended as error rows."""
    out: Path | None


def solve_many(
    tasks_or_spec: str | os.PathLike[str] | Mapping[str, Any] | Iterable[Task],
    executor: Any = None,
    *,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> SweepReport:
    """Run every task of a sweep and collect one result row per task.

    Parameters
    ----------
    tasks_or_spec
        A spec file path, a parsed spec mapping (see :mod:`gaplab.experiments.sweep_spec`), or
        :class:`~gaplab.experiments.sweep_task.Task` objects.
    executor
        Where tasks run: ``None`` or ``"local"`` (a :class:`~.sweep_local.LocalPool` started and
        closed by this call), ``"dask"`` (a LocalCluster on 127.0.0.1, likewise), a
        ``LocalPool``, any :class:`concurrent.futures.Executor`, a
        :class:`distributed.Client`, or an object with a ``run(tasks, on_row)`` method.
        Executors passed in stay open.
    out
        Folder for the per-task Parquet files. Tasks that already have a file there are
        skipped. Without it, rows are only returned.
    workers
        Worker processes for ``"local"`` and ``"dask"``; the CPU count by default.
    progress
        Print a progress line on standard error.

    Returns
    -------
    SweepReport

    Raises
    ------
    SpecError
        If the spec is invalid; nothing has run or been written then.
    ExecutorBrokenError
        If the executor stopped accepting tasks; finished tasks keep their files.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> spec = {
    ...     "model": "sweep-toy-gap",
    ...     "imports": ["gaplab.experiments.sweep_toy"],
    ...     "time_limit": 10,
    ...     "instances": {"generate": {"sizes": ["tiny"], "seeds": [0, 1]}},
    ...     "methods": [{"exact": "milp"}, {"heuristic": "greedy"}],
    ... }
    >>> with ThreadPoolExecutor(2) as pool:
    ...     report = solve_many(spec, pool)
    >>> report.rows[["instance", "method", "state", "objective"]]
               instance      method state  objective
    0  size=tiny,seed=0  exact:milp    ok      195.0
    1  size=tiny,seed=0      greedy    ok      207.0
    2  size=tiny,seed=1  exact:milp    ok      185.0
    3  size=tiny,seed=1      greedy    ok      185.0
    """
    tasks = _as_tasks(tasks_or_spec)
    store = ResultStore(out) if out is not None else None
    finished = store.finished_ids() if store is not None else set()
    todo = [t for t in tasks if t.task_id not in finished]
    skipped = len(tasks) - len(todo)
    logger.info("sweep: %d tasks, %d already finished", len(tasks), skipped)

    fresh: dict[str, dict[str, Any]] = {}
    meter = Progress(len(todo), skipped) if progress else None

    def record(row: dict[str, Any]) -> None:
        task_id = row["task_id"]
        if task_id in fresh:
            logger.warning("task %s reported twice; keeping the first row", task_id)
            return
        if store is not None:
            store.write(row)
        fresh[task_id] = row
        if meter is not None:
            meter.update(row)

    _check_executor(executor)
    try:
        # A rerun with nothing left to do starts no workers.
        if todo:
            runner, close = _runner_for(executor, workers)
            try:
                runner.run(todo, record)
            finally:
                close()
    finally:
        if meter is not None:
            meter.close()

    rows = _rows_in_order(tasks, fresh, store)
    failed = sum(1 for row in fresh.values() if row["state"] == "error")
    return SweepReport(rows, len(fresh), skipped, failed, Path(out) if out is not None else None)


def _as_tasks(source: Any) -> list[Task]:
    if isinstance(source, str | os.PathLike | Mapping):
        tasks = load_spec(source)
    else:
        tasks = list(source)
        strays = [t for t in tasks if not isinstance(t, Task)]
        if strays:
            raise TypeError(
                f"solve_many expects a spec path, a spec mapping or Task objects; got "
                f"{type(strays[0]).__name__}"
            )
    unique: dict[str, Task] = {}
    for task in tasks:
        if task.task_id in unique:
            logger.warning(
                "task %s (%s on %s) listed twice; running it once",
                task.task_id,
                task.method,
                task.instance,
            )
        unique.setdefault(task.task_id, task)
    return list(unique.values())


def _check_executor(executor: Any) -> None:
    if executor is None or executor in EXECUTORS:
        return
    if isinstance(executor, str):
        raise ValueError(
            f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}, an "
            "Executor or a Dask client"
        )
    if isinstance(executor, cf.Executor) or _is_dask_client(executor):
        return
    if not callable(getattr(executor, "run", None)):
        raise TypeError(
            f"executor must be 'local', 'dask', a concurrent.futures.Executor, a "
            f"distributed.Client or a runner with run(tasks, on_row); got "
            f"{type(executor).__name__}"
        )


def _runner_for(executor: Any, workers: int | None) -> tuple[Runner, Any]:
    """Return the runner for a checked ``executor`` and a function closing what it started."""
    if executor is None or executor == "local":
        pool = LocalPool(workers)
        return pool, pool.close
    if executor == "dask":
        from gaplab.experiments.sweep_dask import (
            DaskRunner,
            close_local_cluster,
            start_local_cluster,
        )

        client, cluster = start_local_cluster(workers)
        runner = DaskRunner(client, restart_hung_workers=True)
        return runner, lambda: close_local_cluster(client, cluster)
    if isinstance(executor, cf.Executor):
        return FuturesRunner(executor), lambda: None
    if _is_dask_client(executor):
        from gaplab.experiments.sweep_dask import DaskRunner

        return DaskRunner(executor), lambda: None
    return executor, lambda: None


def _is_dask_client(value: Any) -> bool:
    try:
        from distributed import Client
    except ImportError:
        return False
    return isinstance(value, Client)


def _rows_in_order(
    tasks: list[Task], fresh: dict[str, dict[str, Any]], store: ResultStore | None
) -> pd.DataFrame:
    by_id = dict(fresh)
    earlier = [t.task_id for t in tasks if t.task_id not in fresh]
    if store is not None and earlier:
        for row in store.read_rows(earlier):
            by_id[row["task_id"]] = row
    return rows_to_frame([by_id[t.task_id] for t in tasks if t.task_id in by_id])


# ---------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaplab sweep",
        description="Run a grid of solves from a YAML spec, or summarize a results folder.",
    )
    parser.add_argument("spec", nargs="?", metavar="SPEC.yaml", help="the sweep spec")
    parser.add_argument("--out", metavar="DIR", help="folder for one Parquet file per task")
    parser.add_argument(
        "--executor", choices=EXECUTORS, help="where tasks run (default: local processes)"
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler, such as tcp://127.0.0.1:8786 (implies "
        "--executor dask); without it, dask starts a LocalCluster on 127.0.0.1",
    )
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (default: the CPU count)"
    )
    parser.add_argument(
        "--summary", metavar="DIR", help="print the summary table of a results folder and exit"
    )
    parser.add_argument("--quiet", action="store_true", help="print no progress line")
    return parser


def main(argv: list[str]) -> int:
    """Run ``gaplab sweep`` with the arguments ``argv``; return the exit status.

    Errors in the arguments or the spec return 2 and errors of the cluster 1, with the reason
    on standard error and no file written. An interrupted sweep (Ctrl-C) returns 130 and keeps
    the files of its finished tasks. A sweep that ran to its end returns 0, even when some
    tasks failed, because their rows contain the reasons.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)

    if args.summary is not None:
        if args.spec is not None or args.out is not None:
            return _fail("--summary DIR takes no spec and no --out", 2)
        try:
            table = summarize_folder(args.summary)
        except FileNotFoundError as exc:
            return _fail(str(exc), 1)
        print(format_summary(table))
        return 0

    problem = _check_arguments(args)
    if problem:
        return _fail(problem, 2)
    try:
        tasks = load_spec(args.spec)
        ResultStore(args.out)
    except (SpecError, NotADirectoryError) as exc:
        return _fail(str(exc), 2)

    executor = args.executor or ("dask" if args.scheduler else "local")
    client = None
    try:
        if args.scheduler:
            from gaplab.experiments.sweep_dask import DaskRunner, connect

            client = connect(args.scheduler)
            target: Any = DaskRunner(client)
        else:
            target = executor
        report = solve_many(
            tasks, target, out=args.out, workers=args.workers, progress=not args.quiet
        )
    except ConnectionError as exc:  # SchedulerUnreachableError among others
        return _fail(str(exc), 1)
    except (ExecutorBrokenError, WorkerStartError) as exc:
        return _fail(f"{exc}; finished tasks are saved in {args.out}", 1)
    except KeyboardInterrupt:
        return _fail(f"interrupted; finished tasks are saved in {args.out}, rerun to finish", 130)
    finally:
        if client is not None:
            client.close()

    print(format_summary(summarize(report.rows)))
    print(
        f"{len(report.rows)} tasks: {report.ran} ran ({report.failed} failed), "
        f"{report.skipped} finished before; results in {args.out}"
    )
    return 0


def _check_arguments(args: argparse.Namespace) -> str | None:
    if args.spec is None:
        return "give a sweep spec (SPEC.yaml --out DIR) or --summary DIR"
    if args.out is None:
        return "--out DIR is required: it names the folder for the results"
    if args.scheduler and args.executor == "local":
        return "--scheduler needs the dask executor; drop --executor local"
    if args.scheduler and args.workers is not None:
        return "--workers applies to local workers and LocalCluster; the scheduler has its own"
    if args.workers is not None and args.workers < 1:
        return f"--workers must be a positive integer, got {args.workers}"
    return None


def _fail(message: str, status: int) -> int:
    print(f"gaplab sweep: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
