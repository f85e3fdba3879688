"""Sweep specs: read the YAML, check every field against the model registry, expand the grid.

A spec names one model, the instances, the methods and a time limit. Instances are generated
from seeds, sizes and generator parameters, or read from files. The tasks are the product of
instances and methods::

    model: sweep-toy-gap
    imports: [gaplab.experiments.sweep_toy]   # optional: modules that register more models
    time_limit: 10                             # solver seconds per task
    grace: 10                                  # optional: seconds past the limit before a kill
    instances:
      generate:                                # a mapping, or a list of them
        sizes: [small, medium]
        seeds: [0, 1, 2]                       # or {start: 0, stop: 50}
        params: {tightness: 0.8}               # optional: fixed generator arguments
        grid: {tightness: [0.8, 0.9]}          # optional: generator arguments to vary
      files: [instances/a.json]                # optional: relative to the spec's folder
    methods:
      - exact: milp                            # an exact variant of the model
        backend: highs                         # optional, default highs
        options: {mip_rel_gap: 0.0}            # optional: SolveOptions fields
        label: milp-gap0                       # optional: the name in results and summaries
      - heuristic: greedy

Every mistake raises :class:`SpecError` naming the field, the value and the valid choices,
before anything runs or any file is written.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import itertools
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gaplab.experiments.sweep_task import Task

logger = logging.getLogger(__name__)

SPEC_FIELDS = ("model", "imports", "time_limit", "grace", "instances", "methods")
INSTANCE_FIELDS = ("generate", "files")
GENERATE_FIELDS = ("sizes", "seeds", "params", "grid")
METHOD_FIELDS = ("exact", "heuristic", "backend", "options", "label", "time_limit")
SOLVE_OPTION_FIELDS = (
    "mip_rel_gap",
    "threads",
    "verbose",
    "seed",
    "convex_tolerance",
    "solver_options",
)
DEFAULT_BACKEND = "highs"


class SpecError(ValueError):
    """A sweep spec is invalid; the message names the field and what it accepts."""


def load_spec(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[Task]:
    """Read a sweep spec (a YAML file or its parsed mapping) and return its tasks in grid order.

    Parameters
    ----------
    source
        Path of a YAML file, or the mapping it contains. Relative instance files are resolved
        against the YAML file's folder, or the working folder for a mapping.

    Returns
    -------
    list of Task
        One task per instance and method, instances in the outer loop.

    Raises
    ------
    SpecError
        On an unknown model, method, size, backend, generator parameter or field, or a value of
        the wrong type.
    """
    if isinstance(source, Mapping):
        return _tasks_from_mapping(source, Path.cwd())
    path = Path(source)
    if not path.is_file():
        raise SpecError(f"sweep spec {str(path)!r} not found; pass the path of a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"sweep spec {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise SpecError(
            f"sweep spec {str(path)!r} must contain a mapping with the fields "
            f"{', '.join(SPEC_FIELDS)}; got {type(data).__name__}"
        )
    return _tasks_from_mapping(data, path.resolve().parent)


def _tasks_from_mapping(data: Mapping[str, Any], folder: Path) -> list[Task]:
    _check_fields(data, SPEC_FIELDS, "sweep spec")
    for required in ("model", "time_limit", "instances", "methods"):
        if required not in data:
            raise SpecError(f"sweep spec has no {required!r} field; it is required")

    imports = tuple(_string_list(data.get("imports", []), "imports"))
    for module in imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SpecError(f"imports: module {module!r} cannot be imported: {exc}") from exc

    from gaplab.models.registry import get_model

    try:
        spec = get_model(_string(data["model"], "model"))
    except KeyError as exc:
        raise SpecError(exc.args[0]) from exc

    time_limit = _positive(data["time_limit"], "time_limit")
    grace = _positive(data.get("grace", max(10.0, time_limit)), "grace")
    instances = _instances(data["instances"], spec, folder)
    methods = _methods(data["methods"], spec, time_limit)

    tasks = []
    for instance in instances:
        for method in methods:
            tasks.append(Task(model=spec.name, imports=imports, grace=grace, **instance, **method))
    if not tasks:
        raise SpecError("sweep spec expands to no tasks; list at least one instance and method")
    return tasks


# ---------------------------------------------------------------------- instances


def _instances(value: Any, spec: Any, folder: Path) -> list[dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise SpecError(
            f"instances must be a mapping with {' and/or '.join(INSTANCE_FIELDS)}, got {value!r}"
        )
    _check_fields(value, INSTANCE_FIELDS, "instances")
    found: list[dict[str, Any]] = []
    blocks = value.get("generate", [])
    for block in [blocks] if isinstance(blocks, Mapping) else _list(blocks, "instances.generate"):
        found.extend(_generated(block, spec))
    for name in _string_list(value.get("files", []), "instances.files"):
        found.append(_from_file(name, folder))
    if not found:
        raise SpecError("instances lists no instance; give instances.generate or instances.files")

    names = [item["instance"] for item in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"instances lists the same instance more than once: {', '.join(repeated)}")
    return found


def _generated(block: Any, spec: Any) -> list[dict[str, Any]]:
    where = "instances.generate"
    if not isinstance(block, Mapping):
        raise SpecError(f"{where} must be a mapping with {', '.join(GENERATE_FIELDS)}")
    _check_fields(block, GENERATE_FIELDS, where)
    if "seeds" not in block:
        raise SpecError(f"{where} has no 'seeds' field; give a list of integers or {{start, stop}}")

    sizes = _string_list(block.get("sizes", [spec.sizes[0]]), f"{where}.sizes")
    for size in sizes:
        if size not in spec.sizes:
            raise SpecError(
                f"{where}.sizes: model {spec.name!r} has no size {size!r}; valid sizes: "
                f"{', '.join(spec.sizes)}"
            )
    seeds = _seeds(block["seeds"], f"{where}.seeds")

    fixed = _mapping(block.get("params", {}), f"{where}.params")
    grid = _mapping(block.get("grid", {}), f"{where}.grid")
    _check_generator_params(spec, [*fixed, *grid])
    both = sorted(set(fixed) & set(grid))
    if both:
        raise SpecError(f"{where}: {', '.join(both)} appear in both params and grid; keep one")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}.grid.{name} must be a non-empty list, got {values!r}")

    found = []
    grid_names = sorted(grid)
    for size, combination, seed in itertools.product(
        sizes, itertools.product(*(grid[n] for n in grid_names)), seeds
    ):
        params = {**fixed, **dict(zip(grid_names, combination, strict=True))}
        _check_json(params, f"{where}.params")
        suffix = "".join(f",{k}={json.dumps(v)}" for k, v in sorted(params.items()))
        found.append(
            {
                "instance": f"size={size},seed={seed}{suffix}",
                "seed": seed,
                "size": size,
                "params": tuple(sorted(params.items())),
            }
        )
    return found


def _check_generator_params(spec: Any, names: Sequence[str]) -> None:
    signature = inspect.signature(spec.generate)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return
    accepted = [n for n in signature.parameters if n not in ("seed", "size")]
    for name in names:
        if name in ("seed", "size"):
            raise SpecError(
                f"instances.generate: give {name!r} through the {name}s field, not as a parameter"
            )
        if name not in accepted:
            raise SpecError(
                f"instances.generate: the generator of {spec.name!r} has no parameter {name!r}; "
                f"valid parameters: {', '.join(accepted) or 'none'}"
            )


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, Mapping):
        _check_fields(value, ("start", "stop"), where)
        if "start" not in value or "stop" not in value:
            raise SpecError(f"{where} as a mapping needs both start and stop, got {dict(value)}")
        start = _integer(value["start"], f"{where}.start")
        stop = _integer(value["stop"], f"{where}.stop")
        seeds = list(range(start, stop))
    else:
        seeds = [_integer(s, where) for s in _list(value, where)]
    if not seeds:
        raise SpecError(f"{where} is empty; give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{where} repeats a seed: {seeds}")
    return seeds


def _from_file(name: str, folder: Path) -> dict[str, Any]:
    path = (folder / name).resolve()
    if not path.is_file():
        raise SpecError(f"instances.files: {name!r} not found (looked for {path})")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"instance": name, "instance_file": str(path), "digest": digest}


# ---------------------------------------------------------------------- methods


def _methods(value: Any, spec: Any, time_limit: float) -> list[dict[str, Any]]:
    found = []
    for entry in _list(value, "methods"):
        if not isinstance(entry, Mapping):
            raise SpecError(
                f"methods: each entry must be a mapping such as {{exact: <variant>}} or "
                f"{{heuristic: <name>}}, got {entry!r}"
            )
        _check_fields(entry, METHOD_FIELDS, "methods entry")
        if ("exact" in entry) == ("heuristic" in entry):
            raise SpecError(
                f"methods entry {dict(entry)} must name exactly one of 'exact' or 'heuristic'"
            )
        limit = _positive(entry.get("time_limit", time_limit), "methods.time_limit")
        found.append(
            _exact(entry, spec, limit) if "exact" in entry else _heuristic(entry, spec, limit)
        )
    if not found:
        raise SpecError("methods is empty; list at least one exact variant or heuristic")

    labels = [m["method"] for m in found]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise SpecError(
            f"methods lists {', '.join(repeated)} more than once; give the entries distinct labels"
        )
    return found


def _exact(entry: Mapping[str, Any], spec: Any, limit: float) -> dict[str, Any]:
    variant = _string(entry["exact"], "methods.exact")
    if variant not in spec.exact:
        raise SpecError(
            f"methods: model {spec.name!r} has no exact variant {variant!r}; valid variants: "
            f"{', '.join(spec.exact)}"
        )
    backend = _string(entry.get("backend", DEFAULT_BACKEND), "methods.backend")
    _check_backend(backend)
    options = _mapping(entry.get("options", {}), "methods.options")
    _check_fields(options, SOLVE_OPTION_FIELDS, "methods.options")
    _check_json(options, "methods.options")

    from gaplab.solvers.result import SolveOptions

    try:
        SolveOptions(time_limit=limit, **options)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"methods.options of exact variant {variant!r}: {exc}") from exc

    label = f"exact:{variant}"
    if backend != DEFAULT_BACKEND or options:
        settings = [backend] + [f"{k}={json.dumps(v)}" for k, v in sorted(options.items())]
        label += f"[{','.join(settings)}]"
    return {
        "method": _string(entry.get("label", label), "methods.label"),
        "kind": "exact",
        "name": variant,
        "backend": backend,
        "options": tuple(sorted(options.items())),
        "time_limit": limit,
    }


def _heuristic(entry: Mapping[str, Any], spec: Any, limit: float) -> dict[str, Any]:
    name = _string(entry["heuristic"], "methods.heuristic")
    if name not in spec.heuristics:
        raise SpecError(
            f"methods: model {spec.name!r} has no heuristic {name!r}; valid heuristics: "
            f"{', '.join(spec.heuristics) or 'none'}"
        )
    for field in ("backend", "options"):
        if field in entry:
            raise SpecError(f"methods: heuristic {name!r} takes no {field!r}; remove it")
    return {
        "method": _string(entry.get("label", name), "methods.label"),
        "kind": "heuristic",
        "name": name,
        "time_limit": limit,
    }


def _check_backend(name: str) -> None:
    from gaplab.solvers import UnknownBackendError, get_backend

    try:
        backend = get_backend(name)
    except UnknownBackendError as exc:
        raise SpecError(f"methods.backend: {exc}") from exc
    availability = backend.check_available()
    if not availability.available:
        raise SpecError(f"methods.backend: {name!r} is not available here: {availability.detail}")


# ---------------------------------------------------------------------- small checks


def _check_fields(value: Mapping[str, Any], valid: Sequence[str], where: str) -> None:
    for key in value:
        if key not in valid:
            raise SpecError(f"{where} has unknown field {key!r}; valid fields: {', '.join(valid)}")


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SpecError(f"{where} must be a list, got {value!r}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    return [_string(item, where) for item in _list(value, where)]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a mapping, got {value!r}")
    return dict(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where} must contain integers, got {value!r}")
    return value


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SpecError(f"{where} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_json(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where} must contain plain JSON values, got {value!r}: {exc}") from exc
