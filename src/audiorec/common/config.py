"""Small helpers shared by the config objects of datasets, backbones and recommenders."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from audiorec.errors import ParameterError

ConfigT = TypeVar("ConfigT")


def dataclass_from_mapping(cls: type[ConfigT], mapping: Mapping[str, Any] | None, where: str) -> ConfigT:
    """Build the dataclass ``cls`` from a config mapping, rejecting keys it does not know.

    A typo in a config key would otherwise silently fall back to a default and produce a different
    experiment than the one the user asked for.
    """
    mapping = dict(mapping or {})
    known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ParameterError(f"{where}: unknown option(s) {unknown}; known options are {sorted(known)}")
    try:
        return cls(**mapping)
    except TypeError as error:
        raise ParameterError(f"{where}: {error}") from error


def canonical_json(value: Any) -> str:
    """Serialise a config value with sorted keys and no whitespace variation.

    Snakemake compares ``params`` between runs to decide what to rerun; dict key order or set order
    would make identical configs look different, so every config block reaches a rule through this.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_reject)


def _reject(value: Any) -> Any:
    raise ParameterError(f"config value {value!r} of type {type(value).__name__} is not JSON-serialisable")
