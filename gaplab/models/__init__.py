"""One subpackage per system; importing this package registers every model spec.

Each subpackage calls :func:`gaplab.models.registry.register` when imported, so adding a model
means adding a folder here.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")
