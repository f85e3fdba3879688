"""Blockchain block execution (``block-exec``) and block construction (``block-build``).

The package follows ``../shared/design/models/blockchain.md``. Its steps, by module:

- ``instance``: the validated :class:`BlockInstance` and its JSON schema;
  ``generate``: the seeded generator and the design note's grid; ``ethereum``: the importer of
  ``eth_getBlockByNumber`` blocks.
- ``graph``: the conflict graph from an inverted key index, and the lower bounds.
- ``exec_milp`` and ``build_milp``: build, solve and interpret the exact models.
- ``schedule``: the one solution type; ``validate``: the one validator.
- ``spec``: the two registered :class:`~gaplab.models.registry.ModelSpec` objects.

Heuristics and baselines live in :mod:`gaplab.heuristics.blockchain`.
"""

from gaplab.models.blockchain.instance import BlockInstance, InstanceError, Transaction
from gaplab.models.blockchain.schedule import Schedule
from gaplab.models.blockchain.spec import BLOCK_BUILD, BLOCK_EXEC
from gaplab.models.registry import register

register(BLOCK_EXEC)
register(BLOCK_BUILD)

__all__ = [
    "BLOCK_BUILD",
    "BLOCK_EXEC",
    "BlockInstance",
    "InstanceError",
    "Schedule",
    "Transaction",
]
