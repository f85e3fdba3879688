"""WfInstances importer, the registered spec, its suite and the Last-K sweep of task-graph."""

from __future__ import annotations

import json

import pytest

from gaplab.heuristics.task_graph import BASES, last_k
from gaplab.models.registry import get_model
from gaplab.models.task_graph import InstanceError, validate
from gaplab.models.task_graph.compare import (
    extras,
    offline_reference,
    pareto_figure,
    sweep,
    window_grid,
)
from gaplab.models.task_graph.importers import (
    WORKFLOW_FILES,
    import_wfinstances,
    prefix_subgraph,
    workflow_from_dict,
    workflow_stream,
)
from tests.conftest import require_data_file

# Tasks and edges of the four traces, from their WfFormat files.
EXPECTED = {
    "1000genome": (52, 76),
    "epigenomics": (41, 48),
    "montage": (58, 114),
    "srasearch": (22, 30),
}


def _mini() -> dict:
    return {
        "name": "mini",
        "workflow": {
            "specification": {
                "tasks": [
                    {"id": "a", "parents": [], "inputFiles": ["in"], "outputFiles": ["f1", "f2"]},
                    {"id": "b", "parents": ["a"], "inputFiles": ["f1", "f2"], "outputFiles": []},
                    {"id": "c", "parents": ["a"], "inputFiles": ["other"], "outputFiles": []},
                ],
                "files": [
                    {"id": "in", "sizeInBytes": 5},
                    {"id": "f1", "sizeInBytes": 100},
                    {"id": "f2", "sizeInBytes": 50},
                    {"id": "other", "sizeInBytes": 7},
                ],
            },
            "execution": {
                "makespanInSeconds": 10,
                "tasks": [
                    {"id": "a", "runtimeInSeconds": 2.0, "machines": ["m"]},
                    {"id": "b", "runtimeInSeconds": 4.0, "machines": ["m"]},
                    {"id": "c", "runtimeInSeconds": 1.0, "machines": ["m"]},
                ],
                "machines": [{"nodeName": "m", "cpu": {"coreCount": 4, "speedInMHz": 1500}}],
            },
        },
    }


def test_importer_mapping_rules():
    graph, network = workflow_from_dict(_mini())
    assert graph.tasks == ("a", "b", "c")
    # w_t = runtime * 1.5 GHz; edge data = bytes of shared files.
    assert graph.costs == (3.0, 6.0, 1.5)
    assert ("a", "b", 150.0) in graph.edges
    assert ("a", "c", 0.0) in graph.edges
    assert network.speeds == (0.75, 1.2, 1.8, 2.4)
    assert network.bandwidth[0][1] == 125e6


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["workflow"]["specification"]["tasks"][1].update(parents=["zz"]),
            "parent 'zz'",
        ),
        (lambda d: d["workflow"].pop("execution"), "workflow.execution"),
        (lambda d: d["workflow"]["execution"]["tasks"].pop(), "no entry in workflow.execution"),
        (lambda d: d["workflow"]["execution"]["machines"][0].pop("cpu"), "speedInMHz"),
        (lambda d: d["workflow"]["specification"]["files"].pop(1), "no sizeInBytes"),
        (lambda d: d["workflow"]["specification"]["tasks"][0].update(parents=["b"]), "cycle"),
        (
            lambda d: d["workflow"]["execution"]["tasks"][0].update(machines=["x"]),
            "unknown machine",
        ),
    ],
)
def test_importer_bad_input(mutate, message):
    doc = _mini()
    mutate(doc)
    with pytest.raises(InstanceError, match=message):
        workflow_from_dict(doc)


