"""Import an Ethereum block, as returned by ``eth_getBlockByNumber(n, true)``, as an instance.

Such a block lists full transaction objects but no receipts and no per-transaction state
access, so the instance is an approximation (design choices, not from the paper):

Key sets
    Declared access only: every transaction writes ``acct:<from>``, ``acct:<to>`` (when it has
    a recipient; a contract creation has none) and, for each access-list entry, ``acct:<address>``
    and ``slot:<address>:<storage key>``. Everything counts as a write, since a sender's balance
    and nonce change and a call may change the callee. This over-approximates plain transfers
    and under-approximates contract calls, whose internal reads and writes (other contracts,
    storage slots) are not declared; exact sets need re-execution against an archive node.
Fee-recipient rule
    Every transaction credits its priority fee to the block's fee recipient (``miner``); taken
    as a write, that key would join all transactions and forbid any parallelism. It is not a
    key (parallel EVMs credit it after the block). Addresses given explicitly as ``from`` or
    ``to`` keep their keys, even the fee recipient's. As a guard, any key written by more than
    90 % of the transactions of a block of ten or more is dropped too, and logged in ``meta``.
Runtimes
    ``gas`` is the transaction's gas limit, an over-estimate of the gas used (no receipts). In
    the homogeneous workload only plain transfers (empty input) are kept, each one round.
Rewards
    The priority fee per gas: ``min(maxPriorityFeePerGas, maxFeePerGas - baseFee)`` for
    EIP-1559 and blob transactions (types 0x2, 0x3), ``gasPrice - baseFee`` for legacy and
    access-list transactions (types 0x0, 0x1), never below zero; times the gas limit, in gwei.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from gaplab.models.blockchain.instance import BlockInstance, InstanceError, Transaction

logger = logging.getLogger(__name__)

HOT_KEY_SHARE = 0.9
"""A key written by more than this share of a block's transactions is dropped."""
GWEI = 1e9


def import_block(
    source: str | Path,
    *,
    problem: str = "block-exec",
    cores: int = 4,
    workload: str = "heterogeneous",
    budget: float | None = None,
) -> BlockInstance:
    """Read an ``eth_getBlockByNumber`` JSON file into a validated instance.

    Parameters
    ----------
    source
        Path of the block JSON (header fields and a list of full transaction objects).
    problem
        ``block-exec`` (the block in its order) or ``block-build`` (its transactions as a
        mempool).
    cores
        Number p of cores.
    workload
        ``heterogeneous`` (all transactions, runtime = gas limit) or ``homogeneous`` (plain
        transfers only, unit time).
    budget
        Per-core limit B of ``block-build``; by default half of the work per core,
        ``sum t / (2 p)``, and at least the longest runtime.
    """
    path = Path(source)
    try:
        block = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise InstanceError(f"block file {str(path)!r} does not exist") from error
    except json.JSONDecodeError as error:
        raise InstanceError(f"{path.name}: not valid JSON ({error})") from error
    if not isinstance(block, dict) or not isinstance(block.get("transactions"), list):
        raise InstanceError(
            f"{path.name}: expected an eth_getBlockByNumber object with a 'transactions' list"
        )
    base_fee = _quantity(block, "baseFeePerGas", path.name, default=0)
    miner = str(block.get("miner", "")).lower()
    number = _quantity(block, "number", path.name, default=-1)

    rows = []
    for k, tx in enumerate(block["transactions"]):
        where = f"{path.name}: transactions[{k}]"
        if not isinstance(tx, dict):
            raise InstanceError(
                f"{where} is {type(tx).__name__}; the block must hold full transaction objects "
                "(eth_getBlockByNumber with the second argument true)"
            )
        plain = tx.get("input", "0x") in ("0x", "")
        if workload == "homogeneous" and not plain:
            continue
        rows.append(_transaction(tx, where, base_fee))

    dropped = _drop_hot_keys(rows)
    name = f"eth-{number}" if number >= 0 else path.stem
    txs = tuple(rows)
    if problem == "block-build" and budget is None:
        times = [1.0 if workload == "homogeneous" else float(tx.gas) for tx in txs]
        budget = max(max(times, default=1.0), float(round(sum(times) / (2 * cores))))
    return BlockInstance(
        problem=problem,
        name=name,
        cores=cores,
        workload=workload,
        transactions=txs,
        budget=budget if problem == "block-build" else None,
        source="ethereum",
        meta={
            "block": number,
            "fee_recipient": miner,
            "base_fee_gwei": base_fee / GWEI,
            "gas_used": _quantity(block, "gasUsed", path.name, default=0),
            "dropped_keys": dropped,
            "keys": "declared access: from, to, access lists; all writes",
        },
    )


def _transaction(tx: dict[str, Any], where: str, base_fee: int) -> Transaction:
    for field in ("hash", "from", "gas"):
        if field not in tx:
            raise InstanceError(f"{where} has no {field!r} field")
    sender = str(tx["from"]).lower()
    keys = {f"acct:{sender}"}
    if tx.get("to"):
        keys.add(f"acct:{str(tx['to']).lower()}")
    access = tx.get("accessList") or []
    if not isinstance(access, list):
        raise InstanceError(f"{where}.accessList is {access!r}; expected a list")
    for entry in access:
        if not isinstance(entry, dict) or "address" not in entry:
            raise InstanceError(f"{where}.accessList has an entry without an address: {entry!r}")
        address = str(entry["address"]).lower()
        keys.add(f"acct:{address}")
        for slot in entry.get("storageKeys") or []:
            keys.add(f"slot:{address}:{str(slot).lower()}")

    gas = _quantity(tx, "gas", where)
    kind = _quantity(tx, "type", where, default=0)
    if kind in (2, 3):
        tip = min(
            _quantity(tx, "maxPriorityFeePerGas", where),
            _quantity(tx, "maxFeePerGas", where) - base_fee,
        )
    else:
        tip = _quantity(tx, "gasPrice", where) - base_fee
    tip = max(0, tip)
    return Transaction(
        id=str(tx["hash"]).lower(),
        writes=frozenset(keys),
        gas=max(1, gas),
        reward=tip * gas / GWEI,
        tip_per_gas=tip / GWEI,
    )


def _drop_hot_keys(rows: list[Transaction]) -> list[str]:
    """Remove keys written by more than HOT_KEY_SHARE of the transactions (n >= 10)."""
    if len(rows) < 10:
        return []
    counts: dict[str, int] = {}
    for tx in rows:
        for key in tx.writes:
            counts[key] = counts.get(key, 0) + 1
    hot = sorted(key for key, count in counts.items() if count > HOT_KEY_SHARE * len(rows))
    if hot:
        logger.warning("dropping keys written by over 90%% of the transactions: %s", hot)
        for k, tx in enumerate(rows):
            rows[k] = Transaction(
                tx.id, tx.reads, tx.writes - set(hot), tx.gas, tx.reward, tx.tip_per_gas
            )
    return hot


def _quantity(obj: dict[str, Any], field: str, where: str, default: int | None = None) -> int:
    """A hex quantity such as "0x5208" (or a plain integer) as an int."""
    value = obj.get(field)
    if value is None:
        if default is None:
            raise InstanceError(f"{where} has no {field!r} field")
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            pass
    raise InstanceError(f"{where}.{field} is {value!r}; expected a hex quantity such as '0x5208'")
