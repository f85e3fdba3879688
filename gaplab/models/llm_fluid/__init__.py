"""llm-fluid: fluid-LP control of prefill/decode contention when n GPUs serve LLM requests.

The flow, by module:

- ``instance``: the Instance (request classes, GPU constants, prices, GPUs), JSON, ``generate``;
- ``importers``: request classes from an Azure trace, GPU constants from a vidur profile;
- ``build``: the bundled, separate and service-level LPs declared with gaplab.modeling;
- ``solve``: compile, solve and ``interpret`` into a :class:`FluidPlan`; service-level sweeps;
- ``solution``: the plan, its ``validate``, its revenue and the admission reading of the duals;
- ``checks``: validation and evaluation of plans and of simulated policy outcomes;
- ``compare``: the default suite and the simulation extras of ``gaplab compare`` and ``run``.

Policies live in :mod:`gaplab.heuristics.llm_fluid` and the simulator in
:mod:`gaplab.sim.llm_fluid`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaplab.models.llm_fluid.checks import evaluate, validate
from gaplab.models.llm_fluid.importers import (
    classes_from_trace,
    import_csv,
    instance_from_profile,
)
from gaplab.models.llm_fluid.instance import (
    SIZES,
    Instance,
    dump,
    generate,
    load,
    two_class_instance,
)
from gaplab.models.llm_fluid.solution import FluidPlan, admission
from gaplab.models.llm_fluid.solve import bundled, separate, solve_fluid, sweep, with_service_levels
from gaplab.models.registry import ModelSpec, SuiteInstance, register
from gaplab.sim.llm_fluid_policies import POLICY_NAMES

# The policies, the simulator and the comparison import this package, so they are imported
# when first used rather than here.


def _heuristic(name: str) -> Any:
    def run(instance: Instance) -> Any:
        from gaplab.heuristics.llm_fluid import run_policy

        return run_policy(name, instance)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = f"Simulate policy {name} on the instance's GPUs."
    return run


def suite(quick: bool, data_dir: Path | None) -> list[SuiteInstance]:
    """Return the default instances of ``gaplab run``; see :func:`compare.suite`."""
    from gaplab.models.llm_fluid import compare

    return compare.suite(quick, data_dir)


def extras(instance: Instance, out_dir: Path | None, quick: bool) -> list[dict[str, Any]]:
    """Simulate every policy against the LP value; see :func:`compare.extras`."""
    from gaplab.models.llm_fluid import compare

    return compare.extras(instance, out_dir, quick)


def _solution_to_json(answer: object) -> object:
    to_json = getattr(answer, "to_json", None)
    return to_json() if callable(to_json) else None


SPEC = register(
    ModelSpec(
        name="llm-fluid",
        summary="LLM serving with prefill/decode contention on n GPUs: fluid LPs and policies",
        sense="max",
        objective_name="revenue per GPU per second",
        load=load,
        generate=generate,
        exact={"bundled": bundled, "separate": separate, "sli": with_service_levels},
        heuristics={name: _heuristic(name) for name in POLICY_NAMES},
        validate=validate,
        evaluate=evaluate,
        dump=dump,
        suite=suite,
        # pick_importer matches the file suffix first, so every .csv file reaches import_csv,
        # which reads the header to distinguish a trace from a vidur profile.
        importers={
            "azure": classes_from_trace,
            "vidur": instance_from_profile,
            "csv": import_csv,
        },
        sizes=tuple(SIZES),
        default_exact="bundled",
        extras=extras,
        solution_to_json=_solution_to_json,
    )
)

__all__ = [
    "SPEC",
    "FluidPlan",
    "Instance",
    "admission",
    "classes_from_trace",
    "generate",
    "instance_from_profile",
    "load",
    "two_class_instance",
    "solve_fluid",
    "sweep",
]
