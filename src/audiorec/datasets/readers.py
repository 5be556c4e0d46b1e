"""Reading what real datasets ship: delimited or Parquet tables, timestamps in many spellings, audio folders.

The loaders of :mod:`audiorec.datasets` share these so that every source validates the same way: a missing
file or column is an error naming the file, the option and what was expected; a bad row is dropped and
counted in a :class:`Dropped` report rather than failing late (in a split or an extraction job hours later)
or vanishing silently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import soundfile as sf
from tqdm.auto import tqdm

from audiorec.errors import DatasetError, ParameterError
from audiorec.storage.tables import write_interactions

log = logging.getLogger(__name__)

AUDIO_SUFFIXES: tuple[str, ...] = (".flac", ".wav", ".mp3", ".ogg", ".aiff", ".aif", ".m4a")
"""File suffixes (lower case) taken as audio when a folder is scanned."""

_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_PARQUET = (".parquet", ".pq")
_UNIX_SCALE = {"unix": 1_000_000, "unix_ms": 1_000}
_ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
UTC_DATETIME = pl.Datetime("us", "UTC")


@dataclass
class Dropped:
    """What a loader left out, and why.

    Counts are keyed ``"<what>: <reason>"`` (e.g. ``"events: track has no audio file"``); :meth:`log` writes
    them to the job's log and :meth:`metadata` stores them in the tracks table, so the numbers stay with the
    data they describe.
    """

    source: str
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, reason: str, count: int) -> None:
        """Record ``count`` rows of ``what`` dropped for ``reason`` (zero counts are not recorded)."""
        if count:
            key = f"{what}: {reason}"
            self.counts[key] = self.counts.get(key, 0) + int(count)

    def log(self) -> None:
        """Log every count, or that nothing was dropped."""
        if not self.counts:
            log.info("%s: nothing dropped", self.source)
        for key, count in self.counts.items():
            log.warning("%s: dropped %d %s", self.source, count, key)

    def metadata(self, **extra: Any) -> dict[str, Any]:
        """The ``audiorec`` file metadata of the tables a source writes."""
        return {"source": self.source, "dropped": dict(self.counts), **extra}


def existing_path(value: Any, option: str, source: str, *, folder: bool = False) -> Path:
    """Check an option names an existing file (or folder); the error names the source, the option and the path."""
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ParameterError(f"{source} option {option} must be a path; got {value!r}")
    path = Path(os.path.expanduser(str(value)))
    if folder and not path.is_dir():
        raise DatasetError(f"{source} option {option}: folder {path} does not exist")
    if not folder and not path.is_file():
        raise DatasetError(f"{source} option {option}: file {path} does not exist")
    return path


def scan_table(path: Path, *, separator: str | None = None) -> pl.LazyFrame:
    """Lazily scan a CSV/TSV (every column as text, so nothing is mis-inferred) or a Parquet table.

    The format follows the suffix (``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``); ``separator``
    overrides it for other delimited files.
    """
    suffix = path.suffix.lower()
    if suffix in _PARQUET and separator is None:
        return pl.scan_parquet(path)
    delimiter = separator if separator is not None else _DELIMITERS.get(suffix)
    if delimiter is None:
        raise ParameterError(
            f"{path}: cannot tell the format from the suffix {suffix!r}; use .csv, .tsv or .parquet, or set separator"
        )
    return pl.scan_csv(path, separator=delimiter, infer_schema=False, raise_if_empty=True)


def require_columns(frame: pl.LazyFrame, columns: Mapping[str, str], path: Path) -> pl.Schema:
    """Check ``frame`` has every column ``columns`` maps option names to; return its schema.

    Raises
    ------
    DatasetError
        Naming the file, the missing columns with the option that names each, and the columns it has.
    """
    try:
        schema = frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DatasetError(f"{path}: cannot read the table: {error}") from error
    missing = {option: name for option, name in columns.items() if name not in schema}
    if missing:
        wanted = ", ".join(f"{name!r} ({option})" for option, name in missing.items())
        raise DatasetError(f"{path}: missing column(s) {wanted}; the file has {schema.names()}")
    return schema


def timestamp_expr(column: str, dtype: pl.DataType, fmt: str | None, timezone: str) -> pl.Expr:
    """An expression turning a timestamp column into ``datetime[us, UTC]``; unparseable values become null.

    Parameters
    ----------
    column, dtype
        The column and its type in the source table.
    fmt
        ``None``: ISO 8601 text (``2020-02-20``, ``2020-02-20 13:45:00``, ``2020-02-20T13:45:00.5+01:00``,
        ``...Z``), datetime columns as they are, numeric columns as Unix seconds. ``"unix"`` or
        ``"unix_ms"``: Unix seconds or milliseconds, as text or numbers. Anything else: a strftime format
        (https://docs.rs/chrono/latest/chrono/format/strftime/).
    timezone
        Zone of timestamps that carry none (wall-clock times); values with an offset keep their instant.
    """
    col = pl.col(column)
    if fmt in _UNIX_SCALE or (fmt is None and dtype.is_numeric()):
        numbers = col.cast(pl.Float64, strict=False)
        return (numbers * _UNIX_SCALE[fmt or "unix"]).round().cast(pl.Int64, strict=False).cast(UTC_DATETIME)
    if isinstance(dtype, pl.Datetime):
        return _to_utc(col, dtype.time_zone is not None, timezone)
    if isinstance(dtype, pl.Date):
        return _to_utc(col.cast(pl.Datetime("us")), False, timezone)
    text = col.cast(pl.String)
    if fmt is not None:
        return _to_utc(text.str.to_datetime(fmt, time_unit="us", strict=False), "%z" in fmt or "%#z" in fmt, timezone)
    return pl.coalesce(
        *(_to_utc(text.str.to_datetime(f, time_unit="us", strict=False), True, timezone) for f in _ISO_AWARE),
        *(_to_utc(text.str.to_datetime(f, time_unit="us", strict=False), False, timezone) for f in _ISO_NAIVE),
    )


def _to_utc(expr: pl.Expr, aware: bool, timezone: str) -> pl.Expr:
    if not aware:
        expr = expr.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    return expr.dt.convert_time_zone("UTC").dt.cast_time_unit("us")


@dataclass(frozen=True)
class EventColumns:
    """Names of the user, track and timestamp columns in a source's listening log, and how to read times."""

    user: str = "user_id"
    track: str = "track_id"
    timestamp: str = "timestamp"
    timestamp_format: str | None = None
    timezone: str = "UTC"


class EventLog:
    """A listening log being validated: normalised lazily, counted in one pass, written in a second.

    Both passes stream (Polars' streaming engine), so a log of hundreds of millions of events is never
    held in memory; only the per-track counts of the first pass are.
    """

    def __init__(self, frame: pl.LazyFrame, columns: EventColumns, path: Path) -> None:
        names = {"user column": columns.user, "track column": columns.track, "timestamp column": columns.timestamp}
        schema = require_columns(frame, names, path)
        self.path = path
        dtype = schema[columns.timestamp]
        parsed = timestamp_expr(columns.timestamp, dtype, columns.timestamp_format, columns.timezone)
        self.frame = frame.select(
            _identifier(columns.user).alias("user_id"),
            _identifier(columns.track).alias("track_id"),
            parsed.alias("timestamp"),
            pl.col(columns.timestamp).cast(pl.String).alias("_raw_timestamp"),
        )
        self.columns = columns

    def track_counts(self) -> pl.DataFrame:
        """Per track id (null included): valid events and events with a missing user or timestamp.

        One streaming pass over the log; the result has one row per distinct track id.
        """
        timestamp, raw, user = pl.col("timestamp"), pl.col("_raw_timestamp"), pl.col("user_id")
        flags = {
            "valid": user.is_not_null() & timestamp.is_not_null(),
            "no_user": user.is_null(),
            "no_timestamp": user.is_not_null() & raw.is_null(),
            "bad_timestamp": user.is_not_null() & raw.is_not_null() & timestamp.is_null(),
        }
        # Flags become columns first, so that the group-by only sums: a plain aggregation the streaming
        # engine runs batch by batch (an expression inside the aggregation makes it collect the whole log).
        counts = (
            self.frame.select("track_id", *(flag.cast(pl.UInt32).alias(name) for name, flag in flags.items()))
            .group_by("track_id")
            .agg(pl.col(*flags).sum())
            .collect(engine="streaming")
        )
        if counts.filter(pl.col("track_id").is_not_null())["valid"].sum() > 0:
            return counts
        if counts["bad_timestamp"].sum() > 0:
            bad = self.frame.filter(timestamp.is_null() & raw.is_not_null()).select(raw).head(1).collect().item()
            raise DatasetError(
                f"{self.path}: no timestamp of column {self.columns.timestamp!r} could be read, e.g. {bad!r}; "
                f"timestamp_format is {self.columns.timestamp_format!r}"
            )
        raise DatasetError(f"{self.path}: no event has a user id, a track id and a timestamp")

    def report(self, counts: pl.DataFrame, dropped: Dropped) -> None:
        """Add the row-level problems found by :meth:`track_counts` to ``dropped``."""
        no_track = counts.filter(pl.col("track_id").is_null())
        dropped.add("events", "missing track id", int(no_track["valid"].sum()))
        dropped.add("events", "missing user id", int(counts["no_user"].sum()))
        dropped.add("events", "missing timestamp", int(counts["no_timestamp"].sum()))
        reason = f"unparseable timestamp (format {self.columns.timestamp_format!r})"
        dropped.add("events", reason, int(counts["bad_timestamp"].sum()))

    def write(self, tracks: Sequence[str], path: Path, metadata: Mapping[str, Any]) -> None:
        """Stream the valid events of ``tracks`` into an interactions table (atomically, ids coded), unsorted.

        The split groups by (user, track) and never relies on row order, and sorting hundreds of millions
        of rows would be the most expensive step of the whole fetch.
        """
        # A filter against the (small) set of kept tracks streams; a semi-join here would not.
        keep = pl.Series("track_id", list(tracks), dtype=pl.String)
        events = self.frame.filter(
            pl.col("user_id").is_not_null()
            & pl.col("timestamp").is_not_null()
            & pl.col("track_id").is_in(keep.implode())
        ).select("user_id", "track_id", "timestamp")
        # The ids are written as dictionary codes, so the split never hashes a string per event; the track
        # dictionary is known here, the users' is collected in one more streaming pass (user column only).
        write_interactions(events, path, metadata, dictionaries={"track_id": keep})


def _identifier(column: str) -> pl.Expr:
    """An id column as text without surrounding blanks; blank ids become null (they identify nothing).

    Written with ``when``/``then`` rather than ``replace``, which the streaming engine cannot run batch by
    batch (it would hold the whole log in memory).
    """
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text.str.len_bytes() > 0).then(text)


