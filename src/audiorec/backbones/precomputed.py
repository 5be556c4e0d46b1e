"""Precomputed track vectors that ship with a dataset, turned into an embeddings table like any backbone's.

Music4All-Onion distributes the MFCC statistics the first paper used as its baseline. Declaring a backbone
``{kind: precomputed, options: {feature: mfcc_stats}}`` makes the workflow read them instead of running a
model, so they enter the same recommenders, metrics and tables as the workflow's own extraction and the two
can be compared directly. The vectors are aligned with the dataset's tracks table: tracks without a vector
are written to the failures table (as an extraction failure would be), vectors of unknown tracks are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.backbones.options import PrecomputedOptions
from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets import SOURCE_FEATURES, get_source
from audiorec.errors import ParameterError
from audiorec.storage.tables import embeddings_table, read_table, write_table

log = logging.getLogger(__name__)

PRECOMPUTED_KIND = "precomputed"
"""The backbone ``kind`` whose vectors come from the dataset rather than from a model."""


class PrecomputedBackbone:
    """The backbone of ``kind: precomputed``: it reads the vectors a dataset ships instead of computing them.

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
    ) -> int:
        """Write backbone ``name``'s embeddings and failures tables; returns the number of tracks with a vector."""
        feature = self.options.feature
        metadata = {"backbone": name, "backbone_kind": self.kind, "feature": feature, "source": source}
        return import_features(source, dataset_options, feature, tracks_path, embeddings_path, failures_path, metadata)


def feature_option(source: str, feature: str) -> str:
    """The dataset option that names the file of ``feature`` for ``source``.

    Raises
    ------
    ParameterError
        If the source provides no such feature; the message lists those it provides.
    """
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
    tracks = read_table(tracks_path, "tracks").select("track_id", "audio_path")
    index = {track: row for row, track in enumerate(track_ids)}
    known = set(tracks["track_id"])
    dropped.add("feature rows", "track not in the tracks table", sum(track not in known for track in track_ids))
    has_vector = tracks.filter(pl.col("track_id").is_in(list(index)))
    missing = tracks.join(has_vector, on="track_id", how="anti").with_columns(
        pl.lit(f"no precomputed {feature} vector for this track").alias("error")
    )
    rows = [index[track] for track in has_vector["track_id"]]
    table = embeddings_table(has_vector["track_id"].to_list(), vectors[rows])
    write_table(table, embeddings_path, metadata={**metadata, "dim": int(vectors.shape[1]), "dropped": dropped.counts})
    write_table(missing, failures_path, kind="failures")
    log.info("%s: %d of %d tracks have a vector; %d without one", feature, len(rows), tracks.height, missing.height)
    dropped.log()
    return len(rows)
