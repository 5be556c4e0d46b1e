"""Lazy registries: a config ``kind`` maps to ``"module:Class"``, imported only when a config chooses it.

Heavy dependencies (torch, transformers) are then loaded by the jobs that need them and never by
Snakemake while it builds the DAG.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from audiorec.errors import ParameterError


def resolve(registry: Mapping[str, str], kind: str, what: str) -> type:
    """Import and return the class registered under ``kind``; an unknown kind lists the known ones."""
    try:
        target = registry[kind]
    except (KeyError, TypeError):
        raise ParameterError(f"unknown {what} {kind!r}; known kinds are {sorted(registry)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)
