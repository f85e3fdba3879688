"""Seeded generator of blocks and mempools, calibrated to the instance grid of the design note.

The generator draws (design choice, not from the paper):

- senders from a Zipf-like account pool, so some senders repeat and chain through their balance;
- gas with a heavy tail: plain transfers take 21,000 gas, contract calls 21,000 plus a Pareto
  amount (shape 1.6), capped at 3M, for a mean near 70k gas;
- a few hot keys (think of a busy token or pool contract) written by a share of the contract
  calls, picked Zipf-like among them, so that the longest conflict chain L is a sizeable part of
  n as in the real blocks (n/L between about 2 and 12);
- read-only keys (oracle prices) shared by many calls, which do not conflict;
- log-normal tips in gwei per gas (median 1.5 gwei); the reward is tip times gas, in gwei.

A homogeneous workload holds only plain transfers (keys {sender, recipient}, runtime 1 round);
hot keys are then a few exchange deposit addresses that many transfers pay into.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gaplab.models.blockchain.instance import TRANSFER_GAS, BlockInstance, Transaction

GAS_CAP = 3_000_000
EXEC_BUDGET_PER_CORE = 2_100_000
"""Heterogeneous problem (i): windows hold at most 2.1M gas per core (100 transfers' worth)."""
BUILD_BUDGET = 630_000
"""Heterogeneous problem (ii): the per-core runtime limit B in gas."""
BUILD_ROUNDS = 100
"""Homogeneous problem (ii): R rounds."""

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n": 8, "cores": 2},
    "small": {"n": 16, "cores": 2},
    "medium": {"n": 48, "cores": 4},
    "large": {"n": 200, "cores": 8},
}
"""Named sizes of :func:`generate` (n transactions, p cores)."""


