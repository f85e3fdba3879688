"""One subpackage per system; importing this package registers every model spec.

Each subpackage calls :func:`gaplab.models.registry.register` when imported, so adding a model
means adding a folder here. A subpackage that fails to import is left out and its error kept
in :data:`import_errors`, so one broken model cannot take the command line down with it.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

logger = logging.getLogger(__name__)

import_errors: dict[str, str] = {}
"""Subpackage name to the error raised while importing it."""

for _module in pkgutil.iter_modules(__path__):
    if not _module.ispkg:
        continue
    try:
        importlib.import_module(f"{__name__}.{_module.name}")
    except Exception as error:  # reported by `gaplab models` and failed by the tests
        import_errors[_module.name] = f"{type(error).__name__}: {error}"
        logger.error("model package %s failed to import: %s", _module.name, error)
