"""The contract every model package fulfils, and the registry the command line reads.

A model package ``gaplab/models/<name>/`` exposes one :class:`ModelSpec` (or several, as the
blockchain package does for ``block-exec`` and ``block-build``) and registers it in
``gaplab/models/__init__.py``. The command line, ``compare`` and ``run`` only talk to specs, so
a new model needs no change there.

The flow of one model, by the names a spec uses:

- ``load`` / ``generate`` / ``importers``: make a validated Instance.
- ``exact[variant](instance, backend, options)``: build the Model, compile, solve, interpret;
  returns the solver Result and the domain Solution (``None`` when there is no point).
- ``heuristics[name](instance)``: return a Solution of the same type.
- ``validate(instance, solution)``: list of violated invariants, empty when feasible.
- ``evaluate(instance, solution)``: the objective of a solution, computed from the instance.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaplab.solvers.result import Result, SolveOptions

logger = logging.getLogger(__name__)

ExactMethod = Callable[[Any, str, SolveOptions], tuple[Result, Any]]
Heuristic = Callable[[Any], Any]


@dataclass(frozen=True)
class SuiteInstance:
    """One instance of a model's default suite for ``gaplab run``."""

    name: str
    instance: Any
    source: str = "generated"
    """``generated``, ``shipped`` (a file in ``data/``) or ``real`` (imported from a data set)."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything the command line needs to know about one model."""

    name: str
    summary: str
    sense: str
    """``min`` or ``max``: the direction in which the objective improves."""
    objective_name: str
    """Name of the objective with its unit, for example ``makespan (gas)``."""
    load: Callable[[Path], Any]
    generate: Callable[..., Any]
    """``generate(seed=..., size=...)``; ``size`` is one of ``sizes``."""
    exact: Mapping[str, ExactMethod]
    heuristics: Mapping[str, Heuristic]
    validate: Callable[[Any, Any], list[str]]
    evaluate: Callable[[Any, Any], float]
    dump: Callable[[Any, Path], None]
    """Write an instance as JSON (atomically)."""
    suite: Callable[[bool, Path | None], list[SuiteInstance]]
    """``suite(quick, data_dir)``: the default instances of ``gaplab run``."""
    importers: Mapping[str, Callable[[Path], Any]] = field(default_factory=dict)
    """Source format name to a function reading that format into an Instance."""
    sizes: tuple[str, ...] = ("small", "medium", "large")
    default_exact: str = ""
    """Variant used by ``solve`` when none is named; the first in ``exact`` otherwise."""
    extras: Callable[[Any, Path | None, bool], list[dict[str, Any]]] | None = None
    """Optional model-specific comparison (simulations, cache replays, convergence runs):
    ``extras(instance, out_dir, quick)`` returns extra table rows and may write plots."""
    solution_to_json: Callable[[Any], Any] | None = None

    @property
    def exact_default(self) -> str:
        return self.default_exact or next(iter(self.exact))

    def pick_importer(self, source: Path) -> Callable[[Path], Any]:
        """Return the importer for ``source``: the only one, or one matching its suffix or name."""
        if not self.importers:
            raise ValueError(f"model {self.name!r} has no importers for real data files")
        if len(self.importers) == 1:
            return next(iter(self.importers.values()))
        suffix = source.suffix.lstrip(".").lower()
        for name, importer in self.importers.items():
            if suffix == name.lower():
                return importer
        for name, importer in self.importers.items():
            if name.lower() in source.name.lower():
                return importer
        raise ValueError(
            f"cannot tell which importer of {self.name!r} reads {source.name!r}; "
            f"known formats: {', '.join(self.importers)}"
        )


@dataclass
class Outcome:
    """One method's solution on one instance, validated."""

    model: str
    instance: str
    method: str
    kind: str
    """``exact`` or ``heuristic``."""
    objective: float | None
    bound: float | None
    seconds: float
    valid: bool | None
    violations: list[str] = field(default_factory=list)
    status: str = ""
    solution: Any = field(default=None, repr=False)
    result: Result | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "instance": self.instance,
            "method": self.method,
            "kind": self.kind,
            "status": self.status,
            "objective": self.objective,
            "bound": self.bound,
            "seconds": self.seconds,
            "valid": self.valid,
            "violations": "; ".join(self.violations[:3]),
        }


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def registered() -> dict[str, ModelSpec]:
    """Return every registered model by name, after importing the model packages."""
    import gaplab.models  # noqa: F401  (importing registers the specs)

    return dict(_REGISTRY)


def get_model(name: str) -> ModelSpec:
    models = registered()
    if name not in models:
        known = ", ".join(sorted(models)) or "none"
        raise KeyError(f"unknown model {name!r}; known models: {known}")
    return models[name]


def run_exact(
    spec: ModelSpec,
    instance: Any,
    instance_name: str,
    variant: str,
    backend: str,
    options: SolveOptions,
) -> Outcome:
    """Solve one exact variant, interpret it and validate the solution."""
    if variant not in spec.exact:
        raise KeyError(
            f"model {spec.name!r} has no exact variant {variant!r}; known: {', '.join(spec.exact)}"
        )
    started = time.perf_counter()
    result, solution = spec.exact[variant](instance, backend, options)
    seconds = time.perf_counter() - started
    outcome = Outcome(
        model=spec.name,
        instance=instance_name,
        method=f"exact:{variant}",
        kind="exact",
        objective=None,
        bound=_finite(result.bound),
        seconds=seconds,
        valid=None,
        status=result.termination.value,
        solution=solution,
        result=result,
    )
    _judge(spec, instance, outcome)
    return outcome


def run_heuristic(spec: ModelSpec, instance: Any, instance_name: str, name: str) -> Outcome:
    """Run one heuristic and validate its solution."""
    if name not in spec.heuristics:
        raise KeyError(
            f"model {spec.name!r} has no heuristic {name!r}; known: {', '.join(spec.heuristics)}"
        )
    started = time.perf_counter()
    solution = spec.heuristics[name](instance)
    seconds = time.perf_counter() - started
    outcome = Outcome(
        model=spec.name,
        instance=instance_name,
        method=name,
        kind="heuristic",
        objective=None,
        bound=None,
        seconds=seconds,
        valid=None,
        # A heuristic may report how it ended, for example an iteration that did not converge.
        status=str(getattr(solution, "status", "") or "heuristic"),
        solution=solution,
    )
    _judge(spec, instance, outcome)
    return outcome


def _judge(spec: ModelSpec, instance: Any, outcome: Outcome) -> None:
    if outcome.solution is None:
        outcome.valid = None
        return
    outcome.violations = list(spec.validate(instance, outcome.solution))
    outcome.valid = not outcome.violations
    outcome.objective = _finite(spec.evaluate(instance, outcome.solution))


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON through a temporary file and a rename."""
    from gaplab.modeling.compiled import atomic_write_text

    atomic_write_text(Path(path), json.dumps(payload, indent=2, sort_keys=False) + "\n")