def check_seed(seed: object) -> None:
    """Raise ValueError unless ``seed`` is a non-negative integer, as numpy's generators need."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"invalid seed {seed!r}: expected a non-negative integer such as 0")


def generate(
    seed: int = 0,
    size: str = "small",
    *,
    problem: str = "block-exec",
    workload: str = "heterogeneous",
    n: int | None = None,
    cores: int | None = None,
    budget: float | None = None,
    hot_keys: int | None = None,
    hot_share: float = 0.4,
    transfer_share: float = 0.35,
    name: str | None = None,
) -> BlockInstance:
    """A random instance; the same arguments give the same instance.

    Parameters
    ----------
    seed
        Seed of numpy's default generator.
    size
        One of :data:`SIZES`; ``n`` and ``cores`` override it.
    problem
        ``block-exec`` or ``block-build``.
    workload
        ``homogeneous`` (plain transfers, unit time) or ``heterogeneous`` (runtime = gas).
    budget
        Per-core limit of ``block-build`` in runtime units. By default the mempool holds about
        twice what fits: ``sum t / (2 p)``, rounded, and at least the largest runtime.
    hot_keys, hot_share
        Number of hot keys (by default 3, or n / 250 for large n so that the longest chain stays
        a similar share of the block), and the share of transactions that write one of them.
    transfer_share
        Share of plain transfers in a heterogeneous workload.
    """
    check_seed(seed)
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
    count = int(n if n is not None else SIZES[size]["n"])
    p = int(cores if cores is not None else SIZES[size]["cores"])
    if count < 0:
        raise ValueError(f"n must be zero or positive, got {count}")
    if hot_keys is None:
        hot_keys = max(3, count // 250)
    rng = np.random.default_rng(seed)
    txs = _transactions(rng, count, workload, hot_keys, hot_share, transfer_share)
    if problem == "block-build" and budget is None:
        times = [1.0 if workload == "homogeneous" else float(tx.gas) for tx in txs]
        budget = max(max(times, default=1.0), float(round(sum(times) / (2 * p))))
    return BlockInstance(
        problem=problem,
        name=name or f"{problem}-{workload[:6]}-n{count}-p{p}-s{seed}",
        cores=p,
        workload=workload,
        transactions=tuple(txs),
        budget=budget if problem == "block-build" else None,
        source="generated",
        meta={"seed": seed, "hot_keys": hot_keys, "hot_share": hot_share},
    )


def grid_instance(
    problem: str, workload: str, cores: int, window: int = 0, *, x: int = 2, seed: int = 0
) -> BlockInstance:
    """One instance of the design note's grid, window ``window`` of (problem, workload, p).

    - (i) homogeneous: n = 100 p transfers; (i) heterogeneous: the longest run with
      sum gas <= 2.1M p.
    - (ii) homogeneous: R = 100 rounds and n = R p; (ii) heterogeneous: B = 630,000 gas and the
      longest run with sum gas <= x p B.
    """
    check_seed(seed)
    stream = 1_000_003 * seed + 10_007 * cores + 101 * window + (0 if workload[0] == "h" else 7)
    rng_seed = stream + (0 if problem == "block-exec" else 500_000) + 13 * x
    tag = f"{problem}-{workload[:6]}-p{cores}-w{window}"
    if workload == "homogeneous":
        if problem == "block-exec":
            return generate(
                rng_seed, problem=problem, workload=workload, n=100 * cores, cores=cores, name=tag
            )
        return generate(
            rng_seed,
            problem=problem,
            workload=workload,
            n=BUILD_ROUNDS * cores,
            cores=cores,
            budget=float(BUILD_ROUNDS),
            name=tag,
        )
    if problem == "block-exec":
        limit, budget = EXEC_BUDGET_PER_CORE * cores, None
    else:
        limit, budget = x * cores * BUILD_BUDGET, float(BUILD_BUDGET)
        tag += f"-x{x}"
    # Draw a long run and cut it at the gas limit, as the artifact cuts chain history.
    guess = max(8, int(2 * limit / 70_000))
    pool = generate(
        rng_seed, problem=problem, workload=workload, n=guess, cores=cores, budget=budget, name=tag
    )
    gas = np.cumsum([tx.gas for tx in pool.transactions])
    count = int(np.searchsorted(gas, limit, side="right"))
    return pool.with_changes(transactions=pool.transactions[:count], budget=budget)


def _transactions(
    rng: np.random.Generator,
    n: int,
    workload: str,
    hot_keys: int,
    hot_share: float,
    transfer_share: float,
) -> list[Transaction]:
    if workload not in ("homogeneous", "heterogeneous"):
        raise ValueError(f"workload is {workload!r}; expected 'homogeneous' or 'heterogeneous'")
    pool = max(8, n)
    sender_weights = 1.0 / (np.arange(1, pool + 1) + 5.0) ** 1.2
    senders = rng.choice(pool, size=n, p=sender_weights / sender_weights.sum())
    hot_weights = 1.0 / np.arange(1, max(1, hot_keys) + 1)
    hot_pick = rng.choice(max(1, hot_keys), size=n, p=hot_weights / hot_weights.sum())
    is_hot = rng.random(n) < (hot_share if hot_keys > 0 else 0.0)
    recipients = rng.integers(0, 4 * pool, size=n)
    tips = np.exp(rng.normal(math.log(1.5), 1.0, size=n))

    if workload == "homogeneous":
        is_transfer = np.ones(n, dtype=bool)
        gas = np.full(n, TRANSFER_GAS, dtype=np.int64)
    else:
        is_transfer = rng.random(n) < transfer_share
        extra = (rng.pareto(1.6, size=n) + 1.0) * 28_000.0
        gas = np.where(is_transfer, TRANSFER_GAS, np.minimum(GAS_CAP, TRANSFER_GAS + extra))
        gas = gas.astype(np.int64)
    contracts = rng.integers(0, pool, size=n)
    slots = rng.integers(0, 4, size=n)
    oracle = rng.random(n) < 0.3

    txs = []
    for i in range(n):
        sender = f"acct:{int(senders[i]):05d}"
        writes = {sender}
        reads: set[str] = set()
        if is_transfer[i]:
            if is_hot[i]:
                writes.add(f"acct:hot{int(hot_pick[i])}")
            else:
                writes.add(f"acct:r{int(recipients[i]):05d}")
        elif is_hot[i]:
            writes.add(f"pool{int(hot_pick[i])}:reserves")
            reads.add(f"pool{int(hot_pick[i])}:fee")
        else:
            writes.add(f"contract{int(contracts[i]):05d}:slot{int(slots[i])}")
        if oracle[i] and not is_transfer[i]:
            reads.add("oracle:eth-usd")
        tip = round(float(tips[i]), 6)
        txs.append(
            Transaction(
                id=f"tx{i:05d}",
                reads=frozenset(reads),
                writes=frozenset(writes),
                gas=int(gas[i]),
                reward=round(tip * int(gas[i]), 3),
                tip_per_gas=tip,
            )
        )
    return txs
