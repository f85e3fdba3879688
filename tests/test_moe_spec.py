"""The moe-assign ModelSpec: registration, suite, extras and the shipped files."""

from __future__ import annotations

import numpy as np
import pytest

from gaplab.models.moe_assign.extras import CEILING_MARGIN, HitRates
from gaplab.models.moe_assign.instance import Instance
from gaplab.models.moe_assign.suite import SHIPPED, SHIPPED_DIR
from gaplab.models.registry import get_model, run_exact, run_heuristic
from gaplab.solvers import SolveOptions


@pytest.fixture(scope="module")
def spec():
    return get_model("moe-assign")


def test_spec_registered(spec) -> None:
    assert spec.sense == "min"
    assert spec.exact_default == "milp"
    assert set(spec.exact) == {"milp", "brute-force"}
    assert "greedy" in spec.heuristics
    assert "lp-round" in spec.heuristics


def test_spec_generate_dump_load(spec, tmp_path) -> None:
    for size in spec.sizes:
        inst = spec.generate(seed=3, size=size)
        path = tmp_path / f"{size}.json"
        spec.dump(inst, path)
        back = spec.load(path)
        assert np.array_equal(back.workload, inst.workload)


def test_spec_exact_and_heuristic_outcomes(spec) -> None:
    inst = spec.generate(seed=1, size="medium")
    exact = run_exact(spec, inst, "medium", "milp", "highs", SolveOptions(time_limit=10))
    assert exact.valid
    assert exact.status == "optimal"
    assert exact.bound == pytest.approx(exact.objective, rel=1e-6)
    greedy = run_heuristic(spec, inst, "medium", "greedy")
    assert greedy.valid
    assert greedy.objective >= exact.objective * (1 - 1e-9)
    rounded = run_heuristic(spec, inst, "medium", "lp-round")
    assert rounded.kind == "heuristic"
    assert rounded.valid
    assert rounded.objective >= exact.objective * (1 - 1e-9)
    assert rounded.solution.lower_bound <= exact.objective * (1 + 1e-9)


def test_compare_lists_lp_round_as_heuristic(spec) -> None:
    from gaplab.experiments.compare import compare_instance

    inst = Instance.from_json(SHIPPED_DIR / "mixtral-8x7b-decode-b16-slots1.json")
    inst = inst.replace(meta={**inst.meta, "extras": "instance"})
    rows = compare_instance(spec, "mixtral", inst, "highs", SolveOptions(time_limit=10))
    by_method = {row["method"]: row for row in rows}
    assert by_method["lp-round"]["kind"] == "heuristic"
    assert "exact:lp-round" not in by_method
    milp = by_method["exact:milp"]
    brute = by_method["exact:brute-force"]
    assert brute["status"] == "optimal"
    assert brute["objective"] == pytest.approx(milp["objective"], rel=1e-9)
    assert by_method["lp-round"]["ratio"] >= 1 - 1e-9
    assert by_method["extras:assignment"]["bound"] <= milp["objective"] * (1 + 1e-9)


def test_shipped_files_match_generator() -> None:
    for file_name, options in SHIPPED.items():
        shipped = Instance.from_json(SHIPPED_DIR / file_name)
        fresh = Instance.generate(**options)
        assert shipped.to_json() == fresh.to_json(), file_name


def test_quick_suite_small_and_valid(spec) -> None:
    items = spec.suite(True, None)
    assert len(items) == 3
    shapes = {item.instance.shape for item in items}
    assert shapes == {"mixtral-8x7b", "deepseek-v2-lite", "qwen3-30b-a3b"}
    for item in items:
        solution = spec.heuristics["greedy"](item.instance)
        assert spec.validate(item.instance, solution) == []


def test_full_suite_lists_generated_and_shipped(spec) -> None:
    items = spec.suite(False, None)
    sources = [item.source for item in items]
    assert sources.count("generated") == 9
    assert sources.count("shipped") == len(SHIPPED)
    assert len({item.name for item in items}) == len(items)


def test_suite_adds_real_instances(spec, data_dir) -> None:
    items = spec.suite(False, data_dir)
    real = [item for item in items if item.source == "real"]
    assert len(real) == 14
    assert sum(item.instance.meta["extras"] == "shape" for item in real) == 1


def test_extras_rows_and_plot(spec, tmp_path) -> None:
    inst = Instance.generate(seed=2, shape="deepseek-v2-lite", batch=8)
    rows = spec.extras(inst, tmp_path, True)
    methods = [row["method"] for row in rows]
    assert methods[0] == "extras:assignment"
    assert rows[0]["greedy_over_optimal"] >= 1 - 1e-9
    assert rows[0]["greedy_us"] > 0
    assert {"extras:cache:warc", "extras:cache:lru", "extras:cache:lfu"} <= set(methods)
    replays = [row for row in rows if row["method"].startswith("extras:replay")]
    assert replays[0]["speedup_over_naive"] == pytest.approx(1.0)
    assert (tmp_path / "moe-assign-hit-rates-deepseek-v2-lite-b8.png").is_file()


def test_hit_rate_plot_explains_equal_bars(spec, tmp_path) -> None:
    inst = Instance.generate(seed=2, shape="mixtral-8x7b", batch=8)
    rows = spec.extras(inst, tmp_path, True)
    cache_rows = [row for row in rows if row["method"].startswith("extras:cache:")]
    rates = [row["hit_rate"] for row in cache_rows]
    assert max(rates) - min(rates) <= CEILING_MARGIN
    for row in cache_rows:
        assert row["max_hit_rate"] - row["hit_rate"] <= CEILING_MARGIN
        assert "more than the 2 cached" in row["note"]
    assert (tmp_path / "moe-assign-hit-rates-mixtral-8x7b-b8.png").is_file()


def test_hit_rate_note_empty_when_policies_differ() -> None:
    spread = HitRates({"warc": 0.50, "lru": 0.55}, 0.63, 16, 64, 25.0)
    assert spread.note() == ""
    full = HitRates({"warc": 1.0, "lru": 1.0}, 1.0, 8, 8, 6.0)
    assert "All 8 experts fit in the cache" in full.note()
    covered = HitRates({"warc": 0.995, "lru": 1.0}, 1.0, 4, 8, 2.0)
    assert "already hold the active ones" in covered.note()


def test_extras_instance_only(spec) -> None:
    inst = Instance.generate(seed=2, shape="mixtral-8x7b", batch=8)
    inst = inst.replace(meta={**inst.meta, "extras": "instance"})
    rows = spec.extras(inst, None, True)
    assert [row["method"] for row in rows] == ["extras:assignment"]
    assert rows[0]["milp_equals_brute_force"] is True


def test_importer_reads_popularity(spec, data_dir) -> None:
    path = data_dir / "moe/fiddler_mixtral_8x7b_instruct/expert_popularity_machine_learning.json"
    inst = spec.pick_importer(path)(path)
    assert inst.shape == "mixtral-8x7b"
    assert inst.workload.sum() == 32 * 2
