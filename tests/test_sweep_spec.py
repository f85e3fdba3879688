"""Sweep specs, task ids, result storage and summaries; nothing here starts a process."""

from __future__ import annotations

import copy
import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

import gaplab.experiments.sweep_toy as toy
from gaplab.experiments.sweep import main, solve_many
from gaplab.experiments.sweep_progress import Progress
from gaplab.experiments.sweep_spec import SpecError, load_spec
from gaplab.experiments.sweep_store import ResultStore, read_results
from gaplab.experiments.sweep_summary import add_ratios, summarize
from gaplab.experiments.sweep_task import ROW_COLUMNS, Task, run_task

SPEC = {
    "model": toy.NAME,
    "imports": ["gaplab.experiments.sweep_toy"],
    "time_limit": 5,
    "instances": {"generate": {"sizes": ["tiny", "small"], "seeds": [0, 1, 2]}},
    "methods": [
        {"exact": "milp"},
        {"exact": "milp", "options": {"mip_rel_gap": 0.1}},
        {"heuristic": "greedy"},
    ],
}


def spec_with(**changes: object) -> dict:
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


# ---------------------------------------------------------------------- grid


def test_grid_is_product_of_instances_and_methods() -> None:
    tasks = load_spec(SPEC)
    assert len(tasks) == 2 * 3 * 3
    assert [t.method for t in tasks[:3]] == [
        "exact:milp",
        "exact:milp[highs,mip_rel_gap=0.1]",
        "greedy",
    ]
    assert tasks[0].instance == "size=tiny,seed=0"
    assert tasks[-1].instance == "size=small,seed=2"
    assert all(t.time_limit == 5.0 for t in tasks)
    assert tasks[0].grace == 10.0


def test_grid_expands_generator_parameters() -> None:
    generate = {
        "sizes": ["tiny"],
        "seeds": {"start": 3, "stop": 5},
        "grid": {"tightness": [0.8, 0.9]},
    }
    tasks = load_spec(
        spec_with(instances={"generate": generate}, methods=[{"heuristic": "greedy"}])
    )
    assert [t.instance for t in tasks] == [
        "size=tiny,seed=3,tightness=0.8",
        "size=tiny,seed=4,tightness=0.8",
        "size=tiny,seed=3,tightness=0.9",
        "size=tiny,seed=4,tightness=0.9",
    ]
    assert tasks[0].params == (("tightness", 0.8),)


def test_spec_reads_yaml_and_instance_files(tmp_path: Path) -> None:
    instance_file = tmp_path / "inst" / "a.json"
    instance_file.parent.mkdir()
    instance_file.write_text(json.dumps(toy.generate(seed=4, size="tiny").to_json()))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "model: sweep-toy-gap\n"
        "imports: [gaplab.experiments.sweep_toy]\n"
        "time_limit: 2\n"
        "grace: 1\n"
        "instances: {files: [inst/a.json]}\n"
        "methods: [{heuristic: greedy}]\n"
    )
    (task,) = load_spec(spec_file)
    assert task.instance == "inst/a.json"
    assert task.instance_file == str(instance_file.resolve())
    assert task.grace == 1.0
    assert run_task(task)["state"] == "ok"


def test_task_id_is_stable_and_ignores_location() -> None:
    task = load_spec(SPEC)[0]
    same = Task(**{**task.__dict__})
    assert same.task_id == task.task_id
    assert len(task.task_id) == 24
    moved = Task(**{**task.__dict__, "grace": 99.0})
    assert moved.task_id == task.task_id
    other = Task(**{**task.__dict__, "time_limit": 6.0})
    assert other.task_id != task.task_id
    ids = [t.task_id for t in load_spec(SPEC)]
    assert len(set(ids)) == len(ids)


