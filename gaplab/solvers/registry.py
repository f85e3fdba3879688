"""Backend names and lookup.

Names: ``highs``, ``pyomo:<solver>``, ``pulp:<solver>`` and ``cvxpy:<SOLVER>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gaplab.solvers.base import Availability, Backend, Capability

logger = logging.getLogger(__name__)

# Family name -> (factory taking the solver part of the name, the family's known solvers).
_FAMILIES: dict[str, tuple[Callable[[str], Backend], tuple[str, ...]]] = {}


class UnknownBackendError(ValueError):
    """The backend name does not name a known family or solver."""


def register_family(name: str, factory: Callable[[str], Backend], solvers: tuple[str, ...]) -> None:
    """Make ``name:<solver>`` resolve through ``factory``; ``backends`` lists ``solvers``."""
    _FAMILIES[name] = (factory, solvers)


def _ensure_registered() -> None:
    if _FAMILIES:
        return
    from gaplab.solvers.highs import HighsBackend

    register_family("highs", lambda solver: HighsBackend(), ("",))
    try:
        from gaplab.solvers import cvxpy_backend, pulp_backend, pyomo_backend
    except ImportError:  # pragma: no cover - the modules exist once the other backends land
        return
    for module in (pyomo_backend, pulp_backend, cvxpy_backend):
        module.register()


def get_backend(name: str) -> Backend:
    """Return the backend called ``name``, for example ``highs`` or ``pulp:cbc``."""
    _ensure_registered()
    if not isinstance(name, str) or not name:
        raise UnknownBackendError(f"backend name must be a non-empty string, got {name!r}")
    family, _, solver = name.partition(":")
    if family not in _FAMILIES:
        raise UnknownBackendError(
            f"unknown backend {name!r}; expected one of {sorted(_FAMILIES)} "
            "(for example highs, pyomo:highs, pulp:cbc, cvxpy:CLARABEL). "
            "Run `gaplab backends` to see what is installed"
        )
    factory, known = _FAMILIES[family]
    if family == "highs":
        if solver:
            raise UnknownBackendError(f"backend 'highs' takes no solver name, got {name!r}")
        return factory("")
    if not solver:
        default = known[0]
        return factory(default)
    return factory(solver)


def all_backends() -> list[Backend]:
    """One backend object for every known family and solver."""
    _ensure_registered()
    found = []
    for family, (factory, solvers) in _FAMILIES.items():
        for solver in solvers:
            try:
                found.append(factory(solver))
            except UnknownBackendError:
                logger.debug("skipping %s:%s", family, solver)
    return found


def backend_table() -> list[dict[str, Any]]:
    """Name, availability, version or install hint, and capabilities of every backend."""
    rows = []
    for backend in all_backends():
        availability: Availability = backend.check_available()
        rows.append(
            {
                "backend": backend.name,
                "available": availability.available,
                "detail": availability.detail,
                "capabilities": sorted(c.value for c in backend.capabilities),
            }
        )
    return rows


def backends_with(*capabilities: Capability) -> list[str]:
    """Names of the available backends that have every one of ``capabilities``."""
    names = []
    for backend in all_backends():
        able = all(c in backend.capabilities for c in capabilities)
        if able and backend.check_available().available:
            names.append(backend.name)
    return names
