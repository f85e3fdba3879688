"""The Assignment solution type, its independent validator and the layer time it yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from gaplab.models.moe_assign.instance import Instance

MS_PER_S = 1e3
"""The exact program and :func:`evaluate` measure layer time in milliseconds."""


@dataclass(frozen=True, eq=False)
class Assignment:
    """The device of each activated expert: ``on_gpu[i]`` for the expert ``experts[i]``."""

    experts: np.ndarray
    """Expert ids, in the instance's order."""
    on_gpu: np.ndarray
    """``x_e``: True runs the expert on the GPU (copying it first unless cached)."""
    method: str = ""
    lower_bound: float | None = None
    """Lower bound on the optimal layer time (ms) that the method proved, such as the LP
    relaxation value of ``lp-round``, or ``None``."""

    @classmethod
    def of(
        cls,
        instance: Instance,
        on_gpu: ArrayLike,
        method: str = "",
        lower_bound: float | None = None,
    ) -> Assignment:
        """Wrap a 0-1 vector over ``instance``'s experts."""
        experts = np.asarray(instance.experts)
        return cls(experts, np.asarray(on_gpu, dtype=bool), method, lower_bound)

    def gpu_set(self) -> list[int]:
        """Ids of the experts placed on the GPU."""
        return [int(e) for e in self.experts[np.asarray(self.on_gpu, dtype=bool)]]

    def cpu_set(self) -> list[int]:
        """Ids of the experts placed on the CPU."""
        return [int(e) for e in self.experts[~np.asarray(self.on_gpu, dtype=bool)]]

    def to_json(self) -> dict[str, Any]:
        """Return the two expert sets, and the lower bound when there is one, as JSON values."""
        data: dict[str, Any] = {"method": self.method, "gpu": self.gpu_set(), "cpu": self.cpu_set()}
        if self.lower_bound is not None:
            data["lower_bound"] = self.lower_bound
        return data


def loads(instance: Instance, on_gpu: ArrayLike) -> tuple[float, float]:
    """Return the (GPU load, CPU load) in seconds of a 0-1 vector over the experts.

    GPU load is ``gpu_base_s + sum_e x_e g_e`` when copies and kernels share one stream, or the
    overlapped form described at :attr:`Instance.copy_overlap`. CPU load is
    ``sum_e (1 - x_e) p_e``.
    """
    x = np.asarray(on_gpu, dtype=bool)
    if instance.copy_overlap:
        copies = np.where(x & instance.uncached, instance.transfer_s, 0.0)
        kernels = instance.gpu_cost - np.where(instance.cached, 0.0, instance.transfer_s)
        first_copy = float(copies.max()) if len(copies) else 0.0
        compute = float(instance.gpu_base_s + kernels[x].sum()) + first_copy
        gpu = max(float(copies.sum()), compute)
    else:
        gpu = float(instance.gpu_base_s + instance.gpu_cost[x].sum())
    cpu = float(instance.cpu_cost[~x].sum())
    return gpu, cpu


def layer_time(instance: Instance, on_gpu: ArrayLike) -> float:
    """Return ``max(GPU load, CPU load)`` in seconds: the two devices run concurrently."""
    return max(loads(instance, on_gpu))


def evaluate(instance: Instance, solution: Assignment) -> float:
    """Return the layer time of ``solution`` in milliseconds, computed from the instance.

    Milliseconds, unlike the seconds of the instance, keep layer times above 1, so the
    relative gaps that solvers and reports compute against ``max(1, |objective|)`` stay
    meaningful.
    """
    return layer_time(instance, solution.on_gpu) * MS_PER_S


def validate(instance: Instance, solution: Assignment) -> list[str]:
    """List the ways ``solution`` breaks the model's rules; empty when it is feasible.

    Checks that the solution covers exactly the instance's experts in order, that every
    decision is 0 or 1, and that at most ``slot_limit`` uncached experts go to the GPU.
    """
    problems: list[str] = []
    if not isinstance(solution, Assignment):
        return [f"expected an Assignment, got {type(solution).__name__}"]
    experts = np.asarray(solution.experts)
    values = np.asarray(solution.on_gpu)
    if values.shape != (instance.n,):
        return [
            f"the assignment has {values.size} decisions, expected one per expert ({instance.n})"
        ]
    if experts.shape != instance.experts.shape or not np.array_equal(experts, instance.experts):
        problems.append("the assignment's expert ids differ from the instance's activated experts")
    numeric = values.astype(float)
    fractional = ~np.isin(numeric, (0.0, 1.0))
    if fractional.any():
        e = int(instance.experts[np.argmax(fractional)])
        problems.append(f"decision of expert {e} is {numeric[fractional][0]!r}, not 0 or 1")
        return problems
    on_gpu = numeric.astype(bool)
    if instance.slot_limit is not None:
        copies = int(np.count_nonzero(on_gpu & instance.uncached))
        if copies > instance.slot_limit:
            problems.append(
                f"{copies} uncached experts go to the GPU, more than slot_limit="
                f"{instance.slot_limit}"
            )
    return problems
