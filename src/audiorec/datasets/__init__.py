"""Dataset sources: each module turns one source into the workflow's tables (tracks, interactions, labels, ...).

Sources are registered by name and imported only when chosen, so selecting the embedded demo world never
pulls in the dependencies of a real dataset's reader (and the other way round).

Every source module provides ``fetch(options, out_dir)``: it validates ``options`` (the config mapping of
the dataset) and writes ``tracks.parquet`` and ``interactions.parquet`` (plus ``labels/`` and
``playlists.parquet`` where the source has them) into ``out_dir``, following the contracts of
:mod:`audiorec.tables`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from audiorec.errors import ParameterError

DATASET_SOURCES: dict[str, str] = {"demo": "audiorec.datasets.demo"}
"""Source name -> module path; each module provides ``fetch(options, out_dir)``, which writes the tables."""

__all__ = ["DATASET_SOURCES", "get_source"]


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
