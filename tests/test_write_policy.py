"""write-policy: generator, byte costs, memory store, episode JSON and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gaplab.models.write_policy import Action, EpisodeFormatError, Instance, UnknownItemError
from gaplab.models.write_policy.costs import merge_cost, merge_delta, write_cost
from gaplab.models.write_policy.generator import MODES, generate_stream
from gaplab.models.write_policy.instance import Step
from gaplab.models.write_policy.store import MemoryStore


@pytest.fixture(scope="module")
def episode() -> Instance:
    return Instance.generate(0, mode="default", budget_kib=4)


def test_generator_reproduces_published_episode_start() -> None:
    stream = generate_stream("default", seed=0, episode_id=0)
    assert stream.observations[0] == {
        "api": "api.v1.endpoint_7",
        "params": ["p7_0", "p7_1", "p7_2", "p7_3"],
        "deprecated": False,
        "version": 1,
    }
    assert stream.critical_steps[:6] == [12, 44, 49, 50, 53, 61]
    assert len(stream.critical_steps) == 20
    assert stream.observations[12]["api"] == "api.v2.endpoint_4"
    assert stream.metadata[12] == {"mode": "default", "priority": 5 / 6}


def test_generator_is_deterministic() -> None:
    for mode in MODES:
        first = generate_stream(mode, seed=3, episode_id=2)
        second = generate_stream(mode, seed=3, episode_id=2)
        assert first == second
    assert generate_stream("default", 0, 1) != generate_stream("default", 0, 2)


def test_generator_utilities_follow_modes() -> None:
    burst = generate_stream("burst_drift", 0, 0)
    in_window = [t for t in burst.critical_steps if t % 50 < 8]
    outside = [t for t in burst.critical_steps if t % 50 >= 8]
    assert in_window and outside
    assert all(burst.utility[t] == 6.0 for t in in_window)
    assert all(burst.utility[t] == 5.0 for t in outside)
    redundant = generate_stream("redundancy", 0, 0)
    plain = [t for t in range(1, 200) if t not in set(redundant.critical_steps)]
    assert all(redundant.utility[t] == 0.5 for t in plain)
    assert redundant.utility[0] in (1.0, 5.0)


@pytest.mark.parametrize(("mode", "low", "high"), [("default", 13, 22), ("burst_drift", 25, 42)])
def test_critical_steps_per_episode(mode: str, low: int, high: int) -> None:
    counts = [len(generate_stream(mode, 0, e).critical_steps) for e in range(10)]
    assert min(counts) == low
    assert max(counts) == high


def test_mean_step_cost_matches_reference_ranges() -> None:
    for mode in MODES:
        for e in range(10):
            unpriv = Instance.generate(0, mode=mode, episode_id=e, track="unprivileged")
            priv = unpriv.with_budget(unpriv.budget_bytes, track="privileged")
            assert 165 <= unpriv.costs.mean() <= 193
            assert 199 <= priv.costs.mean() <= 224
            assert 33_000 <= unpriv.costs.sum() <= 43_500


def test_write_cost_is_byte_accurate() -> None:
    obs = {"api": "a", "params": [], "deprecated": False, "version": 1}
    meta = {"mode": "default"}
    text = '{"api": "a", "deprecated": false, "params": [], "version": 1}'
    assert write_cost(obs, meta) == len(text) + len('{"mode": "default"}') + 48


def test_merge_delta_and_cost() -> None:
    base = {"api": "a", "deprecated": True, "version": 2}
    new = {"api": "a", "deprecated": False, "version": 2}
    delta = merge_delta(base, new)
    assert delta == {"deprecated": False}
    assert merge_cost(delta) == 37
    assert merge_delta(new, new) == {}


def test_store_write_and_expire_bytes(episode: Instance) -> None:
    store = MemoryStore(episode)
    assert store.apply(Action.write(0), now=0).accepted
    assert store.apply(Action.write(1), now=1).accepted
    assert store.used_bytes == int(episode.costs[0] + episode.costs[1])
    assert store.apply(Action.expire(0), now=2).accepted
    assert store.used_bytes == int(episode.costs[1])
    assert store.retained_steps() == [1]


def test_store_rejects_over_budget_without_change(episode: Instance) -> None:
    tight = episode.with_budget(int(episode.costs[0]) + 10)
    store = MemoryStore(tight)
    assert store.apply(Action.write(0), now=0).accepted
    before = (store.used_bytes, store.retained_steps())
    decision = store.apply(Action.write(1), now=1)
    assert not decision.accepted
    assert "do not fit" in decision.reason
    assert (store.used_bytes, store.retained_steps()) == before


def test_store_budget_boundary_is_inclusive(episode: Instance) -> None:
    exact = episode.with_budget(int(episode.costs[0]))
    store = MemoryStore(exact)
    assert store.apply(Action.write(0), now=0).accepted
    assert store.remaining_bytes == 0


def test_store_expire_must_target_older_item(episode: Instance) -> None:
    store = MemoryStore(episode)
    store.apply(Action.write(3), now=3)
    decision = store.apply(Action.expire(3), now=3)
    assert not decision.accepted
    assert 3 in store


def test_store_write_only_current_step(episode: Instance) -> None:
    store = MemoryStore(episode)
    decision = store.apply(Action.write(2), now=5)
    assert not decision.accepted
    assert len(store) == 0


def _merge_case(instance: Instance) -> tuple[int, int]:
    pairs = instance.merge_pairs
    assert len(pairs) > 0
    return int(pairs.t[0]), int(pairs.parent[0])


def test_store_merge_rules(episode: Instance) -> None:
    child, parent = _merge_case(episode)
    store = MemoryStore(episode)
    assert store.apply(Action.write(parent), now=parent).accepted
    assert store.apply(Action.merge(child, parent), now=child).accepted
    assert store.retained_steps() == sorted([parent, child])
    item = store.get(child)
    assert item is not None
    assert item.cost == int(episode.merge_pairs.cost[0])
    # The delta's base is gone: the delta stays in memory but is no longer retained.
    assert store.apply(Action.expire(parent), now=child + 1).accepted
    assert store.retained_steps() == []


def _tiny(observations: list[dict], budget: int = 10_000) -> Instance:
    steps = tuple(
        Step(t, obs, {"mode": "default", "priority": 1 / 6}) for t, obs in enumerate(observations)
    )
    return Instance(
        name="tiny",
        mode="default",
        steps=steps,
        utility=(1.0,) * len(steps),
        critical_steps=(),
        budget_bytes=budget,
    )


def test_store_rejects_merge_chain() -> None:
    inst = _tiny(
        [
            {"api": "a", "deprecated": True, "version": 1},
            {"api": "a", "deprecated": False, "version": 1},
            {"api": "a", "deprecated": True, "version": 1},
        ]
    )
    store = MemoryStore(inst)
    assert store.apply(Action.write(0), now=0).accepted
    assert store.apply(Action.merge(1, 0), now=1).accepted
    chain = store.apply(Action.merge(2, 1), now=2)
    assert not chain.accepted
    assert "chain" in chain.reason


def test_store_rejects_merge_across_apis() -> None:
    inst = _tiny([{"api": "a", "version": 1}, {"api": "b", "version": 2}])
    store = MemoryStore(inst)
    store.apply(Action.write(0), now=0)
    decision = store.apply(Action.merge(1, 0), now=1)
    assert not decision.accepted
    assert "api differs" in decision.reason
    assert store.retained_steps() == [0]


def test_store_rejects_empty_delta() -> None:
    inst = Instance.generate(0, mode="redundancy", budget_kib=64)
    repeat = next(
        t
        for t in range(1, inst.num_steps)
        if inst.steps[t].observation == inst.steps[t - 1].observation
    )
    store = MemoryStore(inst)
    store.apply(Action.write(repeat - 1), now=repeat - 1)
    decision = store.apply(Action.merge(repeat, repeat - 1), now=repeat)
    assert not decision.accepted
    assert "empty" in decision.reason


def test_store_unknown_item_raises(episode: Instance) -> None:
    store = MemoryStore(episode)
    with pytest.raises(UnknownItemError, match="item 7, which is not in memory"):
        store.apply(Action.expire(7), now=9)
    with pytest.raises(UnknownItemError, match="not in memory"):
        store.apply(Action.merge(9, 4), now=9)
    with pytest.raises(UnknownItemError, match="not in the episode"):
        store.apply(Action.write(500), now=5)
    with pytest.raises(UnknownItemError, match="not in the episode"):
        store.apply(Action.skip(), now=-1)


def test_action_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown action kind"):
        Action("store", step=1)
    with pytest.raises(ValueError, match="needs target"):
        Action("expire")
    with pytest.raises(ValueError, match="needs step"):
        Action("write")


def test_episode_json_round_trip(episode: Instance, tmp_path: Path) -> None:
    path = tmp_path / "episode.json"
    episode.dump(path)
    loaded = Instance.load(path)
    assert loaded == episode
    assert (loaded.costs == episode.costs).all()


def test_budget_zero_rejected(episode: Instance) -> None:
    with pytest.raises(ValueError, match="budget_bytes is 0"):
        Instance.generate(0, budget_kib=0)
    data = episode.to_json()
    data["budget_bytes"] = 0
    with pytest.raises(ValueError, match="positive whole number of bytes"):
        Instance.from_json(data)


def test_malformed_episode_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"mode": "default", "steps": [', encoding="utf-8")
    with pytest.raises(EpisodeFormatError, match="not valid JSON"):
        Instance.load(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("steps"), "missing the field 'steps'"),
        (lambda d: d.update(steps="abc"), "'steps' must be a list"),
        (lambda d: d["steps"].__setitem__(0, 5), r"steps\[0\] must be an object"),
        (lambda d: d["steps"][1].pop("observation"), r"steps\[1\] is missing"),
        (lambda d: d["steps"][2].update(t=7), "numbered 0, 1, 2"),
        (lambda d: d.update(utility=[1.0]), "utility has 1 values"),
        (lambda d: d["utility"].__setitem__(0, "x"), r"utility\[0\] must be"),
        (lambda d: d.update(critical_steps=[5, 3]), "sorted and unique"),
        (lambda d: d.update(critical_steps=[900]), "outside the episode"),
        (lambda d: d.update(mode="chaos"), "mode is 'chaos'"),
        (lambda d: d.update(track="vip"), "track is 'vip'"),
        (lambda d: d["steps"][0]["observation"].pop("api"), "non-empty string 'api'"),
        (lambda d: d.update(format="other"), "field 'format'"),
    ],
)
def test_malformed_episode_fields(episode: Instance, change, message: str) -> None:
    data = json.loads(json.dumps(episode.to_json()))
    change(data)
    with pytest.raises(ValueError, match=message):
        Instance.from_json(data)


def test_episode_must_be_object() -> None:
    with pytest.raises(EpisodeFormatError, match="must be a JSON object"):
        Instance.from_json([1, 2])


def _as_writepolicybench(inst: Instance) -> dict:
    return {
        "labels": {
            "mode": inst.mode,
            "episode_id": inst.episode_id,
            "critical_steps": list(inst.critical_steps),
            "utility_by_step": {str(t): u for t, u in enumerate(inst.utility)},
        },
        "steps": [
            {"t": s.t, "observation": s.observation, "metadata": s.metadata} for s in inst.steps
        ],
    }


def test_writepolicybench_jsonl_import(tmp_path: Path) -> None:
    from gaplab.models.write_policy import read_writepolicybench

    originals = [Instance.generate(0, mode="burst_drift", episode_id=e) for e in range(2)]
    path = tmp_path / "episodes.jsonl"
    lines = [json.dumps(_as_writepolicybench(inst), sort_keys=True) for inst in originals]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    loaded = read_writepolicybench(path, budget_bytes=4096)
    assert len(loaded) == 2
    for got, want in zip(loaded, originals, strict=True):
        assert got.steps == want.steps
        assert got.utility == want.utility
        assert got.critical_steps == want.critical_steps
        assert (got.costs == want.costs).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json\n", "line 1: not valid JSON"),
        ('{"steps": []}\n', "line 1: an episode needs"),
        ("\n", "contains no episodes"),
    ],
)
def test_writepolicybench_jsonl_bad_input(tmp_path: Path, text: str, message: str) -> None:
    from gaplab.models.write_policy import read_writepolicybench

    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EpisodeFormatError, match=message):
        read_writepolicybench(path)


def test_writepolicybench_missing_utility(tmp_path: Path) -> None:
    from gaplab.models.write_policy import read_writepolicybench

    raw = _as_writepolicybench(Instance.generate(0, steps=5))
    del raw["labels"]["utility_by_step"]["3"]
    path = tmp_path / "gap.jsonl"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(EpisodeFormatError, match=r"no value for steps \[3\]"):
        read_writepolicybench(path)
