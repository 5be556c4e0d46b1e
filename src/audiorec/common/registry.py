"""Lazy registries: a config ``kind`` maps to its traits, its options class and its implementation.

An entry names two places: the class that does the work (``"module:Class"``, which may import torch,
transformers or librosa) and the dataclass of its options, which lives in a light module. The traits say what
the workflow needs to know about a kind (does it want a GPU, is it trained, does it read embeddings, …). So
Snakemake builds its DAG and checks every option of the config without importing a single heavy dependency;
a job imports the implementation it runs, and nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import ParameterError

TraitsT = TypeVar("TraitsT")


@dataclass(frozen=True)
class Registered(Generic[TraitsT]):
    """One kind: where its implementation and its options dataclass live, and what the workflow needs of it."""

    implementation: str
    options: str
    traits: TraitsT


def import_target(target: str) -> Any:
    """The object a ``"module:name"`` string names, imported now."""
    module_name, name = target.split(":")
    return getattr(importlib.import_module(module_name), name)


class Registry(Mapping[str, Registered[TraitsT]]):
    """The kinds of one family (backbones, models); an unknown kind is an error that lists the known ones."""

    def __init__(self, family: str, entries: Mapping[str, Registered[TraitsT]]) -> None:
        self.family = family
        self.entries = dict(entries)

    def __getitem__(self, kind: str) -> Registered[TraitsT]:
        try:
            return self.entries[kind]
        except (KeyError, TypeError):
            raise ParameterError(
                f"unknown {self.family} kind {kind!r}; known kinds are {sorted(self.entries)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def traits(self, kind: str, where: str = "") -> TraitsT:
        """What the workflow needs to know of ``kind``, without importing its implementation.

        ``where`` (e.g. ``"models.knn"``) names the config entry in the error an unknown kind raises.
        """
        try:
            return self[kind].traits
        except ParameterError as error:
            raise ParameterError(f"{where}: {error}" if where else str(error)) from None

    def load(self, kind: str) -> type:
        """Import and return the class that implements ``kind``."""
        return import_target(self[kind].implementation)

    def options_class(self, kind: str) -> type:
        """The dataclass of ``kind``'s options (a light import)."""
        return import_target(self[kind].options)

    def check_options(self, kind: str, options: Mapping[str, Any] | None, where: str) -> Any:
        """Validate a config block's ``options`` for ``kind`` as the implementation will, before any job runs.

        An options class with a ``from_mapping`` classmethod validates itself (it may normalise values); any
        other is built with :func:`audiorec.common.config.dataclass_from_mapping`, which rejects unknown keys.
        """
        options_class = self.options_class(kind)
        try:
            if hasattr(options_class, "from_mapping"):
                return options_class.from_mapping(dict(options or {}))
            return dataclass_from_mapping(options_class, options, f"{self.family} {kind}")
        except ParameterError as error:
            raise ParameterError(f"{where}: {error}") from error
