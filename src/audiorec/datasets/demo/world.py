"""Write the demo world's tables and audio: the generator and the dataset-source entry point."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from tqdm.auto import tqdm

from audiorec.common.cpus import usable_cpus
from audiorec.datasets.demo.catalogue import Catalogue, build_catalogue
from audiorec.datasets.demo.labels import stratified_split
from audiorec.datasets.demo.listening import listening_events
from audiorec.datasets.demo.options import LABELS_STREAM, DemoOptions, child_rng
from audiorec.datasets.demo.playlists import build_playlists
from audiorec.datasets.demo.styles import INSTRUMENTS, STYLE_NAMES
from audiorec.datasets.demo.synthesis import synthesise, write_flac
from audiorec.datasets.demo.timeline import evaluation_start, world_end
from audiorec.errors import ParameterError
from audiorec.storage import tables


def _ids(prefix: str, count: int) -> np.ndarray:
    """Zero-padded identifiers (``t0001``, ...), so sorting them as text keeps their numeric order."""
    width = max(4, len(str(count)))
    return np.array([f"{prefix}{i + 1:0{width}d}" for i in range(count)], dtype=object)


def _timestamps(seconds: np.ndarray) -> pa.Array:
    """Seconds since the epoch as the UTC microsecond timestamps the table contracts require."""
    return pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000, type=tables.UTC_TIMESTAMP)


SYNTHESIS_WORKERS = 4
"""Processes synthesising clips at most (and no more than the CPUs this process may use). Each clip draws from its
own random stream, so the files are the same whatever the number of workers; on two cores two of them halve the
demo's 30 s of synthesis."""


def _write_clip(job: tuple[DemoOptions, Any, int, Path]) -> None:
    """Synthesise one track and write its FLAC (in a worker process: only the path goes back)."""
    options, catalogue, track, path = job
    write_flac(synthesise(options, catalogue, track), path, options.sample_rate)


