"""A synthetic world without audio, at the size of a real dataset: tracks, a listening log and content features.

The embedded demo world has audio, so it stays small; the questions of scale (memory of the split, runtime of
the recommenders over ~56k items and ~17k users, the width of Jukebox vectors) need a world the size of
Music4All-Onion, which cannot be shared. This source generates one from a seed, in seconds, shaped so that
the project's temporal split gives the sizes of the first paper's Table 2 (``scale: onion``), or a few
hundred users for tests (``scale: tiny``).

Writes ``tracks.parquet`` (``audio_path`` and ``duration_s`` are null: there is no audio, so only
``precomputed`` backbones apply; extra columns ``cluster`` and ``release_date``), ``interactions.parquet``
(one row per listening event, replays included, sorted by time) and ``features/<name>.parquet`` for each
entry of ``feature_dims`` (see :mod:`audiorec.datasets.synthetic_features`), which ``kind: precomputed``
backbones read with ``feature: <name>``. How the log is drawn is in :mod:`audiorec.datasets.synthetic_world`;
the options and presets in :mod:`audiorec.datasets.synthetic_options`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from audiorec.datasets.readers import Dropped
from audiorec.datasets.synthetic_features import read_feature, write_feature
from audiorec.datasets.synthetic_options import FEATURE_NAMES, SCALES, SyntheticOptions
from audiorec.datasets.synthetic_world import Catalogue, Log, build_catalogue, listening_log
from audiorec.errors import ParameterError
from audiorec.storage.tables import UTC_TIMESTAMP, write_table

log = logging.getLogger(__name__)

__all__ = ["FEATURE_NAMES", "SCALES", "SyntheticOptions", "fetch", "generate", "read_features"]

SOURCE = "synthetic"
FEATURES_FOLDER = "features"
"""The folder beside the tables that holds the generated features (declared as a fetch output)."""


def _ids(prefix: str, count: int) -> pl.Series:
    """Zero-padded identifiers, so that sorting them as text keeps their numeric order."""
    width = max(4, len(str(count)))
    return pl.Series([f"{prefix}{i + 1:0{width}d}" for i in range(count)], dtype=pl.String)


def _timestamps(start_us: int, seconds: np.ndarray) -> pa.Array:
    return pa.array(start_us + np.asarray(seconds, dtype=np.int64) * 1_000_000, type=UTC_TIMESTAMP)


def generate(options: SyntheticOptions) -> tuple[pl.DataFrame, pl.DataFrame, Catalogue, Log]:
    """The tracks and interactions tables, with the catalogue and log they were built from."""
    catalogue = build_catalogue(options)
    events = listening_log(options, catalogue)
    start_us = int(options.start().timestamp()) * 1_000_000
    track_ids = _ids("t", catalogue.latent.shape[0])
    tracks = pl.from_arrow(
        pa.table(
            {
                "track_id": track_ids.to_arrow(),
                "audio_path": pa.nulls(track_ids.len(), type=pa.string()),
                "duration_s": pa.nulls(track_ids.len(), type=pa.float32()),
                "cluster": pa.array(catalogue.cluster.astype(np.int32)),
                "release_date": _timestamps(start_us, catalogue.release_s),
            }
        )
    )
    user_ids = _ids("u", options.resolved().users)
    interactions = pl.DataFrame(
        {
            "user_id": user_ids.gather(events.user),
            "track_id": track_ids.gather(events.track),
            "timestamp": pl.from_arrow(_timestamps(start_us, events.seconds)),
        }
    )
    return tracks, interactions, catalogue, events


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Dataset-source entry point: write the tables and the features of ``feature_dims`` into ``out_dir``.

    Raises
    ------
    ParameterError
        On an unknown option or an invalid value (the message names it), or a ``features_dir`` that is not
        ``out_dir/features``.
    """
    opts = SyntheticOptions.from_mapping(options)
    out_dir = Path(out_dir)
    features_dir = out_dir / FEATURES_FOLDER
    if opts.features_dir is not None and Path(opts.features_dir).resolve() != features_dir.resolve():
        raise ParameterError(
            f"synthetic option features_dir is {opts.features_dir!r}, but this fetch writes its features to "
            f"{features_dir}; leave the option out (the workflow sets it)"
        )
    tracks, interactions, catalogue, _ = generate(opts)
    metadata = Dropped(SOURCE).metadata(
        events=interactions.height,
        scale=opts.scale,
        evaluation_start=opts.evaluation_start().isoformat(),
        world_end=opts.end().isoformat(),
    )
    write_table(tracks, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)
    write_table(interactions, out_dir / "interactions.parquet", kind="interactions", metadata=metadata)
    features_dir.mkdir(parents=True, exist_ok=True)
    track_ids = tracks["track_id"].to_list()
    for name, width in sorted(opts.feature_dims.items()):
        write_feature(opts, name, width, track_ids, catalogue.latent, features_dir / f"{name}.parquet")
    log.info(
        "synthetic (%s): %d tracks, %d users, %d events, features %s",
        opts.scale,
        tracks.height,
        interactions["user_id"].n_unique(),
        interactions.height,
        dict(sorted(opts.feature_dims.items())),
    )


def read_features(options: Mapping[str, Any] | None, feature: str) -> tuple[list[str], np.ndarray, Dropped]:
    """The generated vectors of ``feature`` (written by :func:`fetch` into ``features_dir``).

    Raises
    ------
    ParameterError
        If ``feature`` is not in ``feature_dims`` or ``features_dir`` is unset.
    """
    opts = SyntheticOptions.from_mapping(options)
    if feature not in opts.feature_dims:
        raise ParameterError(
            f"synthetic: feature {feature!r} is not generated; add it with its width to option feature_dims "
            f"(now {opts.feature_dims})"
        )
    if opts.features_dir is None:
        raise ParameterError("synthetic: reading a feature needs option features_dir (the fetch's features/ folder)")
    track_ids, vectors = read_feature(Path(opts.features_dir) / f"{feature}.parquet")
    if vectors.shape[1] != opts.feature_dims[feature]:
        raise ParameterError(
            f"synthetic: {feature} in {opts.features_dir} has width {vectors.shape[1]}, but option feature_dims "
            f"asks for {opts.feature_dims[feature]}; fetch the dataset again"
        )
    return track_ids, vectors, Dropped(f"{SOURCE} {feature}")