def test_importer_rejects_non_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[1, 2")
    with pytest.raises(InstanceError, match="not valid JSON"):
        import_wfinstances(path)


def test_prefix_subgraph_keeps_parents():
    graph, _ = workflow_from_dict(_mini())
    sub = prefix_subgraph(graph, 2)
    assert sub.tasks == ("a", "b")
    assert sub.edges == (("a", "b", 150.0),)


@pytest.mark.parametrize("file", WORKFLOW_FILES)
def test_real_workflows_import_and_schedule(data_dir, file):
    path = require_data_file(data_dir, f"workflow/{file}")
    instance = import_wfinstances(path)
    tasks, edges = next(v for k, v in EXPECTED.items() if k in file)
    assert instance.num_tasks == tasks
    assert len(instance.graphs[0].edges) == edges
    assert len(instance.network.speeds) == 4
    doc = json.loads(path.read_text())
    runtimes = {t["id"]: t["runtimeInSeconds"] for t in doc["workflow"]["execution"]["tasks"]}
    ghz = doc["workflow"]["execution"]["machines"][0]["cpu"]["speedInMHz"] / 1000
    first = instance.graphs[0].tasks[0]
    assert instance.graphs[0].costs[0] == pytest.approx(runtimes[first] * ghz)
    for base in BASES:
        schedule = last_k(instance, base, 1)
        assert validate(instance, schedule) == []


def test_real_workflow_stream_schedules(data_dir):
    files = [require_data_file(data_dir, f"workflow/{f}") for f in WORKFLOW_FILES]
    instance = workflow_stream(files, seed=3, graphs=5)
    assert instance.num_tasks == 52 + 41 + 58 + 22 + 52
    for k in (1, 2, None):
        assert validate(instance, last_k(instance, "heft", k)) == []


def test_spec_is_registered_and_consistent():
    spec = get_model("task-graph")
    assert spec.sense == "min"
    assert "offline" in spec.exact
    assert {"heft-k1", "heft-full", "cpop-k2", "minmin-k3", "maxmin-full"} <= set(spec.heuristics)
    instance = spec.generate(seed=0, size="tiny")
    schedule = spec.heuristics["heft-k2"](instance)
    assert spec.validate(instance, schedule) == []
    assert spec.evaluate(instance, schedule) == pytest.approx(schedule.makespan(instance))
    assert spec.solution_to_json is not None
    assert spec.solution_to_json(schedule)["window"] == 2


def test_spec_dump_and_load(tmp_path):
    spec = get_model("task-graph")
    instance = spec.generate(seed=1, size="small")
    spec.dump(instance, tmp_path / "i.json")
    assert spec.load(tmp_path / "i.json") == instance


def test_suite_quick_and_default():
    spec = get_model("task-graph")
    quick = spec.suite(True, None)
    full = spec.suite(False, None)
    assert len(quick) == 2
    assert {item.source for item in full} == {"generated", "shipped"}
    shipped = [item.instance for item in full if item.source == "shipped"]
    assert shipped[0].num_tasks == 15


def test_suite_with_real_data(data_dir):
    spec = get_model("task-graph")
    real = [item for item in spec.suite(False, data_dir) if item.source == "real"]
    assert len(real) == 1
    assert real[0].instance.num_tasks == 20


def test_extras_rows_and_pareto_png(tmp_path):
    spec = get_model("task-graph")
    instance = spec.generate(seed=0, size="small")
    assert spec.extras is not None
    rows = spec.extras(instance, tmp_path, True)
    assert [r["K"] for r in rows] == ["1", "2", "full"]
    assert all(r["valid"] for r in rows)
    png = tmp_path / f"task-graph-{instance.name}-pareto.png"
    assert png.is_file()
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert extras(instance, None, True)[0]["method"] == "heft-k1"


def test_sweep_with_milp_rows():
    spec = get_model("task-graph")
    instance = spec.generate(seed=0, size="tiny")
    rows = sweep(instance, bases=("heft",), milp=True)
    methods = [r["method"] for r in rows]
    assert methods == ["heft-k1", "heft-full", "milp-k1", "milp-full"]
    assert all(r["valid"] for r in rows)


def test_window_grid():
    assert window_grid(1) == [None]
    assert window_grid(4) == [1, 2, 3, None]
    assert window_grid(30, limit=3) == [1, 2, 3, None]


def test_pareto_plot_marks_k_and_optimum():
    instance = get_model("task-graph").generate(seed=0, size="tiny")
    rows = sweep(instance, bases=("heft", "cpop"))
    optimum = offline_reference(instance, quick=True)
    assert optimum is not None
    assert optimum[1] == "offline MILP optimum"
    figure = pareto_figure(rows, optimum=optimum)
    axes = figure.axes[0]
    assert len(axes.texts) == 0  # K is a marker, so labels of close points cannot overlap
    methods = [text.get_text() for text in axes.artists[0].get_texts()]
    assert "offline MILP optimum" in methods
    assert "lower bound (critical path, work)" in methods
    windows = [text.get_text() for text in axes.get_legend().get_texts()]
    assert windows == ["K = 1", "K = full"]
    levels = sorted(line.get_ydata()[0] for line in axes.lines if line.get_linestyle() == "--")
    assert levels == [pytest.approx(optimum[0])]
