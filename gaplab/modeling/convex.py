"""Separable convex functions of affine arguments, as they appear in compiled models.

A :class:`ConvexTerm` stands for ``sum_i weight_i * f(u_i)`` with ``u = A @ x + b``. Each kind
of ``f`` below provides its value, derivative and domain, which is all the tangent-cut
approximation needs. cvxpy receives the same terms as atoms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

KINDS = ("mm1", "square", "exp", "power", "pwl")
"""Supported functions: ``mm1`` is u / (c - u) on [0, c), ``square`` is u^2, ``exp`` is e^u,
``power`` is u^p on u >= 0 with p >= 1, and ``pwl`` is the maximum of affine pieces."""


@dataclass(frozen=True, eq=False)
class ConvexTerm:
    """``sum_i weight_i * f(A[i] @ x + b[i])`` for one kind of ``f``.

    ``params`` contains per-term arrays: ``capacity`` for ``mm1``, ``exponent`` for ``power``,
    ``slopes`` and ``intercepts`` (shape ``(size, pieces)``) for ``pwl``.
    """

    name: str
    kind: str
    A: sp.csr_matrix
    b: np.ndarray
    weight: np.ndarray
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown convex kind {self.kind!r}; expected one of {KINDS}")

    @property
    def size(self) -> int:
        return int(self.A.shape[0])

    def arguments(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.A @ x + self.b, dtype=float)

    def value(self, x: np.ndarray) -> float:
        """Sum of the weighted function values at ``x``; infinite outside the domain."""
        u = self.arguments(x)
        if self.domain_violation_of(u) > 0:
            return float("inf")
        return float(self.weight @ self.evaluate(u))

    def evaluate(self, u: np.ndarray) -> np.ndarray:
        """Per-term ``f(u)`` for arguments inside the domain."""
        if self.kind == "mm1":
            return u / (self.params["capacity"] - u)
        if self.kind == "square":
            return u * u
        if self.kind == "exp":
            return np.exp(u)
        if self.kind == "power":
            return np.power(np.maximum(u, 0.0), self.params["exponent"])
        slopes, intercepts = self.params["slopes"], self.params["intercepts"]
        return np.max(slopes * u[:, None] + intercepts, axis=1)

    def derivative(self, u: np.ndarray) -> np.ndarray:
        """Per-term ``f'(u)`` (a subgradient for ``pwl``) for arguments inside the domain."""
        if self.kind == "mm1":
            c = self.params["capacity"]
            return c / (c - u) ** 2
        if self.kind == "square":
            return 2.0 * u
        if self.kind == "exp":
            return np.exp(u)
        if self.kind == "power":
            p = self.params["exponent"]
            return p * np.power(np.maximum(u, 0.0), p - 1.0)
        slopes, intercepts = self.params["slopes"], self.params["intercepts"]
        active = np.argmax(slopes * u[:, None] + intercepts, axis=1)
        return slopes[np.arange(len(u)), active]

    def domain_violation_of(self, u: np.ndarray) -> float:
        """Return how far ``u`` lies outside the domain: 0 inside, infinite at the M/M/1 pole."""
        if self.kind == "mm1":
            c = self.params["capacity"]
            if np.any(u >= c):
                return float("inf")
            return float(np.max(-u, initial=0.0))
        if self.kind == "power":
            return float(np.max(-u, initial=0.0))
        return 0.0

    def domain_violation(self, x: np.ndarray) -> float:
        return self.domain_violation_of(self.arguments(x))

    def domain_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper limits of the argument; the M/M/1 upper limit is open."""
        n = self.size
        lower = np.full(n, -np.inf)
        upper = np.full(n, np.inf)
        if self.kind == "mm1":
            lower[:] = 0.0
            upper = np.asarray(self.params["capacity"], dtype=float).copy()
        elif self.kind == "power":
            lower[:] = 0.0
        return lower, upper

    def equals(self, other: ConvexTerm) -> bool:
        if (self.name, self.kind) != (other.name, other.kind):
            return False
        if self.A.shape != other.A.shape or (self.A != other.A).nnz:
            return False
        if not (np.array_equal(self.b, other.b) and np.array_equal(self.weight, other.weight)):
            return False
        if self.params.keys() != other.params.keys():
            return False
        return all(np.array_equal(self.params[k], other.params[k]) for k in self.params)

    def with_columns(self, num_cols: int) -> ConvexTerm:
        """Return the same term with ``A`` widened to ``num_cols`` columns."""
        if self.A.shape[1] == num_cols:
            return self
        A = sp.csr_matrix(
            (self.A.data, self.A.indices, self.A.indptr), shape=(self.A.shape[0], num_cols)
        )
        return ConvexTerm(self.name, self.kind, A, self.b, self.weight, self.params)
