"""Kinds from outside audiorec: an import target (``"mypkg.models:MyBackbone"``) or an entry point's name.

A researcher puts their own backbone or recommender in the same table as the built-in ones by naming it as the
``kind`` of a config entry; nothing in audiorec is edited. A kind that is not built in is looked up as

1. an import target, when it contains a colon: ``"package.module:Name"``;
2. else the name of an entry point in the family's group (``audiorec.backbones``, ``audiorec.recommenders``)
   of an installed distribution: ``pip install`` of a package that declares one makes its kinds usable by name.

Either names a *descriptor* (a :class:`~audiorec.common.registry.Registered`: implementation and options as
``"module:Class"`` strings, and the traits), which keeps building the DAG as light as for built-in kinds, or the
implementation class itself, which then declares ``options_class`` and its traits as class attributes (importing
it at plan time imports whatever its module imports).

What identifies a plugin's code is recorded in the job's parameters (:func:`code_version`): its distribution's
version and a digest of its source modules, so editing the plugin reruns its jobs and their descendants only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiorec.errors import ParameterError


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin kind was found: the ``"module:name"`` it names, and the distribution that ships it."""

    target: str
    distribution: str | None = None
    version: str | None = None


def find_plugin(group: str, kind: str) -> PluginSource | None:
    """The plugin ``kind`` names in entry-point ``group``, or None when it names none."""
    if not isinstance(kind, str):
        return None
    if ":" in kind:
        return PluginSource(kind, *_distribution_of(kind.split(":", 1)[0]))
    for entry_point in importlib.metadata.entry_points(group=group, name=kind):
        dist = entry_point.dist
        return PluginSource(entry_point.value, dist.name if dist else None, dist.version if dist else None)
    return None


@functools.cache
def _distribution_of(module: str) -> tuple[str | None, str | None]:
    """The installed distribution that provides ``module``'s top-level package, and its version."""
    names = importlib.metadata.packages_distributions().get(module.split(".")[0], [])
    if not names:
        return None, None
    return names[0], importlib.metadata.version(names[0])


def import_plugin_target(target: str, what: str) -> Any:
    """Import the object ``target`` (``"module:name"``) names; any failure is one line naming ``what`` and why."""
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise ParameterError(f"{what}: {target!r} is not an import target of the form 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise ParameterError(f"{what}: cannot import {module_name}: {type(error).__name__}: {error}") from error
    try:
        return getattr(module, name)
    except AttributeError:
        raise ParameterError(f"{what}: module {module_name} has no attribute {name!r}") from None


def class_target(cls: type) -> str:
    """The ``"module:Class"`` string of ``cls``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def code_version(source: PluginSource, modules: list[str]) -> dict[str, Any]:
    """What identifies a plugin's code: its distribution and version, and a sha256 over its source modules.

    The modules are the descriptor's, the implementation's and the options' (read without importing them). An
    editable install keeps its version while its code changes, so the digest is what catches an edit to them; a
    change to another module they import is caught by a new version of the distribution. Only those modules count,
    so editing one kind of a package reruns that kind's jobs, not every kind the package declares.
    """
    digest = hashlib.sha256()
    for module in sorted(set(modules)):
        path = _source_file(module)
        digest.update(module.encode())
        digest.update(path.read_bytes() if path else b"")
    package = f"{source.distribution}=={source.version}" if source.distribution else None
    return {"target": source.target, "package": package, "sources_sha256": digest.hexdigest()}


@functools.cache
def modules_code_version(modules: tuple[str, ...]) -> dict[str, Any]:
    """:func:`code_version` of code a built-in kind runs from outside audiorec (a HEAR module), found by name;
    computed once per process, since the workflow asks for it in every job's parameters."""
    return code_version(PluginSource(modules[0], *_distribution_of(modules[0])), list(modules))


def _source_file(module: str) -> Path | None:
    """The ``.py`` file of ``module`` (its ``__init__.py`` for a package), or None for one without a file."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)
