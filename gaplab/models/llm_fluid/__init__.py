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

from gaplab.heuristics.llm_fluid import HEURISTICS
from gaplab.models.llm_fluid.checks import evaluate, validate
from gaplab.models.llm_fluid.compare import extras, suite
from gaplab.models.llm_fluid.importers import classes_from_trace, instance_from_profile
from gaplab.models.llm_fluid.instance import SIZES, Instance, dump, generate, load, paper_instance
from gaplab.models.llm_fluid.solution import FluidPlan, admission
from gaplab.models.llm_fluid.solve import bundled, separate, solve_fluid, sweep, with_service_levels
from gaplab.models.registry import ModelSpec, register


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
        heuristics=HEURISTICS,
        validate=validate,
        evaluate=evaluate,
        dump=dump,
        suite=suite,
        # pick_importer tries these in order: a vidur profile is also a CSV file.
        importers={
            "azure": classes_from_trace,
            "vidur": instance_from_profile,
            "csv": classes_from_trace,
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
    "paper_instance",
    "solve_fluid",
    "sweep",
]
