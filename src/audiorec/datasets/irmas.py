"""IRMAS training set (Bosch et al., ISMIR 2012): 3-second excerpts labelled with their predominant instrument.

``root`` is the unpacked ``IRMAS-TrainingData/`` folder (https://zenodo.org/records/1290750): one folder per
instrument code, files named like ``[gel][dru][pop_roc]0829__2.wav`` — the instrument, optionally drums
(``[dru]``) or none (``[nod]``), the genre, the recording number and the excerpt number — some with a numeric
prefix (``001__[cel][nod][cla]0058__1.wav``). The label is the instrument of the file name, which must agree
with its folder; files that do not follow the scheme are dropped and counted.

IRMAS has no official split of its training set, so ``labels/instrument.parquet`` gets a seeded stratified
one, keeping the excerpts of one recording (same name up to the ``__<excerpt>`` suffix) in the same split.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets.options import IRMASOptions
from audiorec.datasets.readers import Dropped, existing_path, tracks_frame
from audiorec.datasets.stratify import stratified_group_split
from audiorec.errors import DatasetError
from audiorec.storage.tables import write_table

log = logging.getLogger(__name__)

__all__ = ["INSTRUMENTS", "IRMASOptions", "fetch", "parse_name"]

SOURCE = "irmas"
INSTRUMENTS: dict[str, str] = {
    "cel": "cello",
    "cla": "clarinet",
    "flu": "flute",
    "gac": "acoustic guitar",
    "gel": "electric guitar",
    "org": "organ",
    "pia": "piano",
    "sax": "saxophone",
    "tru": "trumpet",
    "vio": "violin",
    "voi": "voice",
}
"""Instrument codes of the file and folder names → label."""

_NAME = re.compile(
    r"(?P<recording>(?:\d+__)?\[(?P<instrument>[a-z]{3})\](?:\[(?P<drums>dru|nod)\])?\[(?P<genre>[a-z_-]+)\]\d+)"
    r"__(?P<excerpt>\d+)\.wav",
    re.IGNORECASE,
)


def parse_name(name: str) -> dict[str, str | bool | None] | None:
    """The fields of an IRMAS training file name, or None if it does not follow the scheme.

    >>> parse_name("[gel][dru][pop_roc]0829__2.wav")["instrument"], parse_name("x.wav")
    ('gel', None)
    """
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    drums = match["drums"].lower() if match["drums"] else None
    return {
        "recording": match["recording"],
        "instrument": match["instrument"].lower(),
        "drums": None if drums is None else drums == "dru",
        "genre": match["genre"].lower(),
    }


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Write ``tracks.parquet`` and ``labels/instrument.parquet`` (with a stratified split) into ``out_dir``."""
    opts = dataclass_from_mapping(IRMASOptions, options, "irmas options")
    out_dir = Path(out_dir)
    root = existing_path(opts.root, "root", SOURCE, folder=True)
    dropped = Dropped(SOURCE)
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in root.glob("*/*") if p.is_file() and not p.name.startswith(".")):
        fields = parse_name(path.name)
        if fields is None:
            dropped.add("files", "name does not follow [instrument][drums][genre]NNNN__N.wav", 1)
        elif fields["instrument"] not in INSTRUMENTS:
            dropped.add("files", "unknown instrument code", 1)
        elif fields["instrument"] != path.parent.name.lower():
            dropped.add("files", "instrument in the name differs from its folder", 1)
        elif path.stem in rows:
            dropped.add("files", "duplicate file name", 1)
        else:
            rows[path.stem] = {"path": path, **fields}
    if not rows:
        raise DatasetError(f"irmas option root: no IRMAS training file (<instrument>/[...]NNNN__N.wav) under {root}")
    track_ids = sorted(rows)
    labels = [INSTRUMENTS[rows[t]["instrument"]] for t in track_ids]
    split = stratified_group_split(labels, [rows[t]["recording"] for t in track_ids], opts.fractions, opts.seed)
    tracks = tracks_frame(track_ids, [rows[t]["path"] for t in track_ids], progress=progress).with_columns(
        pl.Series("instrument", labels, dtype=pl.String),
        pl.Series("genre", [rows[t]["genre"] for t in track_ids], dtype=pl.String),
        pl.Series("drums", [rows[t]["drums"] for t in track_ids], dtype=pl.Boolean),
        pl.Series("split", split.tolist(), dtype=pl.String),
    )
    metadata = dropped.metadata(fractions=list(opts.fractions), seed=opts.seed)
    write_table(tracks, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)
    label_table = tracks.select("track_id", pl.col("instrument").alias("label"), "split")
    write_table(label_table, out_dir / "labels" / "instrument.parquet", kind="labels", metadata=metadata)
    log.info("irmas: %d excerpts of %d instruments", tracks.height, label_table["label"].n_unique())
    dropped.log()
