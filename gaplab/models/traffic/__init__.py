"""The ``traffic`` model: split source traffic over service nodes under joint M/M/1 congestion.

N sources split fixed rates over M service nodes. Every access path (i, j) and every node j is
an M/M/1 queue, and the objective is the flow-weighted total delay
``F = sum_ij x_ij / (mu_ij - x_ij) + sum_j X_j / (mu_j - X_j)`` (plus optional propagation
delays), a strictly convex program with a unique optimum. Beside the exact solves sit the
distributed pricing iteration, in which nodes post congestion prices and sources best-respond,
and simple split policies.

The flow: :class:`Instance` -> :func:`build` -> compile -> backend -> Allocation ->
:func:`validate`; :func:`certify` reports the KKT and Wardrop residuals of any split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaplab.models.registry import ModelSpec, SuiteInstance, register
from gaplab.models.traffic.build import build
from gaplab.models.traffic.certificate import Certificate, certify
from gaplab.models.traffic.delay import Allocation, objective
from gaplab.models.traffic.exact import solve_direct, solve_exact
from gaplab.models.traffic.feasibility import DemandDoesNotFitError, check_feasible
from gaplab.models.traffic.generate import SIZES, generate, pubsub_instance, symmetric_instance
from gaplab.models.traffic.importers import IMPORTERS, import_network
from gaplab.models.traffic.instance import Instance, InstanceError, dump, load
from gaplab.models.traffic.report import extras
from gaplab.models.traffic.validate import evaluate, validate
from gaplab.solvers.result import Result, SolveOptions

logger = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parents[3] / "data" / "traffic"
"""Folder of the instance files shipped with the repository."""


def _exact_convex(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, Allocation | None]:
    """Solve the gaplab model with ``backend`` as given.

    ``cvxpy:<SOLVER>`` takes the M/M/1 terms natively; ``highs``, ``pulp`` and ``pyomo`` backends
    take them through tangent cuts and report ``approximation_gap``.
    """
    return solve_exact(instance, backend, options)


def _exact_cvxpy(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, Allocation | None]:
    """Cross-check on the native convex path: ``backend`` if it is cvxpy, else cvxpy:CLARABEL.

    A non-cvxpy ``backend`` is ignored; ``Result.backend`` names the backend that ran.
    """
    chosen = backend if backend.startswith("cvxpy") else "cvxpy:CLARABEL"
    if chosen != backend:
        logger.info("exact:cvxpy on %s runs %s, not %s", instance.name, chosen, backend)
    return solve_exact(instance, chosen, options)


def _exact_direct(
    instance: Instance, backend: str, options: SolveOptions
) -> tuple[Result, Allocation | None]:
    """Cross-check: the hand-written cvxpy program with Clarabel, whatever ``backend`` says.

    ``Result.backend`` is ``cvxpy-direct:CLARABEL``.
    """
    if backend != "cvxpy:CLARABEL":
        logger.info("exact:direct on %s runs cvxpy-direct:CLARABEL, not %s", instance.name, backend)
    return solve_direct(instance, options)


def _generate(seed: int = 0, size: str = "small", **kwargs: Any) -> Instance:
    return generate(seed=seed, size=size, **kwargs)


def _shipped_pubsub() -> Instance:
    path = SHIPPED / "pubsub-5x3.json"
    if path.is_file():
        return load(path)
    logger.debug("%s not found; rebuilding the pub-sub instance", path)
    return pubsub_instance()


def suite(quick: bool, data_dir: Path | None) -> list[SuiteInstance]:
    """Default instances of ``gaplab run``: the shipped 5x3 case, generated and real networks."""
    instances = [SuiteInstance("pubsub-5x3", _shipped_pubsub(), "shipped")]
    if not quick:
        instances.append(SuiteInstance("symmetric-5x3", symmetric_instance(), "generated"))
        instances.append(SuiteInstance("generated-40x8-seed1", generate(1, "medium"), "generated"))
    if data_dir is not None:
        folder = Path(data_dir) / "network"
        names = ["repetita_Abilene.graph"]
        if not quick:
            names += [
                "repetita_AttMpls.graph",
                "repetita_Geant2012.graph",
                "topologyzoo_Abilene.graphml",
                "topologyzoo_Geant2012.graphml",
            ]
        for file_name in names:
            path = folder / file_name
            if path.is_file():
                instances.append(SuiteInstance(path.stem, import_network(path), "real"))
            else:
                logger.warning("network file %s not found; skipping it", path)
    return instances


HEURISTIC_NAMES = (
    "pricing",
    "pricing-fixed",
    "pricing-windowed",
    "access-only",
    "proportional",
    "equal-split",
    "server-only",
    "single-path",
)
"""Names of :data:`gaplab.heuristics.traffic.HEURISTICS`, listed here to avoid an import cycle."""


def _heuristic(name: str) -> Callable[[Instance], Allocation]:
    def run(instance: Instance) -> Allocation:
        from gaplab.heuristics.traffic import HEURISTICS

        return HEURISTICS[name](instance)

    run.__name__ = name.replace("-", "_")
    return run


def _solution_to_json(solution: Allocation) -> dict[str, Any]:
    return solution.to_json()


SPEC = register(
    ModelSpec(
        name="traffic",
        summary="split source traffic over service nodes under joint access and node M/M/1 delay",
        sense="min",
        objective_name="flow-weighted total delay F (work units in system)",
        load=load,
        generate=_generate,
        exact={"convex": _exact_convex, "cvxpy": _exact_cvxpy, "direct": _exact_direct},
        heuristics={name: _heuristic(name) for name in HEURISTIC_NAMES},
        validate=validate,
        evaluate=evaluate,
        dump=dump,
        suite=suite,
        importers=IMPORTERS,
        sizes=tuple(SIZES),
        default_exact="convex",
        extras=extras,
        solution_to_json=_solution_to_json,
    )
)

__all__ = [
    "Allocation",
    "Certificate",
    "DemandDoesNotFitError",
    "Instance",
    "InstanceError",
    "SPEC",
    "build",
    "certify",
    "check_feasible",
    "generate",
    "import_network",
    "objective",
    "pubsub_instance",
    "solve_direct",
    "solve_exact",
    "symmetric_instance",
    "validate",
]
