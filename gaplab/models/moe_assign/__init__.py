"""moe-assign: run each activated MoE expert on the CPU or the GPU, minimizing layer time.

During MoE inference on one PC, every layer's activated experts run either on the CPU or on
the GPU (copying the expert over PCIe unless it is cached there). Both devices work at once,
so a layer takes as long as the slower side. The exact 0-1 program is compared with the greedy
rule a runtime would use, and cache and prefetch policies are replayed over routing traces.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaplab.models.moe_assign.build import (
    build,
    solve_brute_force,
    solve_lp_relaxation,
    solve_milp,
)
from gaplab.models.moe_assign.importers import import_popularity, load_popularity
from gaplab.models.moe_assign.instance import Instance, dump, load
from gaplab.models.moe_assign.suite import suite
from gaplab.models.moe_assign.validate import Assignment, evaluate, validate
from gaplab.models.registry import ModelSpec, register

HEURISTIC_NAMES = (
    "greedy",
    "greedy-ratio",
    "greedy-first-crossing",
    "static",
    "cached-gpu",
    "all-cpu",
    "lp-round",
)
"""Keys of :data:`gaplab.heuristics.moe_assign.HEURISTICS`, in the order the tables show."""


def _lazy_heuristic(name: str) -> Callable[[Instance], Assignment]:
    # The heuristics module imports this package, so it is imported on first use instead.
    def run(instance: Instance) -> Assignment:
        from gaplab.heuristics.moe_assign import HEURISTICS

        return HEURISTICS[name](instance)

    run.__name__ = name.replace("-", "_")
    return run


def _extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    # Imported on use for the same reason as the heuristics: it imports the simulators.
    from gaplab.models.moe_assign.extras import extras

    return extras(instance, out_dir, quick)


def _generate(seed: int = 0, size: str = "small", **options: object) -> Instance:
    return Instance.generate(seed=seed, size=size, **options)  # type: ignore[arg-type]


def _solution_to_json(solution: Assignment) -> dict[str, object]:
    return solution.to_json()


SPEC = register(
    ModelSpec(
        name="moe-assign",
        summary="assign MoE experts to CPU or GPU per layer, min layer time",
        sense="min",
        objective_name="layer time (ms)",
        load=load,
        generate=_generate,
        # Brute force applies to small layers only and reports larger ones as not applied.
        exact={"milp": solve_milp, "brute-force": solve_brute_force},
        heuristics={name: _lazy_heuristic(name) for name in HEURISTIC_NAMES},
        validate=validate,
        evaluate=evaluate,
        dump=dump,
        suite=suite,
        importers={"popularity": import_popularity},
        sizes=("small", "medium", "large"),
        default_exact="milp",
        extras=_extras,
        solution_to_json=_solution_to_json,
    )
)

__all__ = [
    "SPEC",
    "Assignment",
    "Instance",
    "build",
    "evaluate",
    "load_popularity",
    "solve_brute_force",
    "solve_lp_relaxation",
    "solve_milp",
    "validate",
]
