"""Sweeps on real worker processes: the local pool and a Dask LocalCluster on 127.0.0.1.

The tests of this module share one cluster and one pool to keep it fast. The cluster's workers
see the environment variable that arms the ``crash-once`` heuristic of the toy model.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds
import pytest

import gaplab.experiments.sweep_dask as sweep_dask
import gaplab.experiments.sweep_toy as toy
from gaplab.experiments.sweep import main, solve_many
from gaplab.experiments.sweep_dask import (
    DaskRunner,
    SchedulerUnreachableError,
    close_local_cluster,
    start_local_cluster,
)
from gaplab.experiments.sweep_executors import ExecutorBrokenError
from gaplab.experiments.sweep_local import LocalPool
from gaplab.experiments.sweep_spec import load_spec
from gaplab.experiments.sweep_task import TIMING_COLUMNS

pytestmark = pytest.mark.slow

METHODS = [{"exact": "milp"}, {"heuristic": "greedy"}]
SPEC: dict[str, Any] = {
    "model": toy.NAME,
    "imports": ["gaplab.experiments.sweep_toy"],
    "time_limit": 5,
    "grace": 20,
    "instances": {"generate": {"sizes": ["tiny", "small"], "seeds": [0, 1, 2]}},
    "methods": METHODS,
}


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("marker") / "crashed-once"
    old = os.environ.get(toy.MARKER_VARIABLE)
    os.environ[toy.MARKER_VARIABLE] = str(path)
    yield path
    if old is None:
        del os.environ[toy.MARKER_VARIABLE]
    else:
        os.environ[toy.MARKER_VARIABLE] = old


@pytest.fixture(scope="module")
def client(marker: Path) -> Iterator[Any]:
    client, cluster = start_local_cluster(2)
    try:
        assert all(address.startswith("tcp://127.0.0.1:") for address in client.nthreads())
        yield client
    finally:
        close_local_cluster(client, cluster)


@pytest.fixture(scope="module")
def pool() -> Iterator[LocalPool]:
    with LocalPool(2) as pool:
        yield pool


def ids_on_disk(folder: Path) -> list[str]:
    return ds.dataset(folder, format="parquet").to_table().column("task_id").to_pylist()


def reproducible(rows: pd.DataFrame) -> pd.DataFrame:
    comparable = rows.drop(columns=list(TIMING_COLUMNS))
    return comparable.sort_values("task_id").reset_index(drop=True)


def test_dask_sweep_survives_killed_worker(client: Any, marker: Path, tmp_path: Path) -> None:
    marker.unlink(missing_ok=True)
    methods = [*METHODS, {"heuristic": "crash-once"}]
    spec = spec_with(methods=methods)
    tasks = load_spec(spec)

    report = solve_many(spec, client, out=tmp_path)

    assert marker.exists(), "the crash-once task did not end its first worker"
    assert report.ran == len(tasks)
    on_disk = ids_on_disk(tmp_path)
    assert sorted(on_disk) == sorted(t.task_id for t in tasks)
    assert list(report.rows["task_id"]) == [t.task_id for t in tasks]
    # The scheduler ran the crashed task again on the other worker.
    assert set(report.rows["state"]) == {"ok"}

    again = solve_many(spec, client, out=tmp_path)
    assert (again.ran, again.skipped) == (0, len(tasks))
    assert sorted(ids_on_disk(tmp_path)) == sorted(on_disk)


class StopAfter:
    """A runner that interrupts the sweep after a number of rows, like Ctrl-C would."""

    def __init__(self, runner: Any, rows: int) -> None:
        self.runner = runner
        self.rows = rows

    def run(self, tasks: Any, on_row: Any) -> None:
        seen = 0

        def counted(row: dict[str, Any]) -> None:
            nonlocal seen
            on_row(row)
            seen += 1
            if seen == self.rows:
                raise KeyboardInterrupt

        self.runner.run(tasks, counted)


def test_interrupted_sweep_resumes(client: Any, tmp_path: Path) -> None:
    tasks = load_spec(SPEC)
    with pytest.raises(KeyboardInterrupt):
        solve_many(SPEC, StopAfter(DaskRunner(client), 4), out=tmp_path)
    assert len(ids_on_disk(tmp_path)) == 4

    report = solve_many(SPEC, client, out=tmp_path)
    assert (report.ran, report.skipped) == (len(tasks) - 4, 4)
    on_disk = ids_on_disk(tmp_path)
    assert len(on_disk) == len(set(on_disk)) == len(tasks)


def test_local_and_dask_give_same_rows(client: Any, pool: LocalPool, tmp_path: Path) -> None:
    local = solve_many(SPEC, pool, out=tmp_path / "local")
    dask = solve_many(SPEC, client, out=tmp_path / "dask")
    assert local.failed == dask.failed == 0
    pd.testing.assert_frame_equal(reproducible(local.rows), reproducible(dask.rows))
    pd.testing.assert_frame_equal(
        reproducible(pd.read_parquet(tmp_path / "local")),
        reproducible(pd.read_parquet(tmp_path / "dask")),
    )


def test_local_pool_records_failures(pool: LocalPool, tmp_path: Path) -> None:
    methods = ["greedy", "fail", "crash", "hang"]
    spec = spec_with(
        time_limit=0.5,
        grace=1.5,
        instances={"generate": {"sizes": ["tiny"], "seeds": [0]}},
        methods=[{"heuristic": name} for name in methods],
    )
    report = solve_many(spec, pool, out=tmp_path)
    rows = report.rows.set_index("method")

    assert report.failed == 3
    assert rows.loc["greedy", "state"] == "ok"
    assert str(rows.loc["fail", "error"]).startswith("RuntimeError: heuristic 'fail' always raises")
    assert (
        rows.loc["crash", "error"] == "worker process died with exit code 3 while running the task"
    )
    assert str(rows.loc["hang", "error"]).startswith("timed out")
    assert len(ids_on_disk(tmp_path)) == 4

    again = solve_many(spec, pool, out=tmp_path)
    assert (again.ran, again.skipped) == (0, 4)
    assert len(ids_on_disk(tmp_path)) == 4


def test_dask_kills_hung_task(client: Any, tmp_path: Path) -> None:
    spec = spec_with(
        time_limit=0.5,
        grace=1.5,
        instances={"generate": {"sizes": ["tiny"], "seeds": [0]}},
        methods=[{"heuristic": "hang"}, {"heuristic": "fail"}, {"heuristic": "greedy"}],
    )
    report = solve_many(spec, DaskRunner(client, restart_hung_workers=True), out=tmp_path)
    rows = report.rows.set_index("method")
    assert rows.loc["hang", "state"] == "error"
    assert str(rows.loc["hang", "error"]).startswith("timed out")
    assert rows.loc["fail", "state"] == "error"
    assert rows.loc["greedy", "state"] == "ok"
    # The hung worker was ended and its nanny starts a new one.
    client.wait_for_workers(2, timeout=60)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_scheduler_fails_fast(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"tcp://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(
        SchedulerUnreachableError, match=f"cannot reach a Dask scheduler at '{address}'"
    ):
        sweep_dask.connect(address, timeout=2)
    assert time.monotonic() - started < 6

    monkeypatch.setattr(sweep_dask, "CONNECT_TIMEOUT", 2.0)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "model: sweep-toy-gap\nimports: [gaplab.experiments.sweep_toy]\ntime_limit: 1\n"
        "instances: {generate: {seeds: [0]}}\nmethods: [{heuristic: greedy}]\n"
    )
    status = main([str(spec_file), "--out", str(tmp_path / "out"), "--scheduler", address])
    assert status == 1
    assert "cannot reach a Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_process_pool_executor_runs_sweep(tmp_path: Path) -> None:
    spec = spec_with(instances={"generate": {"sizes": ["tiny"], "seeds": [0, 1]}})
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        report = solve_many(spec, executor, out=tmp_path)
        assert (report.ran, report.failed) == (4, 0)

        crashing = spec_with(
            instances={"generate": {"sizes": ["tiny"], "seeds": [5]}},
            methods=[{"heuristic": "crash"}],
        )
        with pytest.raises(ExecutorBrokenError, match="rerun the sweep"):
            solve_many(crashing, executor, out=tmp_path)
    # The finished tasks keep their files and the crashed one has none, so a rerun retries it.
    assert len(ids_on_disk(tmp_path)) == 4
