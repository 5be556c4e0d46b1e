"""Any collection on disk: a listening log plus an audio folder (or a tracks table naming the audio files).

This is how most users bring their own data. The log is a CSV, TSV or Parquet file with one row per
listening event; its user, track and timestamp columns are named in the options, and its timestamps may be
ISO 8601 text, Unix epochs, a strftime format or a Parquet datetime. The catalogue is either every audio
file under ``audio_dir`` (track id = path relative to the folder without suffix, as ``audiorec embed``
names them) or the rows of a ``tracks`` table whose ``audio_path`` column names each file; extra columns of
that table are kept as track metadata.

Events on tracks without an audio file, events with a missing id or an unreadable timestamp, duplicate
track ids and tracks whose file does not exist are dropped, and their counts are logged and stored in the
tracks table's metadata (``audiorec.storage.tables.read_metadata(path)["dropped"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets.options import LocalOptions
from audiorec.datasets.readers import (
    Dropped,
    EventColumns,
    EventLog,
    existing_path,
    find_audio,
    require_columns,
    scan_table,
    tracks_frame,
)
from audiorec.errors import DatasetError
from audiorec.storage.tables import write_table

log = logging.getLogger(__name__)

__all__ = ["LocalOptions", "fetch"]

SOURCE = "local"


def _event_columns(opts: LocalOptions) -> EventColumns:
    """The log's column names and time format, as the event reader takes them."""
    return EventColumns(
        opts.user_column, opts.track_column, opts.timestamp_column, opts.timestamp_format, opts.timezone
    )


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Write ``tracks.parquet`` and ``interactions.parquet`` into ``out_dir``.

    Raises
    ------
    ParameterError
        On unknown or invalid options.
    DatasetError
        When a file or a column is missing, or no timestamp of the log can be read.
    """
    opts = dataclass_from_mapping(LocalOptions, options, "local options")
    out_dir = Path(out_dir)
    dropped = Dropped(SOURCE)
    catalogue = _catalogue(opts, dropped)
    log_path = existing_path(opts.interactions, "interactions", SOURCE)
    events = EventLog(scan_table(log_path, separator=opts.separator), _event_columns(opts), log_path)
    counts = events.track_counts()
    events.report(counts, dropped)
    heard = counts.filter(pl.col("track_id").is_not_null() & (pl.col("valid") > 0))
    unknown = heard.join(catalogue.select("track_id"), on="track_id", how="anti")
    dropped.add("events", "track has no audio file", int(unknown["valid"].sum()))
    dropped.add("tracks heard", "no audio file", unknown.height)
    if unknown.height == heard.height:
        raise DatasetError(
            f"{log_path}: none of its {heard.height} track ids has an audio file; e.g. {heard['track_id'][0]!r} "
            f"vs. catalogue ids such as {catalogue['track_id'][0]!r}"
        )
    tracks = tracks_frame(catalogue["track_id"], [Path(p) for p in catalogue["path"]], progress=progress)
    # Extra columns of a tracks table become metadata; the contract's own columns are recomputed here.
    tracks = tracks.hstack(catalogue.select(c for c in catalogue.columns if c not in {"path", *tracks.columns}))
    metadata = dropped.metadata(
        heard_tracks=heard.height - unknown.height, events=int(heard["valid"].sum() - unknown["valid"].sum())
    )
    write_table(tracks, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)
    events.write(tracks["track_id"].to_list(), out_dir / "interactions.parquet", metadata)
    log.info("local: %d tracks, %d events", tracks.height, metadata["events"])
    dropped.log()


def _catalogue(opts: LocalOptions, dropped: Dropped) -> pl.DataFrame:
    """Track ids with their audio file (``path``) and any metadata columns, in id order."""
    audio_dir = existing_path(opts.audio_dir, "audio_dir", SOURCE, folder=True) if opts.audio_dir else None
    if opts.tracks is None:
        found, duplicates = find_audio(audio_dir)
        dropped.add("audio files", "same track id as another file", duplicates)
        if not found:
            raise DatasetError(f"local option audio_dir: no audio files under {audio_dir}")
        ids = sorted(found)
        return pl.DataFrame({"track_id": ids, "path": [str(found[i]) for i in ids]})
    tracks_path = existing_path(opts.tracks, "tracks", SOURCE)
    frame = scan_table(tracks_path, separator=opts.separator)
    require_columns(frame, {"track_column": opts.track_column, "audio_column": opts.audio_column}, tracks_path)
    table = frame.collect().rename({opts.track_column: "track_id", opts.audio_column: "path"})
    table = table.with_columns(pl.col("track_id").cast(pl.String), pl.col("path").cast(pl.String))
    complete = table.filter(pl.col("track_id").is_not_null() & pl.col("path").is_not_null())
    dropped.add("tracks", "missing track id or audio path", table.height - complete.height)
    unique = complete.unique("track_id", keep="first", maintain_order=True)
    dropped.add("tracks", "duplicate track id", complete.height - unique.height)
    base = audio_dir if audio_dir is not None else tracks_path.parent
    paths = [base / p for p in unique["path"]]  # an absolute p stays absolute
    exists = pl.Series([p.is_file() for p in paths], dtype=pl.Boolean)
    dropped.add("tracks", "audio file does not exist", int((~exists).sum()))
    found = unique.with_columns(pl.Series("path", [str(p) for p in paths])).filter(exists)
    if found.is_empty():
        raise DatasetError(f"{tracks_path}: none of the audio files it names exists (relative to {base})")
    return found.sort("track_id")
