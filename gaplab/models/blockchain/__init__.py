"""Blockchain block execution (``block-exec``) and block construction (``block-build``).

See ``../shared/design/models/blockchain.md`` for the model note this package follows.
"""
