"""The ``write-policy`` model: memory write policies under a hard byte budget.

A stream of API observations drifts over time. At each step a policy may SKIP, WRITE the step,
MERGE it as a delta against a stored base, or EXPIRE stored items. The store rejects every action
that would pass the byte budget. The exact hindsight optimum (a 0/1 knapsack, or a MILP when
MERGE is allowed) measures how much utility each online policy leaves behind.

Flow: :class:`Instance` (generate, load) -> :mod:`build` (MILPs) or :mod:`exact` (DP) ->
interpret to an action log (:class:`Solution`) -> :func:`validate` replays it. Online policies
live in :mod:`gaplab.heuristics.write_policy` and run through :mod:`gaplab.sim.write_policy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaplab.models.registry import ModelSpec, SuiteInstance, register
from gaplab.models.write_policy.actions import Action, Solution, UnknownItemError
from gaplab.models.write_policy.build import (
    solve_knapsack_dp,
    solve_merge_milp,
    solve_write_only_milp,
)
from gaplab.models.write_policy.compare import extras
from gaplab.models.write_policy.generator import MODES
from gaplab.models.write_policy.importer import import_first_episode, read_writepolicybench
from gaplab.models.write_policy.instance import EpisodeFormatError, Instance
from gaplab.models.write_policy.metrics import evaluate, metrics
from gaplab.models.write_policy.store import MemoryStore
from gaplab.models.write_policy.validate import validate

SIZES = {"small": 50, "medium": 200, "large": 1000}
"""Steps per episode for each ``--size``; ``medium`` is WritePolicyBench's episode length."""

POLICY_NAMES = (
    "no_mem",
    "fifo_store_all",
    "uniform_sample",
    "last_kb",
    "priority_threshold",
    "priority_greedy",
    "merge_aggressive",
    "window_exact",
)
"""Online policies registered as heuristics. ``priority_threshold`` and ``priority_greedy`` read
the priority of the privileged track; on the unprivileged track they find none and act on 0."""

DATA_DIR = Path(__file__).resolve().parents[3] / "data" / "write-policy"
"""Episode files shipped with the repository, written by this package's generator."""


def generate(
    seed: int = 0,
    size: str = "medium",
    *,
    mode: str = "default",
    episode_id: int = 0,
    budget_kib: float = 4,
    track: str = "unprivileged",
) -> Instance:
    """Generate an episode of ``SIZES[size]`` steps with a budget of ``budget_kib`` KiB."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    return Instance.generate(
        seed,
        mode=mode,
        episode_id=episode_id,
        budget_kib=budget_kib,
        track=track,
        steps=SIZES[size],
    )


def dump(instance: Instance, path: Path) -> None:
    instance.dump(path)


def _heuristic(name: str) -> Any:
    def run_named(instance: Instance) -> Solution:
        from gaplab.heuristics.write_policy import run

        return run(name, instance)

    run_named.__name__ = name
    return run_named


def suite(quick: bool, data_dir: Path | None = None) -> list[SuiteInstance]:
    """Default instances of ``gaplab run``: seed-0 episodes at 4 KiB on both tracks.

    ``data_dir`` (the real data folder) is not used: no public data set applies to this model.
    """
    if quick:
        picks = [("default", "unprivileged"), ("burst_drift", "privileged")]
    else:
        picks = [(mode, "unprivileged") for mode in MODES]
        picks += [("default", "privileged"), ("burst_drift", "privileged")]
    out = [
        SuiteInstance(inst.label, inst)
        for inst in (Instance.generate(0, mode=m, budget_kib=4, track=t) for m, t in picks)
    ]
    if not quick:
        for path in sorted(DATA_DIR.glob("*.json")):
            inst = Instance.load(path)
            out.append(SuiteInstance(inst.label, inst, source="shipped"))
    return out


def _solution_to_json(solution: Solution) -> dict[str, Any]:
    return solution.to_json()


SPEC = register(
    ModelSpec(
        name="write-policy",
        summary="memory WRITE/MERGE/EXPIRE/SKIP policies on a drifting stream under a byte budget",
        sense="max",
        objective_name="utility U(W) of the final memory (sum of step utilities)",
        load=Instance.load,
        generate=generate,
        exact={
            "knapsack-dp": solve_knapsack_dp,
            "write-only-milp": solve_write_only_milp,
            "merge-milp": solve_merge_milp,
        },
        heuristics={name: _heuristic(name) for name in POLICY_NAMES},
        validate=validate,
        evaluate=evaluate,
        dump=dump,
        suite=suite,
        sizes=tuple(SIZES),
        default_exact="merge-milp",
        extras=extras,
        importers={"jsonl": import_first_episode},
        solution_to_json=_solution_to_json,
    )
)

__all__ = [
    "Action",
    "EpisodeFormatError",
    "Instance",
    "MemoryStore",
    "SPEC",
    "Solution",
    "UnknownItemError",
    "evaluate",
    "generate",
    "metrics",
    "read_writepolicybench",
    "suite",
    "validate",
]
