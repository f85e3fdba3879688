"""The ``dask`` sweep executor: a dask.distributed cluster, local or at a scheduler address.

Workers import gaplab, receive a :class:`~.sweep_task.Task` (a few hundred bytes) and send back
one result row. When a worker dies during a task, the scheduler runs the task again on another
worker. After ``distributed.scheduler.allowed-failures`` deaths (3 by default, 1 on the clusters
that :func:`start_local_cluster` starts) it gives up, and the task gets an error row naming
:class:`distributed.KilledWorker`.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from gaplab.experiments.sweep_executors import ExecutorBrokenError, RowCallback, drive_futures
from gaplab.experiments.sweep_task import Task, error_row, run_task

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler before reporting it unreachable."""
RESULT_TIMEOUT = 1.0
"""Seconds to wait for the data of a finished task before checking deadlines again."""
PROCESSING_INTERVAL = 0.25
"""Seconds between two reads of the scheduler's list of running tasks."""
WORKER_TIMEOUT = 60.0
"""Seconds to wait for the first worker of a cluster before giving up."""


class SchedulerUnreachableError(ConnectionError):
    """No Dask scheduler responded at the given address in time."""


def connect(address: str, timeout: float | None = None) -> Any:
    """Return a :class:`distributed.Client` connected to the scheduler at ``address``.

    ``timeout`` is in seconds, :data:`CONNECT_TIMEOUT` when ``None``.

    Raises
    ------
    SchedulerUnreachableError
        If no scheduler responds within ``timeout`` seconds.
    """
    from distributed import Client

    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnreachableError(
            f"cannot reach a Dask scheduler at {address!r} within {timeout:g} s ({exc}); check "
            "the address, such as tcp://127.0.0.1:8786, and that the scheduler is running"
        ) from exc


def start_local_cluster(workers: int | None = None) -> tuple[Any, Any]:
    """Start a LocalCluster on 127.0.0.1 with one thread per worker; return (client, cluster).

    The scheduler and the workers listen only on 127.0.0.1, on free ports, and the cluster
    serves no dashboard. The scheduler sends a worker one task at a time (worker saturation
    1.0), so a task that kills its worker takes no queued task down with it. The scheduler also
    gives up on a task after two worker deaths (one retry) instead of four.
    """
    import dask
    from distributed import Client, LocalCluster

    # Worker processes read their logging levels from the environment when they start, so
    # this keeps dask's per-worker INFO lines off standard error.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    # The scheduler runs in this process, where dask set its loggers to INFO on import.
    logging.getLogger("distributed").setLevel(logging.WARNING)

    size = workers if workers is not None else (os.cpu_count() or 1)
    settings = {
        "distributed.scheduler.worker-saturation": 1.0,
        "distributed.scheduler.allowed-failures": 1,
    }
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=size,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
        )
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return client, cluster


def close_local_cluster(client: Any, cluster: Any) -> None:
    """Close a client and the LocalCluster it talks to."""
    client.close()
    try:
        cluster.close()
    except KeyError as exc:
        # NOTE: distributed 2026.8 can raise KeyError here when a worker restarted less than a
        # second before (its new address has not reached the cluster object yet). The
        # processes are gone by then, so the error is logged and not raised.
        logger.warning("closing the Dask LocalCluster raised KeyError %s; ignored", exc)


