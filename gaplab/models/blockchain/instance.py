"""Blockchain instances: transactions with read and write key sets, runtimes and rewards.

One :class:`BlockInstance` type serves both models. For ``block-exec`` the row order of the
transactions is the block order; for ``block-build`` the same rows are a mempool and ``budget``
is the per-core runtime limit B.

Units
-----
- ``gas`` is the runtime proxy in gas. The runtime ``t_i`` is 1 round in the homogeneous workload
  (every transaction a simple transfer) and ``gas`` in the heterogeneous one.
- ``budget`` is in the same unit as the runtimes: rounds (homogeneous) or gas (heterogeneous).
- ``reward`` is the priority fee times gas, in gwei; ``tip_per_gas`` is in gwei per gas.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gaplab.models.blockchain.graph import ConflictGraph

PROBLEMS = ("block-exec", "block-build")
WORKLOADS = ("homogeneous", "heterogeneous")
TRANSFER_GAS = 21_000
"""Gas of a plain ether transfer; the default when a transaction gives no gas."""

_KEY_SPLIT = re.compile(r"[;,|\s]+")
_KEY_STRIP = str.maketrans("", "", "[]{}'\"")

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "gaplab blockchain instance (block-exec or block-build)",
    "type": "object",
    "additionalProperties": False,
    "required": ["model", "cores", "workload", "transactions"],
    "properties": {
        "model": {"enum": list(PROBLEMS)},
        "name": {"type": "string"},
        "cores": {"type": "integer", "minimum": 1},
        "workload": {"enum": list(WORKLOADS)},
        "budget": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "description": "block-build only: per-core runtime limit, in rounds (homogeneous) "
            "or gas (heterogeneous)",
        },
        "source": {"type": "string"},
        "meta": {"type": "object"},
        "transactions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "reads": {"type": "array", "items": {"type": "string"}},
                    "writes": {"type": "array", "items": {"type": "string"}},
                    "gas": {"type": "integer", "minimum": 0},
                    "reward": {"type": "number", "minimum": 0},
                    "tip_per_gas": {"type": "number", "minimum": 0},
                },
            },
        },
    },
}
"""JSON Schema of an instance file; :func:`instance_from_dict` enforces the same rules."""


class InstanceError(ValueError):
    """An instance file or dictionary breaks the schema or a rule of the model."""


def parse_keys(text: str | Iterable[str]) -> frozenset[str]:
    """Normalize state keys as the artifact does.

    Lower-case, strip the characters ``[]{}'"``, split on ``[;,|\\s]+`` and drop empty tokens.
    A list is parsed entry by entry.

    >>> sorted(parse_keys("['0xAB'; 0xcd | 0xab]"))
    ['0xab', '0xcd']
    """
    items = [text] if isinstance(text, str) else list(text)
    keys: set[str] = set()
    for item in items:
        cleaned = item.lower().translate(_KEY_STRIP)
        keys.update(token for token in _KEY_SPLIT.split(cleaned) if token)
    return frozenset(keys)


@dataclass(frozen=True)
class Transaction:
    """One transaction: its key sets, gas and reward."""

    id: str
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    gas: int = TRANSFER_GAS
    """Runtime proxy in gas (at least 1)."""
    reward: float = 0.0
    """Priority fee times gas, in gwei."""
    tip_per_gas: float | None = None
    """Priority fee in gwei per gas; ``reward / gas`` when not given."""

    @property
    def tip(self) -> float:
        return self.tip_per_gas if self.tip_per_gas is not None else self.reward / self.gas

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "reads": sorted(self.reads),
            "writes": sorted(self.writes),
            "gas": int(self.gas),
            "reward": float(self.reward),
        }
        if self.tip_per_gas is not None:
            out["tip_per_gas"] = float(self.tip_per_gas)
        return out


@dataclass(frozen=True, eq=False)
class BlockInstance:
    """An ordered block (``block-exec``) or a mempool with a runtime limit (``block-build``).

    Parameters
    ----------
    problem
        ``block-exec`` or ``block-build``.
    name
        Instance name, used in reports.
    cores
        Number p of identical cores.
    workload
        ``homogeneous`` (every runtime is 1 round) or ``heterogeneous`` (runtime = gas).
    transactions
        In block order; ids must be unique.
    budget
        Per-core runtime limit B of ``block-build`` in runtime units; ``None`` for ``block-exec``.
    """

    problem: str
    name: str
    cores: int
    workload: str
    transactions: tuple[Transaction, ...]
    budget: float | None = None
    source: str = "generated"
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_instance(self)

    # ------------------------------------------------------------------ derived data

    @property
    def n(self) -> int:
        return len(self.transactions)

    @property
    def unit(self) -> bool:
        """True for the homogeneous workload, where every runtime is one round."""
        return self.workload == "homogeneous"

    @property
    def time_unit(self) -> str:
        return "rounds" if self.unit else "gas"

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(tx.id for tx in self.transactions)

    @cached_property
    def times(self) -> np.ndarray:
        """Runtime t_i of each transaction (float64): 1 when homogeneous, gas otherwise."""
        if self.unit:
            return np.ones(self.n)
        return np.array([tx.gas for tx in self.transactions], dtype=float)

    @cached_property
    def rewards(self) -> np.ndarray:
        """Reward w_i in gwei."""
        return np.array([tx.reward for tx in self.transactions], dtype=float)

    @cached_property
    def graph(self) -> ConflictGraph:
        """The conflict graph, built once from the inverted key index."""
        from gaplab.models.blockchain.graph import build_conflict_graph

        return build_conflict_graph(self.transactions)

    @property
    def rounds(self) -> int:
        """Rounds R of a homogeneous ``block-build`` instance (the budget)."""
        if self.budget is None:
            raise ValueError(f"instance {self.name!r} has no budget, so it has no round count")
        return int(math.floor(self.budget + 1e-9))

    def with_changes(self, **changes: Any) -> BlockInstance:
        """A copy with some fields replaced (validated again)."""
        fields: dict[str, Any] = {
            "problem": self.problem,
            "name": self.name,
            "cores": self.cores,
            "workload": self.workload,
            "transactions": self.transactions,
            "budget": self.budget,
            "source": self.source,
            "meta": dict(self.meta),
        }
        fields.update(changes)
        return BlockInstance(**fields)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.problem,
            "name": self.name,
            "cores": self.cores,
            "workload": self.workload,
        }
        if self.budget is not None:
            out["budget"] = self.budget
        out["source"] = self.source
        if self.meta:
            out["meta"] = dict(self.meta)
        out["transactions"] = [tx.to_dict() for tx in self.transactions]
        return out

    def to_json(self, path: str | Path | None = None) -> str:
        """The instance as JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        if path is not None:
            from gaplab.modeling.compiled import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def from_json(cls, source: str | Path, *, problem: str | None = None) -> BlockInstance:
        """Read an instance file (a path) and validate it; see :data:`SCHEMA`."""
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise InstanceError(f"instance file {str(path)!r} does not exist") from error
        except json.JSONDecodeError as error:
            raise InstanceError(f"{path.name}: not valid JSON ({error})") from error
        return instance_from_dict(data, problem=problem, name=path.stem)


