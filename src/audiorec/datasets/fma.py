"""FMA, the Free Music Archive dataset (Defferrard et al., ISMIR 2017): top-level genres with the official split.

Files read (from ``fma_metadata.zip`` and ``fma_small.zip`` / ``fma_medium.zip``, https://github.com/mdeff/fma):

* ``metadata``: ``tracks.csv``, whose header spans three rows: column groups (``album``, ``artist``,
  ``set``, ``track``), column names within a group, and a row holding only ``track_id``. Columns are read
  as ``<group>.<name>`` (``set.split``, ``set.subset``, ``track.genre_top``);
* ``audio_dir``: the unpacked ``fma_small/`` or ``fma_medium/`` folder, ``000/000002.mp3`` style.

``subset`` selects the tracks: FMA's subsets are nested (small ⊂ medium ⊂ large) and ``set.subset`` names
the smallest one a track belongs to, so ``medium`` keeps the tracks marked small or medium. The official
``training``/``validation``/``test`` split becomes ``train``/``val``/``test`` in ``labels/genre.parquet``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets.options import SUBSETS, FMAOptions
from audiorec.datasets.readers import Dropped, existing_path, tracks_frame
from audiorec.errors import DatasetError
from audiorec.storage.tables import write_table

log = logging.getLogger(__name__)

__all__ = ["SUBSETS", "FMAOptions", "fetch", "read_tracks_csv"]

SOURCE = "fma"
SPLITS = {"training": "train", "validation": "val", "test": "test"}
_COLUMNS = {"set.split": "split", "set.subset": "subset", "track.genre_top": "genre"}
_METADATA_COLUMNS = {"artist.name": "artist", "track.title": "title"}


def read_tracks_csv(path: Path) -> pl.DataFrame:
    """Read FMA's ``tracks.csv`` into flat columns ``track_id``, ``split``, ``subset``, ``genre`` (+ metadata).

    Raises
    ------
    DatasetError
        If the three header rows are not FMA's, or a needed column is absent.
    """
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        try:
            groups, names, index_row = next(reader), next(reader), next(reader)
        except StopIteration:
            raise DatasetError(f"{path}: fewer than the three header rows of FMA's tracks.csv") from None
    if not index_row or index_row[0] != "track_id" or len(groups) != len(names):
        raise DatasetError(
            f"{path}: not FMA's tracks.csv: expected two header rows of column groups and names, then a row "
            f"starting with 'track_id'; the third row starts with {index_row[:1]}"
        )
    flat = ["track_id", *(f"{group}.{name}" for group, name in zip(groups[1:], names[1:], strict=True))]
    missing = [name for name in _COLUMNS if name not in flat]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; its columns are {flat}")
    wanted = {"track_id": "track_id", **_COLUMNS, **{k: v for k, v in _METADATA_COLUMNS.items() if k in flat}}
    by_position = sorted((flat.index(name), short) for name, short in wanted.items())
    table = pl.read_csv(
        path, has_header=False, skip_rows=3, columns=[index for index, _ in by_position], infer_schema=False
    )
    # Projected columns come in file order under placeholder names; name them after the header rows.
    table.columns = [short for _, short in by_position]
    return table.select(list(wanted.values()))


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Write ``tracks.parquet`` and ``labels/genre.parquet`` (with the official split) into ``out_dir``."""
    opts = dataclass_from_mapping(FMAOptions, options, "fma options")
    out_dir = Path(out_dir)
    dropped = Dropped(SOURCE)
    metadata_path = existing_path(opts.metadata, "metadata", SOURCE)
    audio_dir = existing_path(opts.audio_dir, "audio_dir", SOURCE, folder=True)
    table = read_tracks_csv(metadata_path)
    numeric = table.with_columns(pl.col("track_id").str.strip_chars().cast(pl.Int64, strict=False).alias("number"))
    parsed = numeric.filter(pl.col("number").is_not_null() & (pl.col("number") >= 0))
    dropped.add("rows", "track_id is not a number", numeric.height - parsed.height)
    unique = parsed.unique("number", keep="first", maintain_order=True)
    dropped.add("rows", "duplicate track_id", parsed.height - unique.height)
    chosen = unique.filter(pl.col("subset").is_in(SUBSETS[: SUBSETS.index(opts.subset) + 1]))
    labelled = chosen.filter(pl.col("genre").is_not_null() & (pl.col("genre").str.strip_chars() != ""))
    dropped.add(f"{opts.subset} tracks", "no top-level genre", chosen.height - labelled.height)
    split = labelled.with_columns(pl.col("split").replace_strict(SPLITS, default=None))
    in_split = split.filter(pl.col("split").is_not_null())
    dropped.add(f"{opts.subset} tracks", f"split is not one of {sorted(SPLITS)}", split.height - in_split.height)
    ids = [f"{number:06d}" for number in in_split["number"]]
    paths = [audio_dir / track_id[:3] / f"{track_id}.mp3" for track_id in ids]
    exists = pl.Series([p.is_file() for p in paths], dtype=pl.Boolean)
    dropped.add(f"{opts.subset} tracks", "audio file does not exist", int((~exists).sum()))
    if not exists.any():
        raise DatasetError(f"fma: no audio file of subset {opts.subset!r} found under {audio_dir} (e.g. {paths[:1]})")
    keep = in_split.with_columns(pl.Series("track_id", ids)).filter(exists)
    kept_paths = [path for path, found in zip(paths, exists, strict=True) if found]
    tracks = tracks_frame(keep["track_id"], kept_paths, progress=progress).hstack(
        keep.select("genre", "split", *(c for c in _METADATA_COLUMNS.values() if c in keep.columns))
    )
    metadata = dropped.metadata(subset=opts.subset)
    write_table(tracks, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)
    labels = keep.select("track_id", pl.col("genre").alias("label"), "split")
    write_table(labels, out_dir / "labels" / "genre.parquet", kind="labels", metadata=metadata)
    log.info("fma %s: %d tracks in %d genres", opts.subset, tracks.height, labels["label"].n_unique())
    dropped.log()
