"""Art of the Mix 2011 playlists (McFee & Lanckriet, ISMIR 2012), mapped to audio the user has.

``playlists`` is ``aotm2011_playlists.json``: a list of mixes, each with ``mix_id``, ``category``,
``user`` and ``playlist``, a list of ``[[artist, title], track_id]`` entries whose ``track_id`` is a Million
Song Dataset id or null. AotM ships no audio, so ``audio_map`` is a user-supplied table (CSV, TSV or Parquet)
from those ids (column ``track_id``) to local files (column ``audio_path``; relative paths are taken from
``audio_dir``, else from the map's folder).

Entries without an id, without audio or repeated within a mix are removed; then, as in the second paper
(Choi et al. 2022), mixes with too few or too many remaining tracks (``min_tracks``, ``max_tracks``) and mixes
of excluded categories are dropped. That paper does not publish its thresholds; the defaults keep mixes of 5
to 100 tracks. Every removal is counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets.options import AOTMOptions
from audiorec.datasets.readers import Dropped, existing_path, require_columns, scan_table, tracks_frame
from audiorec.errors import DatasetError
from audiorec.storage.tables import write_table

log = logging.getLogger(__name__)

__all__ = ["AOTMOptions", "fetch", "read_mixes"]

SOURCE = "aotm2011"


def read_mixes(path: Path, dropped: Dropped) -> list[dict[str, Any]]:
    """Parse the playlists file into ``{"mix_id", "category", "tracks": [(id, artist, title), ...]}`` records.

    Malformed mixes and repeated mix ids are dropped and counted; entries keep their order and null ids.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: not a JSON file: {error}") from error
    if not isinstance(raw, list):
        raise DatasetError(f"{path}: expected a JSON list of mixes, got {type(raw).__name__}")
    mixes, seen = [], set()
    for mix in raw:
        if not isinstance(mix, dict) or mix.get("mix_id") is None or not isinstance(mix.get("playlist"), list):
            dropped.add("mixes", "malformed (no mix_id or playlist list)", 1)
            continue
        mix_id = str(mix["mix_id"])
        if mix_id in seen:
            dropped.add("mixes", "duplicate mix_id", 1)
            continue
        seen.add(mix_id)
        entries = []
        for entry in mix["playlist"]:
            valid = isinstance(entry, list | tuple) and len(entry) == 2
            names = entry[0] if valid and isinstance(entry[0], list | tuple) and len(entry[0]) == 2 else (None, None)
            entries.append((str(entry[1]) if valid and entry[1] is not None else None, *names))
        mixes.append({"mix_id": mix_id, "category": mix.get("category"), "tracks": entries})
    if not mixes:
        raise DatasetError(f"{path}: no valid mix")
    return mixes


def _audio_map(opts: AOTMOptions, dropped: Dropped) -> dict[str, Path]:
    map_path = existing_path(opts.audio_map, "audio_map", SOURCE)
    frame = scan_table(map_path)
    require_columns(frame, {"id column": "track_id", "path column": "audio_path"}, map_path)
    table = frame.select(pl.col("track_id").cast(pl.String), pl.col("audio_path").cast(pl.String)).collect()
    complete = table.drop_nulls()
    dropped.add("audio map rows", "missing track_id or audio_path", table.height - complete.height)
    unique = complete.unique("track_id", keep="first", maintain_order=True)
    dropped.add("audio map rows", "duplicate track_id", complete.height - unique.height)
    base = existing_path(opts.audio_dir, "audio_dir", SOURCE, folder=True) if opts.audio_dir else map_path.parent
    paths = {track: base / path for track, path in unique.iter_rows()}
    existing = {track: path for track, path in paths.items() if path.is_file()}
    dropped.add("audio map rows", "audio file does not exist", len(paths) - len(existing))
    return existing


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Write ``tracks.parquet`` (the tracks of the kept mixes) and ``playlists.parquet`` into ``out_dir``."""
    opts = dataclass_from_mapping(AOTMOptions, options, "aotm2011 options")
    out_dir = Path(out_dir)
    dropped = Dropped(SOURCE)
    audio = _audio_map(opts, dropped)
    mixes = read_mixes(existing_path(opts.playlists, "playlists", SOURCE), dropped)
    rows: list[tuple[str, str, int, str | None]] = []
    names: dict[str, tuple[str | None, str | None]] = {}
    for mix in mixes:
        if mix["category"] in opts.exclude_categories:
            dropped.add("mixes", "excluded category", 1)
            continue
        kept: list[str] = []
        for track, artist, title in mix["tracks"]:
            if track is None:
                dropped.add("entries", "no track id", 1)
            elif track not in audio:
                dropped.add("entries", "no audio for the track id", 1)
            elif track in kept:
                dropped.add("entries", "repeated within its mix", 1)
            else:
                kept.append(track)
                names.setdefault(track, (artist, title))
        if len(kept) < opts.min_tracks:
            dropped.add("mixes", f"fewer than {opts.min_tracks} tracks with audio", 1)
        elif len(kept) > opts.max_tracks:
            dropped.add("mixes", f"more than {opts.max_tracks} tracks with audio", 1)
        else:
            rows += [(mix["mix_id"], track, position, mix["category"]) for position, track in enumerate(kept)]
    unseen = sorted(set(opts.exclude_categories) - {mix["category"] for mix in mixes})
    if unseen:
        log.warning("aotm2011: excluded categories %s occur in no mix (misspelt?)", unseen)
    if not rows:
        raise DatasetError(f"aotm2011: no mix keeps {opts.min_tracks}..{opts.max_tracks} tracks with audio")
    playlists = pl.DataFrame(
        rows,
        schema={"playlist_id": pl.String, "track_id": pl.String, "position": pl.Int32, "category": pl.String},
        orient="row",
    )
    track_ids = sorted(set(playlists["track_id"]))
    tracks = tracks_frame(track_ids, [audio[t] for t in track_ids], progress=progress).with_columns(
        pl.Series("artist", [names[t][0] for t in track_ids], dtype=pl.String),
        pl.Series("title", [names[t][1] for t in track_ids], dtype=pl.String),
    )
    metadata = dropped.metadata(min_tracks=opts.min_tracks, max_tracks=opts.max_tracks)
    write_table(tracks, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)
    write_table(playlists, out_dir / "playlists.parquet", kind="playlists", metadata=metadata)
    log.info("aotm2011: %d mixes over %d tracks", playlists["playlist_id"].n_unique(), len(track_ids))
    dropped.log()
