"""Dataset sources: each module turns one source into the workflow's tables (tracks, interactions, labels, ...).

Sources are registered by name and imported only when chosen, so selecting the embedded demo world never
pulls in the dependencies of a real dataset's reader (and the other way round).

Every source module provides ``fetch(options, out_dir)``: it validates ``options`` (the config mapping of
the dataset) and writes the outputs :data:`SOURCE_OUTPUTS` declares for it (``tracks.parquet``, and
``interactions.parquet``, ``labels/<task>.parquet`` or ``playlists.parquet`` where the source has them) into
``out_dir``, following the contracts of :mod:`audiorec.storage.tables`. Sources listed in :data:`SOURCE_FEATURES`
also provide ``read_features(options, feature)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import PurePosixPath
from types import ModuleType
from typing import Any

from audiorec.common.config import dataclass_from_mapping
from audiorec.common.registry import import_target
from audiorec.errors import ParameterError

DATASET_SOURCES: dict[str, str] = {
    "demo": "audiorec.datasets.demo",
    "local": "audiorec.datasets.local",
    "music4all_onion": "audiorec.datasets.music4all_onion",
    "fma": "audiorec.datasets.fma",
    "irmas": "audiorec.datasets.irmas",
    "aotm2011": "audiorec.datasets.aotm2011",
    "synthetic": "audiorec.datasets.synthetic",
}
"""Source name -> module path; each module provides ``fetch(options, out_dir)``, which writes the tables."""

SOURCE_OPTIONS: dict[str, str] = {
    "demo": "audiorec.datasets.demo.options:DemoOptions",
    "local": "audiorec.datasets.options:LocalOptions",
    "music4all_onion": "audiorec.datasets.options:OnionOptions",
    "fma": "audiorec.datasets.options:FMAOptions",
    "irmas": "audiorec.datasets.options:IRMASOptions",
    "aotm2011": "audiorec.datasets.options:AOTMOptions",
    "synthetic": "audiorec.datasets.synthetic_options:SyntheticOptions",
}
"""Source name -> its options dataclass (``"module:Class"``), in modules that import no reader, so the workflow
checks a dataset's options while it builds its DAG (:func:`source_options`)."""

SOURCE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "demo": ("tracks", "interactions", "playlists", "labels/genre", "labels/instrument", "audio/"),
    "local": ("tracks", "interactions"),
    "music4all_onion": ("tracks", "interactions"),
    "fma": ("tracks", "labels/genre"),
    "irmas": ("tracks", "labels/instrument"),
    "aotm2011": ("tracks", "playlists"),
    "synthetic": ("tracks", "interactions", "features/"),
}
"""What each source's ``fetch`` writes into its folder: tables (``<name>.parquet``) and folders (``name/``).

Declared here rather than discovered, so the workflow knows each dataset's outputs, and therefore which
stages apply to it (no split without interactions, no genre probe without genre labels), before anything runs.
"""

SOURCE_FEATURES: dict[str, dict[str, str]] = {"music4all_onion": {"mfcc_stats": "mfcc_stats"}}
"""Precomputed per-track vectors a source ships (``read_features(options, feature)``): feature name -> the option
naming its file. A dataset provides a feature only when that option is set."""

GENERATED_FEATURES: dict[str, str] = {"synthetic": "features_dir"}
"""Sources whose fetch generates their features into ``data/features/`` (a declared fetch output): source ->
the option through which the workflow tells the source where that folder is. The plan sets it, so that the
precomputed backbones' input is a file the fetch produces; a config leaves it out. Such a source generates the
features its option ``feature_dims`` names, whatever their names."""


def source_features(source: str, options: Mapping[str, Any] | None) -> dict[str, str]:
    """The precomputed features a dataset of ``source`` with these options can read: name -> the option naming
    its file (set or not). A generating source provides exactly the features its ``feature_dims`` asks for."""
    if source in GENERATED_FEATURES:
        widths = (options or {}).get("feature_dims") or {}
        return {name: GENERATED_FEATURES[source] for name in (widths if isinstance(widths, Mapping) else {})}
    return dict(SOURCE_FEATURES.get(source, {}))


__all__ = [
    "DATASET_SOURCES",
    "GENERATED_FEATURES",
    "SOURCE_FEATURES",
    "SOURCE_OPTIONS",
    "SOURCE_OUTPUTS",
    "dataset_tables",
    "fetch_output_paths",
    "get_source",
    "source_features",
    "source_options",
]


def get_source(name: str) -> ModuleType:
    """Import and return the module of the dataset source ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`DATASET_SOURCES`, e.g. ``"demo"``.

    Returns
    -------
    module
        The source module, imported on first use.

    Raises
    ------
    ParameterError
        If ``name`` is not a registered source; the message lists the known names.
    """
    try:
        module_path = DATASET_SOURCES[name]
    except (KeyError, TypeError):
        known = sorted(DATASET_SOURCES)
        raise ParameterError(f"unknown dataset source {name!r}; known sources are {known}") from None
    return importlib.import_module(module_path)


def source_options(source: str, options: Mapping[str, Any] | None) -> Any:
    """The options dataclass of ``source`` built from a config mapping, without importing the source's reader.

    Raises
    ------
    ParameterError
        On an unknown source, an unknown option (the message names it and lists the known ones) or a value the
        options class refuses.
    """
    if source not in SOURCE_OPTIONS:
        raise ParameterError(f"unknown dataset source {source!r}; known sources are {sorted(SOURCE_OPTIONS)}")
    options_class = import_target(SOURCE_OPTIONS[source])
    from_mapping = getattr(options_class, "from_mapping", None)
    if from_mapping is not None:
        return from_mapping(options)
    return dataclass_from_mapping(options_class, options, f"{source} options")


def dataset_tables(source: str, options: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Tables a dataset of ``source`` with these options provides, as paths under ``data/`` without suffix.

    Fetch outputs (``tracks``, ``interactions``, ``labels/genre``, ...) plus ``features/<name>`` for each
    precomputed feature whose option is set.

    >>> dataset_tables("music4all_onion", {"mfcc_stats": "id_mfcc_stats.tsv"})
    ('tracks', 'interactions', 'features/mfcc_stats')
    """
    if source not in SOURCE_OUTPUTS:
        raise ParameterError(f"unknown dataset source {source!r}; known sources are {sorted(SOURCE_OUTPUTS)}")
    tables = tuple(name for name in SOURCE_OUTPUTS[source] if not name.endswith("/"))
    features = source_features(source, options)
    return tables + tuple(f"features/{name}" for name, option in features.items() if (options or {}).get(option))


def fetch_output_paths(source: str, data_dir: str) -> dict[str, tuple[str, bool]]:
    """Each output of a source's fetch as ``{key: (path under data_dir, is a folder)}``.

    The key is the output's last path component (``genre`` for ``labels/genre``), which is how the fetch
    checkpoint names its outputs; tables get their ``.parquet`` suffix.

    >>> fetch_output_paths("fma", "data")
    {'tracks': ('data/tracks.parquet', False), 'genre': ('data/labels/genre.parquet', False)}
    """
    if source not in SOURCE_OUTPUTS:
        raise ParameterError(f"unknown dataset source {source!r}; known sources are {sorted(SOURCE_OUTPUTS)}")
    outputs = {}
    for name in SOURCE_OUTPUTS[source]:
        relative = PurePosixPath(name)
        is_folder = name.endswith("/")
        path = f"{data_dir}/{relative}" if is_folder else f"{data_dir}/{relative}.parquet"
        outputs[relative.name] = (path, is_folder)
    return outputs
