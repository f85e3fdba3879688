"""Solver backends that consume a CompiledModel, and the Result they return."""

from __future__ import annotations

from typing import Any

from gaplab.modeling.compiled import CompiledModel
from gaplab.solvers.base import (
    Backend,
    BackendUnavailableError,
    Capability,
    UnsupportedModelError,
)
from gaplab.solvers.registry import (
    UnknownBackendError,
    all_backends,
    backend_table,
    get_backend,
)
from gaplab.solvers.result import (
    Result,
    SolutionStatus,
    SolveError,
    SolveOptions,
    Termination,
)


def solve(model: CompiledModel, backend: str = "highs", **options: Any) -> Result:
    """Solve a compiled model with the named backend.

    ``options`` are the fields of :class:`SolveOptions` (``time_limit``, ``mip_rel_gap``,
    ``threads``, ``verbose``, ``seed``, ``convex_tolerance``, ``warm_start``,
    ``solver_options``).
    """
    try:
        settings = SolveOptions(**options)
    except TypeError:
        import dataclasses

        known = sorted(f.name for f in dataclasses.fields(SolveOptions))
        unknown = sorted(set(options) - set(known))
        raise TypeError(
            f"unknown solve options {unknown}; valid options are {', '.join(known)}"
        ) from None
    return get_backend(backend).solve(model, settings)


__all__ = [
    "Backend",
    "BackendUnavailableError",
    "Capability",
    "Result",
    "SolutionStatus",
    "SolveError",
    "SolveOptions",
    "Termination",
    "UnknownBackendError",
    "UnsupportedModelError",
    "all_backends",
    "backend_table",
    "get_backend",
    "solve",
]