class DaskRunner:
    """Runs sweep tasks on a :class:`distributed.Client`.

    Parameters
    ----------
    client
        A connected client; the caller owns it and closes it.
    restart_hung_workers
        End the worker process that runs a task past its deadline, so that its nanny starts a
        fresh one. Do this only on a cluster the sweep owns, because it also ends whatever else
        that worker runs.
    worker_timeout
        Seconds to wait for the cluster's first worker.
    """

    def __init__(
        self,
        client: Any,
        *,
        restart_hung_workers: bool = False,
        worker_timeout: float = WORKER_TIMEOUT,
    ) -> None:
        self.client = client
        self.restart_hung_workers = restart_hung_workers
        self.worker_timeout = worker_timeout
        self._slots = 0
        self._slots_read_at = -1.0
        self._processing: set[str] = set()
        self._processing_read_at = -1.0

    def run(self, tasks: Sequence[Task], on_row: RowCallback) -> None:
        if not tasks:
            return
        modules = sorted({module for task in tasks for module in task.imports})
        try:
            self.client.register_plugin(ImportPlugin(modules), name="gaplab-sweep-imports")
        except Exception as exc:
            raise ExecutorBrokenError(
                f"the Dask workers failed to import gaplab's models or {modules} ({exc}); "
                "install gaplab, with the same version, where the workers run"
            ) from exc
        try:
            self.client.wait_for_workers(1, timeout=self.worker_timeout)
        except TimeoutError as exc:
            raise ExecutorBrokenError(
                f"the Dask cluster at {self.client.scheduler.address} has no workers after "
                f"{self.worker_timeout:g} s; start workers with `dask worker ADDRESS`"
            ) from exc
        drive_futures(self, tasks, on_row)

    def submit(self, task: Task) -> Any:
        key = f"gaplab-sweep-{task.task_id}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(run_task, task, key=key, pure=False, retries=0)

    def slots(self) -> int:
        now = time.monotonic()
        if now - self._slots_read_at > 1.0:
            self._slots = sum(self.client.nthreads().values())
            self._slots_read_at = now
        return self._slots

    def is_running(self, future: Any) -> bool:
        # NOTE: on clusters with a worker saturation above 1.0 (1.1 is the Dask default) a
        # worker's processing list can also contain a task waiting behind the running one, so
        # that task's deadline clock starts up to one task duration early.
        now = time.monotonic()
        if now - self._processing_read_at > PROCESSING_INTERVAL:
            held = self.client.processing()
            self._processing = {key for keys in held.values() for key in keys}
            self._processing_read_at = now
        return future.key in self._processing

    def row_of(self, future: Any, task: Task) -> dict[str, Any] | None:
        from distributed import KilledWorker

        if future.status == "pending":
            return None
        if future.cancelled() or self.client.status not in ("running", "connecting"):
            raise ExecutorBrokenError(
                f"the Dask cluster dropped task {task.task_id} (client status "
                f"{self.client.status!r}); rerun the sweep to finish the remaining tasks"
            )
        try:
            # A worker that dies after the task finished takes the result with it. The
            # scheduler then runs the task again and the future waits, so wait only briefly.
            row: dict[str, Any] = future.result(timeout=RESULT_TIMEOUT)
        except TimeoutError:
            return None
        except KilledWorker as exc:
            return error_row(
                task, f"worker crashed: the task ended the worker processes that ran it ({exc})"
            )
        except Exception as exc:  # noqa: BLE001 - reported as the task's error row
            return error_row(task, f"{type(exc).__name__}: {exc}")
        return row

    def abandon(self, future: Any, task: Task) -> bool:
        holders = [
            address for address, keys in self.client.processing().items() if future.key in keys
        ]
        future.cancel()
        if not holders:
            return True  # no worker runs it any more, so no slot is lost
        if not self.restart_hung_workers:
            return False
        # The worker's event loop keeps running while its task thread is stuck, so it can run
        # the exit. The nanny then starts a new worker and the slot comes back.
        try:
            self.client.run(_exit_worker, workers=holders, wait=False)
        except Exception as exc:  # noqa: BLE001 - the sweep goes on with one slot fewer
            logger.error("ending the hung Dask worker %s failed: %s", holders, exc)
            return False
        self._slots_read_at = -1.0
        return True


class ImportPlugin(WorkerPlugin):
    """Imports gaplab's models and the tasks' extra modules when a worker starts.

    A worker that starts (or restarts after a crash) then runs its first task as fast as the
    next, so that the import time does not count against that task's deadline.
    """

    def __init__(self, modules: Sequence[str] = ()) -> None:
        self.modules = tuple(modules)

    def setup(self, worker: Any) -> None:
        for module in ("gaplab.experiments.sweep_task", "gaplab.models", *self.modules):
            importlib.import_module(module)


async def _exit_worker() -> None:
    """End the worker process at once (``Client.run`` without waiting needs a coroutine)."""
    os._exit(1)