def instance_from_dict(
    data: Any, *, problem: str | None = None, name: str = "instance"
) -> BlockInstance:
    """Validate a decoded JSON object and build the instance.

    Errors name the field, the value given and what is expected: unknown keys, negative gas,
    duplicate transaction ids, wrong types and a missing budget are all rejected here.
    """
    if not isinstance(data, dict):
        raise InstanceError(f"an instance must be a JSON object, got {type(data).__name__}")
    _no_unknown_keys(data, SCHEMA, "instance")
    for key in SCHEMA["required"]:
        if key not in data:
            raise InstanceError(f"instance is missing the required field {key!r}")
    given = data["model"]
    if given not in PROBLEMS:
        raise InstanceError(f"field 'model' is {given!r}; expected one of {list(PROBLEMS)}")
    if problem is not None and given != problem:
        raise InstanceError(
            f"the file holds a {given!r} instance but model {problem!r} was asked for; "
            f"run it with model {given!r} or regenerate it"
        )
    cores = data["cores"]
    if not _is_int(cores) or cores < 1:
        raise InstanceError(f"field 'cores' is {cores!r}; expected an integer of at least 1")
    budget = data.get("budget")
    if budget is not None and (not _is_number(budget) or not budget > 0):
        raise InstanceError(f"field 'budget' is {budget!r}; expected a positive number")
    for key in ("name", "source"):
        if key in data and not isinstance(data[key], str):
            raise InstanceError(f"field {key!r} is {data[key]!r}; expected a string")
    if "meta" in data and not isinstance(data["meta"], dict):
        raise InstanceError(f"field 'meta' is {data['meta']!r}; expected an object")
    rows = data["transactions"]
    if not isinstance(rows, list):
        raise InstanceError(f"field 'transactions' must be a list, got {type(rows).__name__}")
    transactions = tuple(_transaction(row, k) for k, row in enumerate(rows))
    return BlockInstance(
        problem=given,
        name=data.get("name", name),
        cores=int(cores),
        workload=data["workload"],
        transactions=transactions,
        budget=None if budget is None else float(budget),
        source=data.get("source", "file"),
        meta=data.get("meta", {}),
    )


