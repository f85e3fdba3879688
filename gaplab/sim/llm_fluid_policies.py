"""Serving policies for the llm-fluid simulator, described as plain data.

A policy is a combination of four mechanisms, so the simulator needs no callbacks:

- ``admission``: which waiting prefill starts when a prefill slot is free. ``gate`` picks the
  class whose prefill occupancy is furthest below its LP target ``n x_i*``; ``fcfs`` takes the
  oldest request of any class; ``priority`` takes the class that comes first in ``priority``.
- ``partition``: with a static partition (``SP``), M = ceil(n sum_i x_i*) GPUs reserve one slot
  for prefills and hold at most B-1 decodes, and the other GPUs never prefill and hold B
  decodes. Without it (``WSP``), any GPU runs at most one prefill, which takes one of its B slots.
- ``coupled``: the decode runs in the slot that did the prefill, at once (``immediate``).
  Otherwise a finished prefill goes through the decode router.
- ``router``: ``greedy`` places a decode on a solo GPU when one has a free slot, then on a
  prefill GPU, else in one FCFS buffer; ``randomized`` sends class i to the solo pool with
  probability ``p_s,i`` and to the prefill pool otherwise, each pool with its own buffer.
- ``decode_first``: a freed slot serves a waiting decode before a new prefill (only matters
  without a partition, where slots are shared).
- ``hold_prefills``: no prefill starts while a decode waits in a buffer. This is a design choice
  for an ablation, not part of gate-and-route as defined by its authors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

POLICY_NAMES = ("GG-SP", "GG-SP-hold", "PR-SP", "SLI-GG", "FI-WSP", "GI-WSP", "GF-WSP", "FG-SP")
"""Policies in report order: the LP-based ones, then the four baselines."""

ADMISSIONS = ("gate", "fcfs", "priority")
ROUTERS = ("greedy", "randomized")


@dataclass(frozen=True)
class Policy:
    """One serving policy: its mechanisms and the LP targets they read.

    Attributes
    ----------
    name
        Label in reports, for example ``GG-SP``.
    admission, partition, coupled, router, decode_first, hold_prefills
        The mechanisms described in the module docstring.
    prefill_target
        ``x_i*`` per class (prefills in service per GPU); the gate never admits a class whose
        target is zero.
    queue_target
        ``q_p,i*`` per class; the gate breaks ties in favour of the larger ``Q_p,i - n q_p,i*``.
    prefill_share
        ``sum_i x_i*``; with a partition, M = ceil(n * prefill_share).
    priority
        Class order for ``priority`` admission, first served first.
    solo_share
        ``p_s,i``, the probability that the randomized router sends class i to the solo pool.
    """

    name: str
    admission: str
    partition: bool
    coupled: bool = False
    router: str = "greedy"
    decode_first: bool = True
    hold_prefills: bool = False
    prefill_target: tuple[float, ...] = ()
    queue_target: tuple[float, ...] = ()
    prefill_share: float = 0.0
    priority: tuple[int, ...] = ()
    solo_share: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.admission not in ADMISSIONS:
            raise ValueError(f"unknown admission {self.admission!r}; choose one of {ADMISSIONS}")
        if self.router not in ROUTERS:
            raise ValueError(f"unknown router {self.router!r}; choose one of {ROUTERS}")
        if self.router == "randomized" and not self.partition:
            raise ValueError("the randomized router needs a static partition (partition=True)")
        if self.coupled and self.partition:
            raise ValueError("a coupled (immediate decode) policy has no static partition")
        if self.partition and not 0 <= self.prefill_share <= 1 + 1e-9:
            raise ValueError(f"prefill_share must lie in [0, 1], got {self.prefill_share}")

    def partition_size(self, gpus: int) -> int:
        """Return M, the number of GPUs with a reserved prefill slot (all GPUs without one)."""
        if not self.partition:
            return gpus
        return int(min(gpus, np.ceil(gpus * self.prefill_share - 1e-9)))