# ---------------------------------------------------------------------- bad specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            spec_with(model="no-such-model"),
            "unknown model 'no-such-model'; known models: .*sweep-toy-gap",
        ),
        (spec_with(methods=[{"exact": "lp"}]), "no exact variant 'lp'; valid variants: milp"),
        (
            spec_with(methods=[{"heuristic": "best"}]),
            "no heuristic 'best'; valid heuristics: greedy",
        ),
        (spec_with(colour="red"), "unknown field 'colour'; valid fields: model, imports"),
        (
            spec_with(instances={"generate": {"seeds": [1], "sizez": ["tiny"]}}),
            "unknown field 'sizez'",
        ),
        (spec_with(methods=[{"heuristic": "greedy", "optoins": {}}]), "unknown field 'optoins'"),
        (
            spec_with(methods=[{"exact": "milp", "options": {"gap": 0.1}}]),
            "methods.options has unknown field 'gap'; valid fields: mip_rel_gap",
        ),
        (
            spec_with(instances={"generate": {"seeds": [1], "sizes": ["huge"]}}),
            "no size 'huge'; valid sizes: tiny, small, medium, large",
        ),
        (
            spec_with(instances={"generate": {"seeds": [1], "params": {"items": 3}}}),
            "no parameter 'items'; valid parameters: tightness",
        ),
        (spec_with(methods=[{"exact": "milp", "backend": "nosuch"}]), "unknown backend 'nosuch'"),
        (spec_with(time_limit=0), "time_limit must be a positive number of seconds, got 0"),
        (spec_with(methods=[{"exact": "milp"}, {"exact": "milp"}]), "exact:milp more than once"),
        (spec_with(methods=[{"exact": "milp", "heuristic": "greedy"}]), "exactly one of"),
        (spec_with(imports=["gaplab.no_such_module"]), "module 'gaplab.no_such_module' cannot"),
        (spec_with(instances={"generate": {"seeds": [1, 1]}}), "repeats a seed"),
        (spec_with(instances={"files": ["missing.json"]}), "'missing.json' not found"),
    ],
)
def test_bad_spec_names_field_and_choices(spec: dict, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        load_spec(spec)


def test_spec_without_methods_field_is_rejected() -> None:
    spec = spec_with()
    del spec["methods"]
    with pytest.raises(SpecError, match="no 'methods' field"):
        load_spec(spec)


def test_invalid_yaml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


# ---------------------------------------------------------------------- tasks in this process


def test_task_that_raises_becomes_error_row() -> None:
    (task,) = load_spec(
        spec_with(
            instances={"generate": {"sizes": ["tiny"], "seeds": [0]}},
            methods=[{"heuristic": "fail"}],
        )
    )
    row = run_task(task)
    assert set(row) == set(ROW_COLUMNS)
    assert row["state"] == "error"
    assert row["error"].startswith("RuntimeError: heuristic 'fail' always raises")
    assert row["task_id"] == task.task_id


def test_exact_row_has_objective_and_bound() -> None:
    task = load_spec(SPEC)[0]
    row = run_task(task)
    assert row["state"] == "ok"
    assert row["status"] == "optimal"
    assert row["valid"] is True
    assert row["objective"] == pytest.approx(row["bound"])
    assert row["sense"] == "min"


# ---------------------------------------------------------------------- storage


def test_store_writes_one_file_per_task(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "out")
    assert store.finished_ids() == set()
    assert not (tmp_path / "out").exists()
    rows = [run_task(t) for t in load_spec(SPEC)[:3]]
    for row in rows:
        store.write(row)
    store.write(rows[0])  # a second write replaces the file, never adds one
    assert store.finished_ids() == {r["task_id"] for r in rows}
    # A temporary file of a writer that died is hidden from readers.
    (tmp_path / "out" / ".deadbeef.x.tmp").write_bytes(b"partial")
    frame = ds.dataset(tmp_path / "out", format="parquet").to_table().to_pandas()
    assert len(frame) == 3
    assert sorted(frame["task_id"]) == sorted(r["task_id"] for r in rows)
    assert len(read_results(tmp_path / "out")) == 3


def test_store_rejects_unknown_column(tmp_path: Path) -> None:
    row = run_task(load_spec(SPEC)[2])
    row["colour"] = "red"
    with pytest.raises(ValueError, match="colour"):
        ResultStore(tmp_path).write(row)


def test_rerun_skips_finished_tasks(tmp_path: Path) -> None:
    spec = spec_with(instances={"generate": {"sizes": ["tiny"], "seeds": [0, 1]}})
    with ThreadPoolExecutor(2) as pool:
        first = solve_many(spec, pool, out=tmp_path)
        second = solve_many(spec, pool, out=tmp_path)
    assert (first.ran, first.skipped, first.failed) == (6, 0, 0)
    assert (second.ran, second.skipped) == (0, 6)
    columns = [c for c in ROW_COLUMNS if c not in ("seconds", "wall_seconds")]
    pd.testing.assert_frame_equal(first.rows[columns], second.rows[columns])
    assert len(list(tmp_path.glob("*.parquet"))) == 6


# ---------------------------------------------------------------------- summary


def _row(instance: str, method: str, kind: str, objective: float | None, **extra: object) -> dict:
    row = dict.fromkeys(ROW_COLUMNS)
    row.update(
        model="m",
        instance=instance,
        method=method,
        kind=kind,
        objective=objective,
        state="ok",
        valid=True,
        sense="min",
        seconds=1.0,
    )
    row.update(extra)
    return row


def test_ratio_is_one_or_more_in_both_senses() -> None:
    rows = pd.DataFrame(
        [
            _row("a", "exact", "exact", 10.0),
            _row("a", "greedy", "heuristic", 12.0),
            _row("b", "exact", "exact", 20.0, sense="max"),
            _row("b", "greedy", "heuristic", 16.0, sense="max"),
            _row("c", "greedy", "heuristic", 5.0),
        ]
    )
    ratios = add_ratios(rows)["ratio"].tolist()
    assert ratios[:4] == [1.0, 1.2, 1.0, 1.25]
    assert math.isnan(ratios[4])  # no exact result for instance c


def test_summary_counts_errors_and_invalid() -> None:
    rows = pd.DataFrame(
        [
            _row("a", "exact", "exact", 10.0),
            _row("b", "exact", "exact", 10.0),
            _row("a", "greedy", "heuristic", 11.0),
            _row("b", "greedy", "heuristic", 13.0),
            _row("c", "greedy", "heuristic", 9.0, valid=False),
            _row("d", "greedy", "heuristic", None, state="error", valid=None, seconds=None),
        ]
    )
    table = summarize(rows).set_index("method")
    greedy = table.loc["greedy"]
    assert greedy["count"] == 4
    assert greedy["errors"] == 1
    assert greedy["valid"] == 2
    assert greedy["mean_ratio"] == pytest.approx(1.2)
    assert greedy["worst_ratio"] == pytest.approx(1.3)
    assert table.loc["exact", "worst_ratio"] == 1.0


# ---------------------------------------------------------------------- command line


def test_main_unknown_model_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(spec_with(model="no-such-model")))
    status = main([str(spec), "--out", str(tmp_path / "out")])
    assert status == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["spec.yaml"], "--out DIR is required"),
        ([], "give a sweep spec"),
        (
            ["spec.yaml", "--out", "o", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
            "--workers",
        ),
        (
            ["spec.yaml", "--out", "o", "--scheduler", "tcp://127.0.0.1:1", "--executor", "local"],
            "dask",
        ),
        (["--summary", "o", "--out", "p"], "takes no spec"),
    ],
)
def test_main_rejects_bad_arguments(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_main_prints_summary_of_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = spec_with(instances={"generate": {"sizes": ["tiny"], "seeds": [0]}})
    with ThreadPoolExecutor(1) as pool:
        solve_many(spec, pool, out=tmp_path)
    assert main(["--summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "worst_ratio" in out
    assert "greedy" in out
    assert main(["--summary", str(tmp_path / "missing")]) == 1


def test_solve_many_rejects_unknown_executor() -> None:
    with pytest.raises(ValueError, match="unknown executor 'cloud'; expected one of local, dask"):
        solve_many(SPEC, "cloud")
    with pytest.raises(TypeError, match="got int"):
        solve_many(SPEC, 3)


def test_progress_prints_counts_without_terminal() -> None:
    stream = io.StringIO()
    meter = Progress(3, skipped=2, stream=stream, interval=3600)
    meter.update({"state": "ok"})
    meter.update({"state": "error"})
    meter.update({"state": "ok"})
    meter.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "sweep: 2 tasks already finished, skipped"
    assert lines[1].startswith("sweep: 1 done, 0 failed, 2 remaining of 3")
    assert lines[-1].startswith("sweep: 2 done, 1 failed, 0 remaining of 3")
    assert len(lines) == 3
