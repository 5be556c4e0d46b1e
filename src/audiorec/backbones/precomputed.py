"""Precomputed track vectors, a dataset's or a researcher's own, turned into an embeddings table like any backbone's.

Music4All-Onion distributes the MFCC statistics the first paper used as its baseline. Declaring a backbone
``{kind: precomputed, options: {feature: mfcc_stats}}`` makes the workflow read them instead of running a
model, so they enter the same recommenders, metrics and tables as the workflow's own extraction and the two
can be compared directly. ``{kind: precomputed, options: {path: FILE}}`` does the same for vectors a researcher
computed elsewhere (the file's layout: :mod:`audiorec.backbones.user_vectors`). Either way the vectors are
aligned with the dataset's tracks table: tracks without a vector are written to the failures table (as an
extraction failure would be), vectors of unknown tracks are dropped, counted in the embeddings table's metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiorec.backbones.base import file_sha256
from audiorec.backbones.options import PrecomputedOptions
from audiorec.backbones.user_vectors import EXAMPLES, read_user_vectors
from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets import GENERATED_FEATURES, SOURCE_FEATURES, get_source
from audiorec.datasets.readers import Dropped
from audiorec.errors import ParameterError
from audiorec.storage.tables import embeddings_table, read_table, write_table

log = logging.getLogger(__name__)

PRECOMPUTED_KIND = "precomputed"
"""The backbone ``kind`` whose vectors come from the dataset rather than from a model."""


class PrecomputedBackbone:
    """The backbone of ``kind: precomputed``: it reads vectors (a dataset's or a user's file) instead of computing them.

    It has no forward pass, so it is not an audio :class:`~audiorec.backbones.Backbone`; it is registered with
    the ``precomputed`` trait, which makes the workflow run rule ``embed_precomputed`` for it instead of the
    extraction shards.
    """

    kind = PRECOMPUTED_KIND

    def __init__(self, options: PrecomputedOptions) -> None:
        self.options = options

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> PrecomputedBackbone:
        return cls(dataclass_from_mapping(PrecomputedOptions, options, f"backbone {PRECOMPUTED_KIND}"))

    def write_embeddings(
        self,
        name: str,
        source: str,
        dataset_options: Mapping[str, Any],
        tracks_path: str | Path,
        embeddings_path: str | Path,
        failures_path: str | Path,
        layer: str | int = "last",
    ) -> int:
        """Write backbone ``name``'s embeddings and failures tables; returns the number of tracks with a vector.

        ``layer`` selects the vector column of a user's file; a dataset's feature has one vector per track.
        """
        metadata = {"backbone": name, "backbone_kind": self.kind}
        if self.options.path is not None:
            return import_user_vectors(self.options.path, layer, tracks_path, embeddings_path, failures_path, metadata)
        feature = self.options.feature
        metadata |= {"feature": feature, "source": source}
        return import_features(source, dataset_options, feature, tracks_path, embeddings_path, failures_path, metadata)


def feature_option(source: str, feature: str) -> str:
    """The dataset option that names the file of ``feature`` for ``source``.

    Raises
    ------
    ParameterError
        If the source provides no such feature; the message lists those it provides.
    """
    if source in GENERATED_FEATURES:  # the source generates whatever its options name (read_features checks)
        return GENERATED_FEATURES[source]
    features = SOURCE_FEATURES.get(source, {})
    if feature not in features:
        raise ParameterError(
            f"dataset source {source!r} provides no precomputed feature {feature!r}; it provides {sorted(features)}"
        )
    return features[feature]


def import_features(
    source: str,
    dataset_options: Mapping[str, Any],
    feature: str,
    tracks_path: str | Path,
    embeddings_path: str | Path,
    failures_path: str | Path,
    metadata: Mapping[str, Any],
) -> int:
    """Write the embeddings and failures tables of a precomputed feature, in tracks-table order.

    Returns the number of tracks with a vector.
    """
    feature_option(source, feature)
    track_ids, vectors, dropped = get_source(source).read_features(dataset_options, feature)
    missing = f"no precomputed {feature} vector for this track"
    return write_aligned(track_ids, vectors, dropped, missing, tracks_path, embeddings_path, failures_path, metadata)


def import_user_vectors(
    path: str | Path,
    layer: str | int,
    tracks_path: str | Path,
    embeddings_path: str | Path,
    failures_path: str | Path,
    metadata: Mapping[str, Any],
) -> int:
    """Write the embeddings and failures tables of a user's vector file, in tracks-table order.

    The metadata records the file and its sha256 (the table can be traced to the exact file it came from), the
    configured ``layer`` and the column(s) it read. Returns the number of tracks with a vector.

    Raises
    ------
    DatasetError, ParameterError
        From :func:`~audiorec.backbones.user_vectors.read_user_vectors`, naming the file and the problem.
    """
    read = read_user_vectors(path, layer)
    metadata = {
        **metadata,
        "path": str(path),
        "sha256": file_sha256(path),
        "layer": layer,
        "columns": list(read.columns),
    }
    missing = f"no vector for this track in {path}"
    dropped = Dropped(str(path))
    return write_aligned(
        read.track_ids, read.vectors, dropped, missing, tracks_path, embeddings_path, failures_path, metadata
    )


def write_aligned(
    track_ids: list[str],
    vectors: np.ndarray,
    dropped: Dropped,
    missing_error: str,
    tracks_path: str | Path,
    embeddings_path: str | Path,
    failures_path: str | Path,
    metadata: Mapping[str, Any],
) -> int:
    """Write ``vectors`` for the tracks of the tracks table that have one, in its order, and a failures row (with
    ``missing_error``) for each that has none, so the candidate set treats them as it treats extraction failures.

    Vectors of ids the tracks table lacks are dropped; their count and a few of them go to the log and to the
    embeddings table's metadata (``unknown_track_ids``, ``unknown_track_id_examples``, and ``dropped``), since
    many of them usually mean the file was keyed by other ids than the dataset's. Returns the number of tracks
    with a vector.
    """
    tracks = read_table(tracks_path, "tracks").select("track_id", "audio_path")
    index = {track: row for row, track in enumerate(track_ids)}
    known = set(tracks["track_id"])
    unknown = [track for track in track_ids if track not in known]
    dropped.add("vector rows", "track not in the tracks table", len(unknown))
    has_vector = tracks.filter(pl.col("track_id").is_in(list(index)))
    missing = tracks.join(has_vector, on="track_id", how="anti").with_columns(pl.lit(missing_error).alias("error"))
    rows = [index[track] for track in has_vector["track_id"]]
    table = embeddings_table(has_vector["track_id"].to_list(), vectors[rows])
    metadata = {
        **metadata,
        "dim": int(vectors.shape[1]),
        "dropped": dropped.counts,
        "unknown_track_ids": len(unknown),
        "unknown_track_id_examples": unknown[:EXAMPLES],
    }
    write_table(table, embeddings_path, metadata=metadata)
    write_table(missing, failures_path, kind="failures")
    log.info(
        "%s: %d of %d tracks have a vector; %d without one", dropped.source, len(rows), tracks.height, missing.height
    )
    if unknown:
        log.warning("%s: %d ids are not in the tracks table, e.g. %s", dropped.source, len(unknown), unknown[:EXAMPLES])
    dropped.log()
    return len(rows)