# ---------------------------------------------------------------------- checks


def _transaction(row: Any, k: int) -> Transaction:
    where = f"transactions[{k}]"
    if not isinstance(row, dict):
        raise InstanceError(f"{where} must be an object, got {row!r}")
    schema = SCHEMA["properties"]["transactions"]["items"]
    _no_unknown_keys(row, schema, where)
    tx_id = row.get("id")
    if not isinstance(tx_id, str) or not tx_id:
        raise InstanceError(f"{where}.id is {tx_id!r}; expected a non-empty string")
    sets = {}
    for key in ("reads", "writes"):
        value = row.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InstanceError(f"{where}.{key} is {value!r}; expected a list of strings")
        sets[key] = parse_keys(value)
    gas = row.get("gas", TRANSFER_GAS)
    if not _is_int(gas):
        raise InstanceError(f"{where}.gas is {gas!r}; expected an integer number of gas")
    if gas < 0:
        raise InstanceError(f"{where}.gas is {gas}; gas must not be negative")
    reward = row.get("reward", 0.0)
    if not _is_number(reward) or not math.isfinite(reward) or reward < 0:
        raise InstanceError(f"{where}.reward is {reward!r}; expected a finite number >= 0 (gwei)")
    tip = row.get("tip_per_gas")
    if tip is not None and (not _is_number(tip) or not math.isfinite(tip) or tip < 0):
        raise InstanceError(f"{where}.tip_per_gas is {tip!r}; expected a finite number >= 0")
    return Transaction(
        id=tx_id,
        reads=sets["reads"],
        writes=sets["writes"],
        gas=max(1, int(gas)),  # the note clamps runtimes to at least 1
        reward=float(reward),
        tip_per_gas=None if tip is None else float(tip),
    )


def _check_instance(instance: BlockInstance) -> None:
    if instance.problem not in PROBLEMS:
        raise InstanceError(f"problem is {instance.problem!r}; expected one of {list(PROBLEMS)}")
    if instance.workload not in WORKLOADS:
        raise InstanceError(
            f"field 'workload' is {instance.workload!r}; expected one of {list(WORKLOADS)}"
        )
    if not _is_int(instance.cores) or instance.cores < 1:
        raise InstanceError(f"cores is {instance.cores!r}; expected an integer of at least 1")
    seen: dict[str, int] = {}
    for k, tx in enumerate(instance.transactions):
        if tx.id in seen:
            raise InstanceError(
                f"duplicate transaction id {tx.id!r} at transactions[{seen[tx.id]}] and "
                f"transactions[{k}]; ids must be unique"
            )
        seen[tx.id] = k
        if tx.gas < 1:
            raise InstanceError(f"transactions[{k}].gas is {tx.gas}; expected at least 1")
        if tx.reward < 0 or not math.isfinite(tx.reward):
            raise InstanceError(f"transactions[{k}].reward is {tx.reward}; expected >= 0")
    if instance.problem == "block-build":
        if instance.budget is None:
            raise InstanceError(
                "a block-build instance needs 'budget', the per-core runtime limit B in rounds "
                "(homogeneous) or gas (heterogeneous)"
            )
        if instance.unit and instance.budget < 1:
            raise InstanceError(
                f"budget is {instance.budget} rounds; a homogeneous block-build instance needs at "
                "least one round"
            )
    elif instance.budget is not None:
        raise InstanceError(
            f"a block-exec instance takes no budget, got {instance.budget!r}; drop the field"
        )


def _no_unknown_keys(data: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    unknown = sorted(set(data) - set(schema["properties"]))
    if unknown:
        raise InstanceError(
            f"{where} has unknown field(s) {unknown}; allowed fields are "
            f"{sorted(schema['properties'])}"
        )


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
