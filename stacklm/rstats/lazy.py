"""``scipy.stats``, imported when first used: importing it costs ~0.4 s, paid by every job that
imports a module naming it at the top (the moderate job needs none of it with the default
settings)."""

from __future__ import annotations

import importlib


class LazyModule:
    """A module imported on first attribute access (``stats.t.sf`` as with ``from scipy import
    stats``)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


#: ``scipy.stats``, imported on first use
stats = LazyModule("scipy.stats")
