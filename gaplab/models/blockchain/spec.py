"""The two model specs, ``block-exec`` and ``block-build``: suites, extras and registration."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaplab.models.blockchain import build_milp, exec_milp
from gaplab.models.blockchain.ethereum import import_block
from gaplab.models.blockchain.generate import SIZES, generate, grid_instance
from gaplab.models.blockchain.graph import bounds
from gaplab.models.blockchain.instance import BlockInstance
from gaplab.models.blockchain.plot import gantt
from gaplab.models.blockchain.schedule import Schedule
from gaplab.models.blockchain.validate import validate
from gaplab.models.registry import ModelSpec, SuiteInstance
from gaplab.solvers.result import Result, SolveOptions

logger = logging.getLogger(__name__)

PAPER_SPEEDUP = {2: 1.5, 8: 2.3}
"""Headline gas-time speedups of block execution over sequential (paper abstract)."""
EXTRAS_TIME_LIMIT = {True: 3.0, False: 10.0}
"""Seconds for the exact solve of the extras, by ``quick``."""
SHIPPED = Path(__file__).resolve().parents[3] / "data"

SIZE_NAMES = tuple(SIZES) + tuple(f"unit-{size}" for size in SIZES)
"""Generator sizes; ``unit-*`` gives the homogeneous workload."""

# The strengthened exact solve of each instance, kept for the extras of the same run.
_EXACT_CACHE: weakref.WeakKeyDictionary[BlockInstance, Schedule] = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------- exact variants


def _exec_variant(strengthened: bool) -> Callable[..., Any]:
    def run(instance: BlockInstance, backend: str, options: SolveOptions):
        result, schedule = exec_milp.solve_exec(
            _as(instance, "block-exec"), backend, options, strengthened=strengthened
        )
        if strengthened and schedule is not None:
            _EXACT_CACHE[instance] = schedule
        return result, schedule

    return run


def _build_variant(strengthened: bool) -> Callable[..., Any]:
    def run(instance: BlockInstance, backend: str, options: SolveOptions):
        result, schedule = build_milp.solve_build(
            _as(instance, "block-build"), backend, options, strengthened=strengthened
        )
        if strengthened and schedule is not None:
            _EXACT_CACHE[instance] = schedule
        return result, schedule

    return run


def _lp_relaxation(
    instance: BlockInstance, backend: str, options: SolveOptions
) -> tuple[Result, None]:
    return build_milp.solve_lp_relaxation(_as(instance, "block-build"), backend, options)


def _lp_bound(instance: BlockInstance, backend: str, options: SolveOptions) -> tuple[Result, None]:
    return build_milp.solve_lp_bound(_as(instance, "block-build"), backend, options), None


def _as(instance: Any, problem: str) -> BlockInstance:
    if not isinstance(instance, BlockInstance) or instance.problem != problem:
        raise ValueError(f"expected a {problem} instance, got {instance!r:.80}")
    return instance


# ---------------------------------------------------------------------- heuristics


def _heuristic(name: str) -> Callable[..., Any]:
    """Look the heuristic up at call time (the heuristics module imports this package)."""

    def run(instance: BlockInstance) -> Schedule:
        from gaplab.heuristics import blockchain as heuristics

        return getattr(heuristics, name)(instance)

    run.__name__ = name
    return run


EXEC_HEURISTICS = {
    "h1": _heuristic("h1"),
    "h1-time": _heuristic("h1_time"),
    "h1-unit": _heuristic("h1_unit"),
    "sol": _heuristic("sol_batches"),
    "sol-declared": _heuristic("sol_declared"),
    "sequential": _heuristic("sequential"),
}
BUILD_HEURISTICS = {
    "h2": _heuristic("h2"),
    "h2-time": _heuristic("h2_time"),
    "rg": _heuristic("reward_greedy"),
    "rg-tip": _heuristic("reward_greedy_tip"),
}


# ---------------------------------------------------------------------- generate, load, suites


def _generator(problem: str) -> Callable[..., Any]:
    def run(seed: int = 0, size: str = "small", **kwargs: Any) -> BlockInstance:
        workload = "heterogeneous"
        if size.startswith("unit-"):
            size, workload = size[len("unit-") :], "homogeneous"
        kwargs.setdefault("workload", workload)
        return generate(seed, size, problem=problem, **kwargs)

    return run


def _loader(problem: str) -> Callable[..., Any]:
    def run(path: Path) -> BlockInstance:
        return BlockInstance.from_json(path, problem=problem)

    return run


def _importer(problem: str) -> Callable[..., Any]:
    def run(path: Path) -> BlockInstance:
        return import_block(path, problem=problem)

    return run


def _dump(instance: BlockInstance, path: Path) -> None:
    instance.to_json(path)


def _shipped(problem: str) -> list[SuiteInstance]:
    folder = SHIPPED / problem
    if not folder.is_dir():
        return []
    return [
        SuiteInstance(path.stem, BlockInstance.from_json(path, problem=problem), "shipped")
        for path in sorted(folder.glob("*.json"))
    ]


SUITE_BLOCKS = {
    True: (("19923400", "homogeneous"),),
    False: (
        ("15537394", "heterogeneous"),
        ("19923400", "homogeneous"),
        ("19932148", "homogeneous"),
    ),
}
"""Real blocks of the quick and default suites, with the workload each is imported as.

