"""Lazy registries: a config ``kind`` maps to its traits, its options class and its implementation.

An entry names two places: the class that does the work (``"module:Class"``, which may import torch,
transformers or librosa) and the dataclass of its options, which lives in a light module. The traits say what
the workflow needs to know about a kind (does it want a GPU, is it trained, does it read embeddings, …). So
Snakemake builds its DAG and checks every option of the config without importing a single heavy dependency;
a job imports the implementation it runs, and nothing else.

A kind that is not built in may come from outside audiorec (:mod:`audiorec.common.plugins`): an import target or
an installed entry point, resolved once and then treated like a built-in kind.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from audiorec.common.config import dataclass_from_mapping
from audiorec.common.plugins import PluginSource, class_target, code_version, find_plugin, import_plugin_target
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


@dataclass(frozen=True)
class PluginHooks(Generic[TraitsT]):
    """How a family takes kinds from outside audiorec.

    ``group`` is the entry-point group searched by name; ``traits_of`` reads the traits a plugin class declares
    (for a kind that names the class itself); ``prepare`` checks a plugin class once it is imported and gives it
    what the family's code reads from built-in classes (its ``kind``, its traits).
    """

    group: str
    traits_of: Callable[[type], TraitsT]
    prepare: Callable[[type, str, TraitsT], None]


class Registry(Mapping[str, Registered[TraitsT]]):
    """The kinds of one family (backbones, models); an unknown kind is an error that lists the known ones."""

    def __init__(
        self, family: str, entries: Mapping[str, Registered[TraitsT]], plugins: PluginHooks[TraitsT] | None = None
    ) -> None:
        self.family = family
        self.entries = dict(entries)
        self.plugins = plugins
        self._resolved: dict[str, tuple[Registered[TraitsT], PluginSource]] = {}
        self._code_versions: dict[str, dict[str, Any]] = {}

    def __getitem__(self, kind: str) -> Registered[TraitsT]:
        if isinstance(kind, str) and kind in self.entries:
            return self.entries[kind]
        plugin = self._plugin(kind)
        if plugin is None:
            where = f" (or an import target 'package.module:Name', or an entry point in {self.plugins.group})"
            raise ParameterError(
                f"unknown {self.family} kind {kind!r}; known kinds are {sorted(self.entries)}"
                + (where if self.plugins else "")
            )
        return plugin[0]

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, str) and (kind in self.entries or self._plugin(kind) is not None)

    def is_plugin(self, kind: str) -> bool:
        """Whether ``kind`` comes from outside audiorec."""
        return kind not in self.entries and self._plugin(kind) is not None

    def _plugin(self, kind: Any) -> tuple[Registered[TraitsT], PluginSource] | None:
        """The descriptor of plugin ``kind`` and where it was found, resolved once; None if ``kind`` names none."""
        if self.plugins is None or not isinstance(kind, str):
            return None
        if kind not in self._resolved:
            source = find_plugin(self.plugins.group, kind)
            if source is None:
                return None
            self._resolved[kind] = (self._describe(kind, source), source)
        return self._resolved[kind]

    def _describe(self, kind: str, source: PluginSource) -> Registered[TraitsT]:
        """The descriptor ``source`` names, or one built from the class it names."""
        assert self.plugins is not None
        what = f"{self.family} kind {kind!r}"
        target = import_plugin_target(source.target, what)
        if isinstance(target, Registered):
            return target
        if not isinstance(target, type):
            raise ParameterError(f"{what}: {source.target} is neither a class nor a Registered descriptor")
        options_class = getattr(target, "options_class", None)
        if not isinstance(options_class, type) or not dataclasses.is_dataclass(options_class):
            raise ParameterError(f"{what}: class {target.__name__} declares no options_class dataclass")
        return Registered(class_target(target), class_target(options_class), self.plugins.traits_of(target))

    def code_version(self, kind: str) -> dict[str, Any] | None:
        """What identifies a plugin kind's code (:func:`audiorec.common.plugins.code_version`); None if built in."""
        if not self.is_plugin(kind):
            return None
        if kind not in self._code_versions:  # read once: the workflow asks for it in every job's parameters
            registered, source = self._resolved[kind]
            targets = (source.target, registered.implementation, registered.options)
            self._code_versions[kind] = code_version(source, [target.split(":")[0] for target in targets])
        return self._code_versions[kind]

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
        """Import and return the class that implements ``kind``; a plugin class is checked and prepared first."""
        registered = self[kind]
        if not self.is_plugin(kind):
            return import_target(registered.implementation)
        assert self.plugins is not None
        implementation = import_plugin_target(registered.implementation, f"{self.family} kind {kind!r}")
        self.plugins.prepare(implementation, kind, registered.traits)
        return implementation

    def options_class(self, kind: str) -> type:
        """The dataclass of ``kind``'s options (a light import)."""
        if not self.is_plugin(kind):
            return import_target(self[kind].options)
        return import_plugin_target(self[kind].options, f"{self.family} kind {kind!r}")

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
