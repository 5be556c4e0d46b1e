"""Package attributes imported on first use, so that importing a package's light parts stays light.

A package such as :mod:`audiorec.recommenders` re-exports classes whose modules import torch. Snakemake only
needs the package's light modules (its registry, its options) while it builds a DAG; with eager re-exports,
importing any of them would still import torch through the package's ``__init__``. PEP 562's module
``__getattr__`` defers each re-export to its first use instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a module path) on first use."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
