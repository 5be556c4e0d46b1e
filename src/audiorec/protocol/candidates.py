"""The items every validation and test ranking chooses from: one set per dataset, shared by every row of a table.

Relevant items are first listens of train tracks (:mod:`audiorec.protocol.split`), so a model that also ranks tracks
outside train fills its top K with items that can never be hits. Worse, models differ in how they treat such
tracks (content models score them like any other, popularity gives them zero, a random-init network pushes them
down), which skews exactly the comparisons the table is for. So every model, with or without embeddings, ranks
the same candidates: the train tracks that every backbone a model of the config runs on could embed. A train
track some backbone failed on (an undecodable file, say) leaves the set for every model; ``uncovered.csv`` lists
these tracks (the log names the backbones that lack each), and the table's note counts them.

``uncovered.csv`` is written even when it is empty, holds nothing but what decides the candidate set, and is
kept small on purpose: the workflow compares its checksum, so adding a backbone that embeds every train track
(or fails on the same files as the others) changes no candidate set and reruns no model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from audiorec.errors import SchemaError
from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import read_table

log = logging.getLogger(__name__)

WARN_SHARE = 0.01
"""Share of train items left out above which the candidate set is reported as a warning."""

UNCOVERED_SCHEMA = {"track_id": pl.String}


def embedded_track_ids(path: str | Path) -> pl.Series:
    """The track ids of an embeddings table, read without its vectors."""
    if "track_id" not in pq.read_schema(path).names:
        raise SchemaError(f"{path}: embeddings table has no column track_id")
    return pl.Series("track_id", pq.read_table(path, columns=["track_id"]).column("track_id").to_pylist(), pl.String)


def uncovered_items(train_tracks: pl.Series, covered: Mapping[str, pl.Series]) -> pl.DataFrame:
    """Train tracks that some backbone of ``covered`` (name → embedded track ids) lacks, with those backbones.

    Sorted by track id; ``missing_from`` lists the backbones, comma-separated, in name order.
    """
    tracks = train_tracks.unique().sort().to_frame("track_id")
    schema = UNCOVERED_SCHEMA | {"missing_from": pl.String}
    missing = [
        tracks.join(ids.to_frame("track_id"), on="track_id", how="anti").with_columns(pl.lit(name).alias("backbone"))
        for name, ids in sorted(covered.items())
    ]
    if not missing:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat(missing)
        .group_by("track_id", maintain_order=True)
        .agg(pl.col("backbone").sort().str.join(",").alias("missing_from"))
        .sort("track_id")
        .cast(schema)
    )


def candidate_track_ids(train: pl.DataFrame, uncovered: pl.DataFrame) -> list[str]:
    """The candidate set: the tracks of ``train`` (split contract) less the ``uncovered`` ones, sorted."""
    tracks = train.select("track_id").unique().join(uncovered.select("track_id"), on="track_id", how="anti")
    return tracks.get_column("track_id").sort().to_list()


def read_uncovered(path: str | Path) -> pl.DataFrame:
    """Read ``uncovered.csv`` (column ``track_id``)."""
    try:
        return pl.read_csv(path, schema=UNCOVERED_SCHEMA)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise SchemaError(f"{path}: cannot read the uncovered train items: {error}") from error


def coverage_note(n_train_items: int, uncovered: pl.DataFrame) -> str:
    """One sentence for logs and tables: how many train items the candidate set holds and how many it leaves out
    (and, when ``uncovered`` says which backbones lack them, those backbones)."""
    left_out = uncovered.height
    share = left_out / n_train_items if n_train_items else 0.0
    note = f"Candidates: the {n_train_items - left_out} train items every backbone embedded"
    if not left_out:
        return note + " (all of them)."
    note += f"; {left_out} train items ({100 * share:.2f} %) left out"
    if "missing_from" not in uncovered.columns:
        return note + " (split/uncovered.csv; the candidates log names the backbones that lack them)."
    backbones = sorted(set(",".join(uncovered.get_column("missing_from")).split(",")))
    return note + f", not embedded by {', '.join(backbones)}."


def write_candidates(
    train_path: str | Path, embeddings: Mapping[str, str | Path], out_path: str | Path
) -> pl.DataFrame:
    """Write ``uncovered.csv`` for a train split and the embeddings tables of the config's backbones; warn when
    more than :data:`WARN_SHARE` of the train items are left out."""
    train_tracks = read_table(train_path, "split").get_column("track_id").unique()
    uncovered = uncovered_items(train_tracks, {name: embedded_track_ids(path) for name, path in embeddings.items()})
    note = coverage_note(train_tracks.len(), uncovered)
    if train_tracks.len() and uncovered.height / train_tracks.len() > WARN_SHARE:
        log.warning("%s Every row of the results table ranks only the rest.", note)
    else:
        log.info("%s", note)
    if uncovered.height:
        log.info("left out:\n%s", uncovered.write_csv())
    write_text_atomic(uncovered.select(*UNCOVERED_SCHEMA).write_csv(), out_path)
    return uncovered