On most heterogeneous instances of 16 or more transactions the plain MILP runs into the time
limit of ``gaplab run`` (10 s by default). So the suites keep only block 15537394, whose
strengthened MILP proves optimality at once, and the plain transfers of the others, which
keeps each model's share of a run within its time budget.
"""


def _real(problem: str, data_dir: Path | None, quick: bool) -> list[SuiteInstance]:
    if data_dir is None:
        return []
    out = []
    for block, workload in SUITE_BLOCKS[quick]:
        path = Path(data_dir) / "blockchain" / f"pevm_mainnet_{block}_block.json"
        if not path.is_file():
            logger.warning("real block %s not found under %s", block, data_dir)
            continue
        instance = import_block(path, problem=problem, workload=workload)
        name = f"eth-{block}" if workload == "heterogeneous" else f"eth-{block}-transfers"
        out.append(SuiteInstance(name, instance, "real"))
    return out


def exec_suite(quick: bool, data_dir: Path | None) -> list[SuiteInstance]:
    """Default ``block-exec`` instances of ``gaplab run``."""
    if quick:
        # The plain MILP-C of a 16-transaction block already runs into the time limit.
        items = [
            SuiteInstance("gen-tiny", generate(1, "tiny")),
            SuiteInstance("gen-unit-small", generate(1, "small", workload="homogeneous")),
        ]
    else:
        # The grid instances stay in the benchmark: their plain MILPs need the whole limit.
        items = _shipped("block-exec")
    return items + _real("block-exec", data_dir, quick)


def build_suite(quick: bool, data_dir: Path | None) -> list[SuiteInstance]:
    """Default ``block-build`` instances of ``gaplab run``."""
    if quick:
        unit = generate(1, "small", problem="block-build", workload="homogeneous")
        items = [
            SuiteInstance("gen-tiny", generate(1, "tiny", problem="block-build")),
            SuiteInstance("gen-unit-small", unit),
        ]
    else:
        items = _shipped("block-build") + [
            SuiteInstance("grid-unit-p2", grid_instance("block-build", "homogeneous", 2)),
        ]
    return items + _real("block-build", data_dir, quick)


# ---------------------------------------------------------------------- extras


def _exact_schedule(instance: BlockInstance, quick: bool) -> Schedule | None:
    cached = _EXACT_CACHE.get(instance)
    if cached is not None:
        return cached
    options = SolveOptions(time_limit=EXTRAS_TIME_LIMIT[quick])
    try:
        if instance.problem == "block-exec":
            _, schedule = exec_milp.solve_exec(instance, "highs", options)
        else:
            _, schedule = build_milp.solve_build(instance, "highs", options)
    except Exception:  # the extras report what they can
        logger.exception("exact solve for the extras of %s failed", instance.name)
        return None
    if schedule is not None:
        _EXACT_CACHE[instance] = schedule
    return schedule


def exec_extras(instance: BlockInstance, out_dir: Path | None, quick: bool) -> list[dict]:
    """Speedup over sequential of each method, heuristic over exact, and Gantt charts."""
    rows: list[dict[str, Any]] = []
    b = bounds(instance)
    if instance.n == 0:
        return rows
    exact = _exact_schedule(instance, quick)
    schedules = {name: run(instance) for name, run in EXEC_HEURISTICS.items()}
    if exact is not None:
        schedules["milp"] = exact
    for name, schedule in schedules.items():
        cmax = schedule.makespan(instance)
        rows.append(
            _extra(f"speedup:{name}", b.work / cmax, "speedup over sequential (Wk / C_max)")
        )
    ideal = min(instance.cores, b.work / b.critical_path)
    rows.append(_extra("speedup:bound", ideal, "upper bound min(p, Wk / CP)"))
    if instance.cores in PAPER_SPEEDUP:
        rows.append(_extra("speedup:paper", PAPER_SPEEDUP[instance.cores], "paper headline"))
    if exact is not None:
        best = exact.makespan(instance)
        for name in ("h1", "sol"):
            ratio = schedules[name].makespan(instance) / best
            rows.append(_extra(f"ratio:{name}/milp", ratio, "heuristic over exact makespan"))
    if out_dir is not None:
        for name in ("h1", "milp"):
            if name in schedules:
                path = Path(out_dir) / f"block-exec-{instance.name}-{name}-gantt.png"
                gantt(instance, schedules[name], path)
                rows.append(_extra(f"gantt:{name}", None, str(path)))
    return rows


def build_extras(instance: BlockInstance, out_dir: Path | None, quick: bool) -> list[dict]:
    """Reward ratios heuristic / MILP and heuristic / LP bounds, throughput, Gantt chart."""
    rows: list[dict[str, Any]] = []
    exact = _exact_schedule(instance, quick)
    options = SolveOptions(time_limit=EXTRAS_TIME_LIMIT[quick])
    bound = build_milp.solve_lp_bound(instance, "highs", options).objective
    plain, _ = build_milp.solve_lp_relaxation(instance, "highs", options)
    schedules = {name: run(instance) for name, run in BUILD_HEURISTICS.items()}
    if exact is not None:
        schedules["milp"] = exact
    for name, schedule in schedules.items():
        reward = schedule.reward(instance)
        if exact is not None and name != "milp":
            rows.append(_extra(f"ratio:{name}/milp", _ratio(reward, exact.reward(instance)), ""))
        if bound is not None:
            rows.append(_extra(f"ratio:{name}/lp-bound", _ratio(reward, bound), ""))
        if plain.objective is not None:
            rows.append(_extra(f"ratio:{name}/lp-relaxation", _ratio(reward, plain.objective), ""))
        selected = schedule.selected
        gas = float(sum(tx.gas for tx, s in zip(instance.transactions, selected, strict=True) if s))
        rows.append(_extra(f"throughput:{name}", float(selected.sum()), f"{gas:.0f} gas"))
    if out_dir is not None:
        for name in ("h2", "milp"):
            if name in schedules:
                path = Path(out_dir) / f"block-build-{instance.name}-{name}-gantt.png"
                gantt(instance, schedules[name], path)
                rows.append(_extra(f"gantt:{name}", None, str(path)))
    return rows


def _ratio(value: float, reference: float) -> float | None:
    if reference <= 0:
        return 1.0 if value <= 0 else None
    return value / reference


def _extra(method: str, value: float | None, note: str) -> dict[str, Any]:
    return {"method": method, "objective": value, "status": "extra", "violations": note}


def _schedule_json(schedule: Schedule) -> dict[str, Any]:
    return {
        "method": schedule.method,
        "core": schedule.core.tolist(),
        "start": [None if s != s else float(s) for s in schedule.start.tolist()],
        **({"note": schedule.info["note"]} if "note" in schedule.info else {}),
    }


# ---------------------------------------------------------------------- specs


BLOCK_EXEC = ModelSpec(
    name="block-exec",
    summary="execute an ordered blockchain block on p cores, min makespan",
    sense="min",
    objective_name="makespan (gas, or rounds when homogeneous)",
    load=_loader("block-exec"),
    generate=_generator("block-exec"),
    exact={"milp": _exec_variant(True), "milp-plain": _exec_variant(False)},
    heuristics=EXEC_HEURISTICS,
    validate=lambda instance, schedule: validate(instance, schedule),
    evaluate=lambda instance, schedule: schedule.makespan(instance),
    dump=_dump,
    suite=exec_suite,
    importers={"eth": _importer("block-exec")},
    sizes=SIZE_NAMES,
    default_exact="milp",
    extras=exec_extras,
    solution_to_json=_schedule_json,
)

BLOCK_BUILD = ModelSpec(
    name="block-build",
    summary="choose and schedule mempool transactions under a runtime limit, max reward",
    sense="max",
    objective_name="reward (gwei)",
    load=_loader("block-build"),
    generate=_generator("block-build"),
    exact={
        "milp": _build_variant(True),
        "milp-plain": _build_variant(False),
        "lp-relaxation": _lp_relaxation,
        "lp-bound": _lp_bound,
    },
    heuristics=BUILD_HEURISTICS,
    validate=lambda instance, schedule: validate(instance, schedule),
    evaluate=lambda instance, schedule: schedule.reward(instance),
    dump=_dump,
    suite=build_suite,
    importers={"eth": _importer("block-build")},
    sizes=SIZE_NAMES,
    default_exact="milp",
    extras=build_extras,
    solution_to_json=_schedule_json,
)