def find_audio(folder: Path, suffixes: Iterable[str] = AUDIO_SUFFIXES) -> tuple[dict[str, Path], int]:
    """Every audio file under ``folder``, keyed by its path relative to the folder without suffix.

    This is the id convention of ``audiorec embed``: ``folder/rock/a.mp3`` is track ``rock/a``. Hidden
    files and folders are skipped. Returns the mapping and the number of files whose id was already taken
    by another file (``a.mp3`` beside ``a.wav``; the first in sorted order wins).
    """
    wanted = {suffix.lower() for suffix in suffixes}
    found: dict[str, Path] = {}
    duplicates = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative = Path(root).relative_to(folder)
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            if name.startswith(".") or suffix.lower() not in wanted:
                continue
            track_id = (relative / stem).as_posix()
            if track_id in found:
                duplicates += 1
            else:
                found[track_id] = Path(root) / name
    return found, duplicates


def probe_durations(paths: Sequence[Path], *, progress: bool = True) -> np.ndarray:
    """Durations in seconds read from the file headers (no decoding); NaN where a header cannot be read.

    An unreadable file is not dropped here: the extraction step records it in its failures table with the
    decoder's message, which says more than a failed header read.
    """
    durations = np.full(len(paths), np.nan, dtype=np.float32)
    for index, path in enumerate(tqdm(paths, desc="audio headers", unit="file", disable=not progress)):
        try:
            durations[index] = sf.info(str(path)).duration
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
            continue
    unreadable = int(np.isnan(durations).sum())
    if unreadable:
        log.warning("%d of %d audio headers could not be read; their duration_s is NaN", unreadable, len(paths))
    return durations


def tracks_frame(track_ids: Sequence[str], paths: Sequence[Path], *, progress: bool = True) -> pl.DataFrame:
    """A "tracks" table: ids, absolute audio paths (the audio lives outside ``results/``) and durations."""
    return pl.DataFrame(
        {
            "track_id": list(track_ids),
            "audio_path": [os.path.abspath(path) for path in paths],
            "duration_s": probe_durations(paths, progress=progress),
        },
        schema={"track_id": pl.String, "audio_path": pl.String, "duration_s": pl.Float32},
    )
