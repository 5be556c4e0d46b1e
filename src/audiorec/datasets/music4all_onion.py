"""Music4All-Onion (Moscati et al., CIKM 2022): the listening log and audio of the first paper.

Files read (paths in the options; the audio is distributed on request by the Music4All authors, the
Onion files on Zenodo, https://zenodo.org/records/6609677):

* ``listening_events``: ``userid_trackid_timestamp.tsv``, tab-separated with the header row
  ``user_id  track_id  timestamp`` and times like ``2019-02-20 13:45:07``, which are UTC. The full log has
  about 252 million events, so it is scanned lazily and streamed into ``interactions.parquet``, its ids
  written once as dictionary codes (:func:`audiorec.storage.tables.write_interactions`). The release's
  ``userid_trackid_timestamp.tsv.bz2`` unpacks through ``lbzip2`` on every core where it is installed
  (:func:`audiorec.storage.archives.extract_archive`);
* ``audio_dir``: Music4All's ``audios/`` folder of 30-second clips ``<track_id>.mp3``;
* ``mfcc_stats`` (optional): ``id_mfcc_stats.tsv``, an ``id`` column and 104 numbers per track, the means
  of 13 MFCCs and the 91 entries of their covariance's upper triangle, in the file's column order. The
  paper's MFCC baseline used these; declared as a ``precomputed`` backbone (``feature: mfcc_stats``) they
  become an embeddings table comparable with the workflow's own ``mfcc`` extraction, which has the same
  104-d layout.

The tracks table holds the tracks of the log that have a clip; events of tracks without one are dropped
and counted, like events with a missing id or a timestamp that does not parse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets.options import OnionOptions
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
from audiorec.errors import DatasetError, ParameterError
from audiorec.storage.tables import write_table

log = logging.getLogger(__name__)

__all__ = ["EVENT_COLUMNS", "MFCC_STATS_DIM", "OnionOptions", "fetch", "read_features", "read_mfcc_stats"]

SOURCE = "music4all_onion"
EVENT_COLUMNS = EventColumns("user_id", "track_id", "timestamp", "%Y-%m-%d %H:%M:%S", "UTC")
"""The log's header and time format, fixed by the release."""
MFCC_STATS_DIM = 13 + 13 * 14 // 2
"""104: 13 MFCC means and the 91 upper-triangular entries of their covariance."""


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Write ``tracks.parquet`` and ``interactions.parquet`` into ``out_dir``, streaming the log.

    Raises
    ------
    ParameterError
        On unknown options.
    DatasetError
        When a file or a column is missing, no timestamp parses, or no track of the log has a clip.
    """
    opts = dataclass_from_mapping(OnionOptions, options, "music4all_onion options")
    out_dir = Path(out_dir)
    dropped = Dropped(SOURCE)
    events_path = existing_path(opts.listening_events, "listening_events", SOURCE)
    audio_dir = existing_path(opts.audio_dir, "audio_dir", SOURCE, folder=True)
    events = EventLog(scan_table(events_path, separator="\t"), EVENT_COLUMNS, events_path)
    counts = events.track_counts()
    events.report(counts, dropped)
    heard = counts.filter(pl.col("track_id").is_not_null() & (pl.col("valid") > 0)).sort("track_id")
    clips, duplicates = find_audio(audio_dir, suffixes=(".mp3",))
    dropped.add("audio files", "same track id as another file", duplicates)
    has_clip = pl.Series([track in clips for track in heard["track_id"]], dtype=pl.Boolean)
    dropped.add("events", "track has no audio clip", int(heard.filter(~has_clip)["valid"].sum()))
    dropped.add("tracks heard", "no audio clip", int((~has_clip).sum()))
    kept = heard.filter(has_clip)
    if kept.is_empty():
        raise DatasetError(
            f"music4all_onion: no track of {events_path} has a clip <track_id>.mp3 in {audio_dir} "
            f"({heard.height} tracks heard, {len(clips)} clips found)"
        )
    track_ids = kept["track_id"].to_list()
    tracks = tracks_frame(track_ids, [clips[track] for track in track_ids], progress=progress)
    metadata = dropped.metadata(events=int(kept["valid"].sum()))
    write_table(tracks, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)
    events.write(track_ids, out_dir / "interactions.parquet", metadata)
    log.info("music4all_onion: %d tracks, %d events", tracks.height, metadata["events"])
    dropped.log()


def read_features(options: Mapping[str, Any] | None, feature: str) -> tuple[list[str], np.ndarray, Dropped]:
    """Precomputed per-track vectors the release ships; ``feature`` is a key of the source's features.

    Returns
    -------
    track_ids, vectors, dropped
        Ids, a ``(n, D)`` float32 matrix and the report of dropped rows.
    """
    opts = dataclass_from_mapping(OnionOptions, options, "music4all_onion options")
    if feature != "mfcc_stats":
        raise ParameterError(f"music4all_onion provides the feature 'mfcc_stats', not {feature!r}")
    if opts.mfcc_stats is None:
        raise ParameterError("music4all_onion: the feature mfcc_stats needs the option mfcc_stats (id_mfcc_stats.tsv)")
    return read_mfcc_stats(existing_path(opts.mfcc_stats, "mfcc_stats", SOURCE))


def read_mfcc_stats(path: Path) -> tuple[list[str], np.ndarray, Dropped]:
    """Read ``id_mfcc_stats.tsv``: an ``id`` column then 104 numeric columns (whatever their header names).

    Rows with a missing or non-numeric value and repeated ids (all but the first) are dropped and counted.

    Raises
    ------
    DatasetError
        If the ``id`` column is missing or the file does not have 104 value columns.
    """
    dropped = Dropped(f"{SOURCE} mfcc_stats")
    frame = scan_table(path, separator="\t")
    schema = require_columns(frame, {"id column": "id"}, path)
    values = [name for name in schema.names() if name != "id"]
    if len(values) != MFCC_STATS_DIM:
        raise DatasetError(
            f"{path}: expected {MFCC_STATS_DIM} value columns (13 MFCC means + 91 covariance entries) besides id, "
            f"found {len(values)}"
        )
    table = frame.select(
        pl.col("id").cast(pl.String).str.strip_chars(),
        *(pl.col(name).cast(pl.Float64, strict=False) for name in values),
    ).collect()
    finite = pl.all_horizontal(pl.col(name).is_finite().fill_null(False) for name in values)
    complete = table.filter(pl.col("id").is_not_null() & (pl.col("id") != "") & finite)
    dropped.add("feature rows", "missing id or non-numeric value", table.height - complete.height)
    unique = complete.unique("id", keep="first", maintain_order=True)
    dropped.add("feature rows", "duplicate id", complete.height - unique.height)
    return unique["id"].to_list(), unique.select(values).to_numpy().astype(np.float32), dropped
