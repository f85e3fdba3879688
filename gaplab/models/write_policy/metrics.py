"""Metrics of a final memory: recall, precision and F1 on critical steps, utility, regret, ...

With R the critical (drift) steps and W the retained set of the final memory:

- recall = |W cap R| / |R|, precision = |W cap R| / |W|, F1 their harmonic mean;
- utility U(W) = sum of u_t over W, utility per KiB = U(W) / (bytes used / 1024);
- regret = U*(B) - U(W) against the WRITE-only optimum, not clamped, so a policy that beats
  that optimum with MERGE shows a negative regret (``regret_clamped`` is WritePolicyBench's
  ``max(0, regret)``);
- drift coverage = |W cap R| / number of drift events, staleness = mean of T_last - t over W,
  utilization = bytes used / B, expire rate = accepted EXPIREs / accepted WRITEs, write
  density = |W| / T.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gaplab.models.write_policy.actions import Solution, UnknownItemError
from gaplab.models.write_policy.instance import Instance
from gaplab.models.write_policy.store import MemoryStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinalMemory:
    """Memory after replaying a solution's action log."""

    retained: tuple[int, ...]
    """The retained set W, sorted."""
    bytes_used: int
    writes: int
    merges: int
    expires: int
    skipped: int
    """Logged actions the store rejected or could not resolve during the replay."""


def replay(instance: Instance, solution: Solution) -> FinalMemory:
    """Replay ``solution.actions`` through a fresh :class:`MemoryStore`.

    Actions the store rejects, or that name unknown items, are counted in ``skipped`` and
    change nothing; :func:`gaplab.models.write_policy.validate.validate` reports them.
    """
    store = MemoryStore(instance)
    counts = {"write": 0, "merge": 0, "expire": 0, "skip": 0}
    skipped = 0
    for logged in solution.actions:
        try:
            decision = store.apply(logged.action, now=logged.at)
        except UnknownItemError as error:
            logger.debug("replay of %s: %s", solution.method, error)
            skipped += 1
            continue
        if decision.accepted:
            counts[logged.action.kind] += 1
        else:
            skipped += 1
    return FinalMemory(
        retained=tuple(store.retained_steps()),
        bytes_used=store.used_bytes,
        writes=counts["write"],
        merges=counts["merge"],
        expires=counts["expire"],
        skipped=skipped,
    )


def utility_of(instance: Instance, retained: tuple[int, ...] | list[int]) -> float:
    """Return U(W), the sum of hidden utilities over the retained steps."""
    return float(sum(instance.utility[t] for t in retained))


def f1_score(instance: Instance, retained: tuple[int, ...] | list[int]) -> float:
    """Return the F1 score of ``retained`` against the critical steps (0 when undefined)."""
    hits = len(set(retained) & set(instance.critical_steps))
    denominator = len(retained) + len(instance.critical_steps)
    return 0.0 if denominator == 0 else 2.0 * hits / denominator


def evaluate(instance: Instance, solution: Solution) -> float:
    """Return the utility U(W) of the memory that ``solution`` leaves behind."""
    return utility_of(instance, replay(instance, solution).retained)


def metrics(
    instance: Instance, solution: Solution, write_only_optimum: float | None = None
) -> dict[str, Any]:
    """Return every metric of the final memory of ``solution`` as a flat mapping.

    ``write_only_optimum`` is U*(B); without it the regret fields are ``None``.
    """
    final = replay(instance, solution)
    retained = set(final.retained)
    critical = set(instance.critical_steps)
    hits = len(retained & critical)
    recall = hits / len(critical) if critical else 0.0
    precision = hits / len(retained) if retained else 0.0
    f1 = 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
    utility = utility_of(instance, final.retained)
    last = instance.num_steps - 1
    regret = None if write_only_optimum is None else write_only_optimum - utility
    ratio = None
    if write_only_optimum:
        ratio = utility / write_only_optimum
    return {
        "method": solution.method,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "utility": utility,
        "utility_per_kib": 0.0 if final.bytes_used <= 0 else utility / (final.bytes_used / 1024),
        "optimum_write_only": write_only_optimum,
        "regret": regret,
        "regret_clamped": None if regret is None else max(0.0, regret),
        "competitive_ratio": ratio,
        "drift_coverage": recall,
        "avg_staleness": (sum(last - t for t in retained) / len(retained) if retained else 0.0),
        "expire_rate": final.expires / final.writes if final.writes else 0.0,
        "utilization": final.bytes_used / instance.budget_bytes,
        "write_density": len(retained) / instance.num_steps,
        "bytes_used": final.bytes_used,
        "retained": len(retained),
        "merges": final.merges,
        "rejected": solution.rejected,
    }