def generate_demo_world(options: DemoOptions, out_dir: str | Path, progress: bool = True) -> None:
    """Generate the demo world into ``out_dir``.

    Writes (all tables atomically, with :func:`audiorec.storage.tables.write_table`)

    * ``tracks.parquet`` (kind ``tracks``): ``track_id``, ``audio_path`` (relative to ``out_dir``, e.g.
      ``audio/t0001.flac``), ``duration_s``, plus ``style``, ``instrument``, ``artist_id``,
      ``release_date`` (timestamp[us, UTC]) and ``tempo_bpm``;
    * ``interactions.parquet`` (kind ``interactions``): one row per listening event, sorted by
      (``timestamp``, ``user_id``, ``track_id``); no event precedes its track's release;
    * ``labels/genre.parquet`` and ``labels/instrument.parquet`` (kind ``labels``) with a fixed seeded
      stratified ``split`` column (``train``/``val``/``test``);
    * ``playlists.parquet`` (kind ``playlists``);
    * ``audio/<track_id>.flac``: 16-bit FLAC at ``options.sample_rate``, mono or stereo.

    The tracks and interactions tables carry file metadata (:func:`audiorec.storage.tables.read_metadata`)
    ``{"source": "demo", "evaluation_start": ..., "world_end": ...}`` (ISO instants, UTC): the start of the
    last month, the natural ``test_start`` of a temporal split (also :func:`evaluation_start`), and the end
    of the listening period.

    Parameters
    ----------
    options : DemoOptions
        Size and shape of the world; same options give byte-identical files.
    out_dir : str or Path
        Destination folder (created if needed).
    progress : bool
        Show a progress bar over tracks during synthesis.
    """
    if not isinstance(options, DemoOptions):
        raise ParameterError(f"options must be DemoOptions, got {type(options).__name__}")
    out_dir = Path(out_dir)
    catalogue = build_catalogue(options)
    track_ids = _ids("t", options.n_tracks)
    audio_paths = [f"audio/{track_id}.flac" for track_id in track_ids]
    clips = [(options, catalogue, track, out_dir / audio_paths[track]) for track in range(options.n_tracks)]
    workers = min(SYNTHESIS_WORKERS, usable_cpus(), max(1, options.n_tracks))
    with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        written = pool.map(_write_clip, clips, chunksize=8) if pool else map(_write_clip, clips)
        for _ in tqdm(written, total=len(clips), desc="demo audio", unit="track", disable=not progress):
            pass

    # Only what depends on the calendar, so that e.g. a new n_playlists leaves these files byte-identical.
    metadata = {
        "source": "demo",
        "evaluation_start": evaluation_start(options).isoformat(),
        "world_end": world_end(options).isoformat(),
    }
    style_names = np.array(STYLE_NAMES, dtype=object)[catalogue.style]
    instrument_names = np.array(INSTRUMENTS, dtype=object)[catalogue.instrument]
    tracks_table = pa.table(
        {
            "track_id": pa.array(track_ids.tolist(), type=pa.string()),
            "audio_path": pa.array(audio_paths, type=pa.string()),
            "duration_s": pa.array(np.full(options.n_tracks, options.n_samples / options.sample_rate, np.float32)),
            "style": pa.array(style_names.tolist(), type=pa.string()),
            "instrument": pa.array(instrument_names.tolist(), type=pa.string()),
            "artist_id": pa.array(_ids("a", options.n_artists)[catalogue.artist].tolist(), type=pa.string()),
            "release_date": _timestamps(catalogue.release_s),
            "tempo_bpm": pa.array(catalogue.tempo.astype(np.float32)),
        }
    )
    tables.write_table(tracks_table, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)

    interactions = listening_log(options, catalogue)
    tables.write_table(interactions, out_dir / "interactions.parquet", kind="interactions", metadata=metadata)

    for number, (task, values) in enumerate((("genre", style_names), ("instrument", instrument_names))):
        split = stratified_split(values, options.label_split, child_rng(options, LABELS_STREAM, number))
        labels = pa.table(
            {
                "track_id": pa.array(track_ids.tolist(), type=pa.string()),
                "label": pa.array(values.tolist(), type=pa.string()),
                "split": pa.array(split.tolist(), type=pa.string()),
            }
        )
        tables.write_table(labels, out_dir / "labels" / f"{task}.parquet", kind="labels")

    playlist, member, position = build_playlists(options, catalogue)
    playlists = pa.table(
        {
            "playlist_id": pa.array(
                _ids("p", options.n_playlists)[np.asarray(playlist, dtype=np.int64)].tolist(), type=pa.string()
            ),
            "track_id": pa.array(track_ids[np.asarray(member, dtype=np.int64)].tolist(), type=pa.string()),
            "position": pa.array(position, type=pa.int32()),
        }
    )
    tables.write_table(playlists, out_dir / "playlists.parquet", kind="playlists")


def listening_log(options: DemoOptions, catalogue: Catalogue | None = None) -> pl.DataFrame:
    """The world's listening events as an ``interactions`` table, in time order; no audio is synthesised, so a
    check of a recommender gets the demo's log in a fraction of a second."""
    catalogue = build_catalogue(options) if catalogue is None else catalogue
    track_ids = _ids("t", options.n_tracks)
    user, track, seconds = listening_events(options, catalogue)
    return pl.from_arrow(
        pa.table(
            {
                "user_id": pa.array(_ids("u", options.n_users)[user].tolist(), type=pa.string()),
                "track_id": pa.array(track_ids[track].tolist(), type=pa.string()),
                "timestamp": _timestamps(seconds),
            }
        )
    ).sort(["timestamp", "user_id", "track_id"], maintain_order=True)


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Dataset-source entry point: build :class:`DemoOptions` from a config mapping and generate the world.

    Raises
    ------
    ParameterError
        On an unknown option or an invalid value (see :meth:`DemoOptions.from_mapping`).
    """
    generate_demo_world(DemoOptions.from_mapping(options), out_dir, progress=progress)
