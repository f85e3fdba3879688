"""Distributed congestion pricing for the traffic model: nodes post prices, sources respond.

Each iteration ``t`` runs, with step ``eta``, price damping ``gamma`` and capacity margin
``delta``:

1. every node ``j`` measures its load ``X_j`` and updates its price
   ``p_j <- (1 - gamma) p_j + gamma C_j(X_j)`` with ``C_j = mu_j / (mu_j - X_j)^2``;
2. every source computes its best response ``BR_i(p)`` in closed form;
3. every node bounds the step so that it stays ``delta`` below capacity:
   ``s_j = min(1, (mu_j - delta - X_j) / (eta D_j))`` when the aggregate change ``D_j > 0``;
4. all sources move by the common step ``s = min_j s_j``:
   ``x <- (1 - eta s) x + eta s BR(p)``.

Every iterate conserves each source's rate, stays nonnegative, keeps every access path below
its capacity (both end points of the step are) and every node ``delta`` below capacity. The
fixed points with ``p = C(X)`` are exactly the optima of the convex program, but the iteration
is not guaranteed to converge: with too little damping it can settle into a cycle, which
:func:`run_pricing` detects and reports.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gaplab.models.traffic.best_response import best_response
from gaplab.models.traffic.delay import node_marginal, objective
from gaplab.models.traffic.feasibility import max_headroom_start
from gaplab.models.traffic.instance import Instance

logger = logging.getLogger(__name__)

StopRule = Literal["change", "certificate"]

PRICE_TOLERANCE = 1e-8
"""Largest ``|p_j - C_j(X_j)|`` accepted by the certificate stopping rule."""
FIXED_POINT_TOLERANCE = 1e-6
"""Largest ``|x - BR(p)|`` accepted by the certificate stopping rule."""


@dataclass
class PricingRun:
    """The outcome and trajectory of one run of the pricing iteration.

    ``status`` is ``converged``, ``cycle`` (the loads repeat, or the changes stopped shrinking
    before the stopping rule was met) or ``iteration_limit``. Histories have one entry per
    completed iteration, after its step.
    """

    flows: np.ndarray
    prices: np.ndarray
    status: str
    iterations: int
    message: str
    seconds: float
    objective_history: np.ndarray
    price_history: np.ndarray
    load_history: np.ndarray
    step_history: np.ndarray
    start_objective: float
    cycle_period: int | None = None
    adjustments: list[tuple[int, float, float]] = field(default_factory=list)
    """(iteration, new eta, new gamma) for every step halving of an adaptive run."""
    gap_reached_at: dict[float, float] = field(default_factory=dict)
    """Relative gap target to wall seconds when ``F`` first came within it of ``reference``."""

    @property
    def converged(self) -> bool:
        return self.status == "converged"


def _relative_change(new: np.ndarray, old: np.ndarray) -> float:
    scale = float(np.linalg.norm(old))
    return float(np.linalg.norm(new - old)) / (scale if scale > 0 else 1.0)


def _cycle_period(loads: list[np.ndarray], max_period: int) -> int | None:
    """Smallest period ``k >= 2`` with which the recent loads repeat while still moving."""
    if len(loads) < 3 * max_period:
        return None
    last = loads[-1]
    scale = max(float(np.linalg.norm(last)), 1e-300)
    moving = float(np.linalg.norm(last - loads[-2])) / scale
    if moving < 1e-6:
        return None
    for period in range(2, max_period + 1):
        # The pattern must repeat over two full periods, each much closer than the motion.
        repeats = all(
            float(np.linalg.norm(loads[-1 - lag] - loads[-1 - lag - period])) / scale
            < 1e-3 * moving
            for lag in range(period)
        )
        if repeats:
            return period
    return None


def _stalled(changes: list[float], patience: int) -> bool:
    """True when the median change did not halve over the last two windows of ``patience``."""
    if len(changes) < 3 * patience:
        return False
    first, second, third = (
        float(np.median(changes[-k * patience : len(changes) - (k - 1) * patience]))
        for k in (3, 2, 1)
    )
    return second >= 0.5 * first and third >= 0.5 * second


def run_pricing(
    instance: Instance,
    *,
    eta: float = 0.25,
    gamma: float = 0.5,
    margin: float = 1e-8,
    tol: float = 1e-10,
    max_iter: int = 4000,
    stop: StopRule = "change",
    safe_step: Literal["scaled", "unscaled"] = "scaled",
    start: np.ndarray | None = None,
    detect_cycles: bool = True,
    max_period: int = 8,
    patience: int = 200,
    adaptive: bool = False,
    min_eta: float = 1e-3,
    reference: float | None = None,
    gap_targets: tuple[float, ...] = (1e-6,),
) -> PricingRun:
    """Run the distributed pricing iteration until it stops.

    Parameters
    ----------
    instance
        The instance.
    eta
        Step toward the best response, in (0, 1].
    gamma
        Price damping, in (0, 1].
    margin
        Capacity margin ``delta`` kept below every node capacity.
    tol
        Relative-change tolerance of the stopping rules.
    max_iter
        Iteration limit.
    stop
        ``change``: stop when ``max(|dx| / |x|, |dp| / |p|) < tol``. ``certificate``: also
        require price consistency ``|p - C(X)| <= 1e-8`` and the fixed point
        ``|x - BR(p)| <= 1e-6``.
    safe_step
        ``scaled``: ``s_j = min(1, (mu_j - delta - X_j) / (eta D_j))``, exactly the largest step
        that keeps node ``j`` at ``delta`` below capacity. ``unscaled``: divide by ``D_j``
        instead, a smaller step whenever the bound binds.
    start
        Feasible (N, M) start; the max-headroom LP split when ``None``.
    detect_cycles
        Stop with status ``cycle`` when the loads repeat with a period of 2 to ``max_period``,
        or when the median relative change of each of the last two windows of ``patience``
        iterations is at least half that of the window before.
    adaptive
        On a detected cycle, halve ``eta`` and ``gamma`` and restart from the start point
        (while ``eta > min_eta``) instead of stopping. Iterations before a restart still count
        toward ``max_iter``. Each change is recorded in ``PricingRun.adjustments``.
    reference
        Optimal ``F*``; when given, the wall time at which ``|F - F*| / F*`` first falls below
        each of ``gap_targets`` is recorded.
    """
    if not 0 < eta <= 1 or not 0 < gamma <= 1:
        raise ValueError(f"eta and gamma must lie in (0, 1], got eta={eta}, gamma={gamma}")
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    if safe_step not in ("scaled", "unscaled"):
        raise ValueError(f"safe_step must be 'scaled' or 'unscaled', got {safe_step!r}")
    if stop not in ("change", "certificate"):
        raise ValueError(f"stop must be 'change' or 'certificate', got {stop!r}")
    started = time.perf_counter()
    if start is None:
        x, _ = max_headroom_start(instance, margin)
    else:
        x = np.array(start, dtype=float)
    mu_node = instance.node_capacity
    if np.any(x.sum(axis=0) > mu_node - margin):
        raise ValueError("the start overloads a node; give a split at least margin below capacity")
    prices = node_marginal(instance, x.sum(axis=0))
    start_objective = objective(instance, x)
    start_flows, start_prices = x.copy(), prices.copy()

    objectives: list[float] = []
    price_rows: list[np.ndarray] = []
    load_rows: list[np.ndarray] = []
    steps: list[float] = []
    reached: dict[float, float] = {}
    status, message, period = "iteration_limit", "", None
    changes: list[float] = []
    adjustments: list[tuple[int, float, float]] = []
    watch_from = 0
    for t in range(1, max_iter + 1):
        # 1. Nodes update and broadcast their prices from the measured loads.
        loads = x.sum(axis=0)
        new_prices = (1.0 - gamma) * prices + gamma * node_marginal(instance, loads)
        # 2. Sources best-respond to the new prices.
        response, _ = best_response(instance, new_prices)
        # 3. Each node bounds the step so its load stays margin below capacity.
        change = response.sum(axis=0) - loads
        node_step = np.ones_like(loads)
        growing = change > 0
        # The "scaled" form divides by the move eta * D_j actually made. The "unscaled" form
        # divides by D_j alone, which is more conservative whenever it binds.
        reach = eta * change[growing] if safe_step == "scaled" else change[growing]
        node_step[growing] = np.minimum(1.0, (mu_node[growing] - margin - loads[growing]) / reach)
        # 4. Everybody moves by the common step.
        step = float(max(0.0, node_step.min()))
        new_x = (1.0 - eta * step) * x + eta * step * response

        dx = _relative_change(new_x, x)
        dp = _relative_change(new_prices, prices)
        x, prices = new_x, new_prices
        f = objective(instance, x)
        objectives.append(f)
        price_rows.append(prices.copy())
        load_rows.append(x.sum(axis=0))
        steps.append(step)
        if reference is not None:
            gap = abs(f - reference) / abs(reference)
            for target in gap_targets:
                if gap <= target and target not in reached:
                    reached[target] = time.perf_counter() - started

        if max(dx, dp) < tol and (stop == "change" or _certified(instance, x, prices)):
            status = "converged"
            message = (
                f"converged after {t} iterations (relative change {max(dx, dp):.2e}, "
                f"eta={eta:g}, gamma={gamma:g})"
            )
            break
        changes.append(max(dx, dp))
        if detect_cycles and t % max_period == 0:
            period = _cycle_period(load_rows[watch_from:][-3 * max_period :], max_period)
        stalled = detect_cycles and t % patience == 0 and _stalled(changes, patience)
        if (period is not None or stalled) and adaptive and eta > min_eta:
            # Halve both steps and restart from the start point, because a cycle near capacity
            # leaves prices so high that damped updates would take very long to forget them.
            eta, gamma = eta / 2.0, gamma / 2.0
            x, prices = start_flows.copy(), start_prices.copy()
            adjustments.append((t, eta, gamma))
            logger.info("pricing on %s: cycle at iteration %d, now eta=%g", instance.name, t, eta)
            period, watch_from = None, len(load_rows)
            changes.clear()
            continue
        if period is not None or stalled:
            status = "cycle"
            if period is not None:
                pattern = f"is cycling with period {period}"
            else:
                pattern = (
                    "is not converging: its relative change has not halved over "
                    f"{2 * patience} iterations"
                )
            message = (
                f"the iteration {pattern} after {t} iterations (eta={eta}, gamma={gamma}); "
                f"rerun with smaller steps, for example eta={eta / 10:g} and gamma={gamma / 10:g}"
            )
            break
    else:
        message = (
            f"stopped at the iteration limit {max_iter} without meeting the stopping rule; "
            "raise max_iter or use smaller steps (eta, gamma)"
        )
    if status != "converged":
        _warn_once(instance, message)
    return PricingRun(
        flows=x,
        prices=prices,
        status=status,
        iterations=len(objectives),
        message=message,
        seconds=time.perf_counter() - started,
        objective_history=np.array(objectives),
        price_history=np.array(price_rows).reshape(-1, instance.num_nodes),
        load_history=np.array(load_rows).reshape(-1, instance.num_nodes),
        step_history=np.array(steps),
        start_objective=start_objective,
        cycle_period=period,
        adjustments=adjustments,
        gap_reached_at=reached,
    )


_WARNED: set[tuple[str, str]] = set()
"""(instance name, message) pairs already logged at WARNING by this process."""


def _warn_once(instance: Instance, message: str) -> None:
    """Log a non-converged run at WARNING the first time, at INFO when the same run repeats.

    ``gaplab run`` and ``compare`` run the same iteration for a heuristic row and again for
    the convergence plot; one warning per instance and message is enough.
    """
    key = (instance.name, message)
    level = logging.INFO if key in _WARNED else logging.WARNING
    _WARNED.add(key)
    logger.log(level, "pricing on %s: %s", instance.name, message)


def _certified(instance: Instance, x: np.ndarray, prices: np.ndarray) -> bool:
    """Price consistency and the best-response fixed point, within their tolerances."""
    price_residual = np.max(np.abs(prices - node_marginal(instance, x.sum(axis=0))))
    if not price_residual <= PRICE_TOLERANCE:
        return False
    response, _ = best_response(instance, prices)
    return bool(np.max(np.abs(x - response)) <= FIXED_POINT_TOLERANCE)
