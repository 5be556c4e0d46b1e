"""Parquet table contracts, atomic writes and validating readers.

Every stage of the workflow exchanges Parquet tables with fixed schemas (see DESIGN.md). Writing goes to a
temporary file in the destination folder and is renamed into place, so an interrupted job never leaves a
half-written file that looks complete to Snakemake or to a person.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from audiorec.common.cpus import usable_cpus
from audiorec.errors import SchemaError
from audiorec.storage.atomic import atomic_path

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "tracks": pa.schema([("track_id", pa.string()), ("audio_path", pa.string()), ("duration_s", pa.float32())]),
    "interactions": pa.schema([("user_id", pa.string()), ("track_id", pa.string()), ("timestamp", UTC_TIMESTAMP)]),
    "split": pa.schema(
        [("user_id", pa.string()), ("track_id", pa.string()), ("first_ts", UTC_TIMESTAMP), ("plays", pa.int32())]
    ),
    "failures": pa.schema([("track_id", pa.string()), ("audio_path", pa.string()), ("error", pa.string())]),
    "recommendations": pa.schema(
        [("user_id", pa.string()), ("rank", pa.int16()), ("track_id", pa.string()), ("score", pa.float32())]
    ),
    "labels": pa.schema([("track_id", pa.string()), ("label", pa.string())]),
    "playlists": pa.schema([("playlist_id", pa.string()), ("track_id", pa.string()), ("position", pa.int32())]),
}
"""Required columns of each table kind; tables may carry extra columns (optional metadata)."""

METADATA_KEY = b"audiorec"


def _conform(table: pa.Table, kind: str) -> pa.Table:
    """Cast the contract's columns to their declared types, keep extra columns, fail on missing ones."""
    schema = SCHEMAS[kind]
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaError(f"{kind} table lacks column(s) {missing}; it has {table.column_names}")
    for field in schema:
        index = table.column_names.index(field.name)
        column = table.column(index)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise SchemaError(
                    f"{kind} table column {field.name!r} has type {column.type}, expected {field.type}: {error}"
                ) from error
            table = table.set_column(index, field.name, column)
    return table


def to_arrow(frame: pl.DataFrame | pa.Table) -> pa.Table:
    """Accept a Polars frame or an Arrow table."""
    return frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame


def write_table(
    frame: pl.DataFrame | pa.Table,
    path: str | os.PathLike[str],
    kind: str | None = None,
    metadata: Mapping[str, object] | None = None,
) -> None:
    """Write ``frame`` to Parquet atomically, conforming it to the ``kind`` contract when given.

    ``metadata`` is stored as JSON under the file-level key ``audiorec`` and read back by
    :func:`read_metadata`; embeddings use it to record the backbone, weights digest, layer and pooling.
    An ``interactions`` table is stored with its ids as dictionary codes (:func:`write_interactions`).
    """
    if kind == "interactions":
        write_interactions(frame if isinstance(frame, pl.DataFrame) else pl.from_arrow(frame), path, metadata)
        return
    table = to_arrow(frame)
    if kind is not None:
        table = _conform(table, kind)
    if metadata is not None:
        existing = dict(table.schema.metadata or {})
        existing[METADATA_KEY] = json.dumps(dict(metadata), sort_keys=True).encode()
        table = table.replace_schema_metadata(existing)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=_rows_per_group(table))


ROW_GROUP_BYTES = 64 * 2**20
"""Uncompressed bytes per Parquet row group: a reader holds one group at a time, so an embeddings table of the
Onion's 109k tracks at 4800-d (2.1 GB) streams in 64 MB steps instead of being materialised whole."""

READ_THREADS = 4
"""Row groups of an embeddings table decoded at once, at most (and no more than the CPUs the job may use): each
holds one group in memory, and decoding stops scaling once memory bandwidth is the limit."""


def _rows_per_group(table: pa.Table) -> int:
    bytes_per_row = table.nbytes / max(table.num_rows, 1)
    return max(1024, int(ROW_GROUP_BYTES / max(bytes_per_row, 1.0)))


def read_table(path: str | os.PathLike[str], kind: str | None = None) -> pl.DataFrame:
    """Read a Parquet table; when ``kind`` is given, check it follows that contract.

    Columns are cast to the contract's types, so an ``interactions`` table comes back with string ids
    whether they are stored as dictionary codes or as text.

    Raises
    ------
    SchemaError
        Naming the file, when a required column is missing or has an incompatible type.
    """
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise SchemaError(f"{path}: cannot read Parquet table: {error}") from error
    if kind is not None:
        try:
            table = _conform(table, kind)
        except SchemaError as error:
            raise SchemaError(f"{path}: {error}") from error
    return pl.from_arrow(table)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, object]:
    """Return the ``audiorec`` metadata dictionary stored in a Parquet file (empty if none).

    Read from the file's key-value metadata, where both pyarrow (schema metadata) and Polars' streaming
    writer (``sink_parquet(metadata=...)``) put it.
    """
    raw = (pq.read_metadata(path).metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def embeddings_table(track_ids: list[str], vectors: np.ndarray) -> pa.Table:
    """Build an embeddings table: ``track_id`` and ``embedding: fixed_size_list<float32>[D]``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(track_ids):
        raise SchemaError(f"embeddings must be (n_tracks={len(track_ids)}, D); got shape {vectors.shape}")
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    return pa.table({"track_id": pa.array(track_ids, type=pa.string()), "embedding": column})


def read_embeddings(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Read an embeddings table into track ids and a ``(n_tracks, D)`` float32 matrix.

    The vectors are copied one row group at a time into a preallocated matrix, so reading takes the matrix's size
    and one group per thread (:data:`ROW_GROUP_BYTES`, :data:`READ_THREADS`), not the two to four whole copies
    that materialising and flattening the Arrow table cost: a 4800-d table of the Onion's 109k tracks (2 GB)
    peaked at 7.9 GB that way, 2.3 GB now.
    """
    source = pq.ParquetFile(path, pre_buffer=False)
    schema = source.schema_arrow
    if "track_id" not in schema.names or "embedding" not in schema.names:
        raise SchemaError(f"{path}: embeddings table needs columns track_id and embedding")
    column_type = schema.field("embedding").type
    if not pa.types.is_fixed_size_list(column_type):
        raise SchemaError(f"{path}: column embedding has type {column_type}, expected fixed_size_list<float32>")
    dim = column_type.list_size
    counts = [source.metadata.row_group(group).num_rows for group in range(source.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    vectors = np.empty((starts[-1], dim), dtype=np.float32)
    ids: list[list[str]] = [[] for _ in counts]

    def read_group(group: int) -> None:
        """Decode one row group into its rows of ``vectors``; Arrow's decoder releases the GIL, so groups
        decode side by side (a 4800-d table of 109k tracks: 16 s one group at a time, 6 s on two threads)."""
        part = pq.ParquetFile(path, pre_buffer=False).read_row_group(group, columns=["track_id", "embedding"])
        start = starts[group]
        for chunk in part.column("embedding").chunks:
            vectors[start : start + len(chunk)] = chunk.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
            start += len(chunk)
        ids[group] = part.column("track_id").to_pylist()

    with ThreadPoolExecutor(max(1, min(len(counts), usable_cpus(), READ_THREADS))) as pool:
        list(pool.map(read_group, range(len(counts))))
    track_ids = [track for group in ids for track in group]
    return track_ids, vectors


def resolve_audio_path(audio_path: str, tracks_path: str | os.PathLike[str]) -> Path:
    """Resolve a ``tracks.audio_path`` value: relative paths are relative to the tracks table's folder.

    Storing paths relative to the table keeps a results folder relocatable (copy it to a cluster, and the
    audio is still found), while datasets that live elsewhere may store absolute paths.
    """
    candidate = Path(audio_path)
    return candidate if candidate.is_absolute() else Path(tracks_path).parent / candidate


# -- the interactions table: ids stored once as dictionary codes ------------------------------------------------

INTERACTION_IDS = ("user_id", "track_id")
"""The id columns of an interactions table, stored as dictionary codes."""

INTERACTIONS_ROW_GROUP = 25_000_000
"""Rows per Parquet row group of an interactions table. Every row group carries its own dictionary pages, which
Polars maps onto the Enum's ids once per group and column, at about 0.25 s each for 120k users: a 10M-event log
read its user column in 0.6 s as one group and in 1.7 s as five, and in Polars' default groups (~120k rows) a
5M-event log took 5.5 s to read. A group of this size buffers about 400 MB of codes and times while written."""


def encode_ids(frame: pl.LazyFrame | pl.DataFrame, dictionaries: Mapping[str, pl.Series] | None = None) -> pl.LazyFrame:
    """The interactions ``frame`` with each id column as a Polars ``Enum`` whose categories are sorted.

    An Enum column is a column of integer codes plus its dictionary of ids; in Parquet it is a dictionary-encoded
    column whose dictionary Polars keeps in the file, so readers get the codes back without hashing a string
    per event. Sorted categories make the codes the ranks of the ids: sorting or comparing codes orders rows
    exactly as the ids would, which lets the split work on integers and still write the rows in id order.

    ``dictionaries`` gives the ids of a column when the caller knows them (a superset is fine, and need not be
    sorted); the others are collected from ``frame`` in one streaming pass. Ids of an Enum column whose
    categories are already sorted are kept as they are.
    """
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    given = dict(dictionaries or {})
    wanted = [name for name in INTERACTION_IDS if name not in given and not _sorted_enum(schema.get(name))]
    if wanted:
        found = lazy.select(pl.col(name).cast(pl.String).unique().implode() for name in wanted)
        row = found.collect(engine="streaming").row(0)
        given |= {name: pl.Series(name, values, dtype=pl.String) for name, values in zip(wanted, row, strict=True)}
    casts = []
    for name, values in given.items():
        categories = values.cast(pl.String).drop_nulls().unique().sort()
        casts.append(pl.col(name).cast(pl.String).cast(pl.Enum(categories)))
    return lazy.with_columns(casts) if casts else lazy


def _sorted_enum(dtype: pl.DataType | None) -> bool:
    return isinstance(dtype, pl.Enum) and dtype.categories.is_sorted()


def write_interactions(
    frame: pl.LazyFrame | pl.DataFrame,
    path: str | os.PathLike[str],
    metadata: Mapping[str, object] | None = None,
    *,
    dictionaries: Mapping[str, pl.Series] | None = None,
) -> None:
    """Write an "interactions" table atomically, its ids as sorted dictionary codes (:func:`encode_ids`).

    Every source writes its listening log through here, so that the ids are encoded once, when the data is
    fetched, rather than hashed as strings by every split. A lazy ``frame`` streams into the file (a log of
    hundreds of millions of events is never held in memory); row order is kept.

    Raises
    ------
    SchemaError
        If a column is missing or the timestamp is not a datetime.
    """
    lazy = frame.lazy()
    schema = lazy.collect_schema()
    missing = [name for name in SCHEMAS["interactions"].names if name not in schema]
    if missing:
        raise SchemaError(f"interactions table lacks column(s) {missing}; it has {schema.names()}")
    if not isinstance(schema["timestamp"], pl.Datetime):
        raise SchemaError(f"interactions column timestamp must be a datetime; got {schema['timestamp']}")
    # As write_table's cast would: a zoned time keeps its instant, a naive one is taken as UTC.
    timestamp = pl.col("timestamp").dt.cast_time_unit("us")
    zoned = schema["timestamp"].time_zone is not None
    timestamp = timestamp.dt.convert_time_zone("UTC") if zoned else timestamp.dt.replace_time_zone("UTC")
    coded = encode_ids(lazy, dictionaries).with_columns(timestamp)
    options = {} if metadata is None else {METADATA_KEY.decode(): json.dumps(dict(metadata), sort_keys=True)}
    with atomic_path(path) as tmp:
        coded.sink_parquet(tmp, compression="zstd", metadata=options, row_group_size=INTERACTIONS_ROW_GROUP)


def scan_interactions(path: str | os.PathLike[str]) -> pl.LazyFrame:
    """Lazily scan an "interactions" table with its ids as sorted ``Enum`` codes (see :func:`encode_ids`).

    A table whose ids are stored as text (the form before ids were encoded, or one a user wrote) is encoded
    on read, which costs one more pass over it.

    Raises
    ------
    SchemaError
        Naming the file, when it cannot be read, lacks a column or has a timestamp that is not a datetime.
    """
    try:
        frame = pl.scan_parquet(path)
        schema = frame.collect_schema()
    except (OSError, pl.exceptions.PolarsError) as error:
        raise SchemaError(f"{path}: cannot read Parquet table: {error}") from error
    missing = [name for name in SCHEMAS["interactions"].names if name not in schema]
    if missing:
        raise SchemaError(f"{path}: interactions table lacks column(s) {missing}; it has {schema.names()}")
    bad = [f"{name} ({schema[name]})" for name in INTERACTION_IDS if not _id_type(schema[name])]
    if bad:
        raise SchemaError(f"{path}: interactions id column(s) {bad} must be text or dictionary-encoded text")
    if not isinstance(schema["timestamp"], pl.Datetime):
        raise SchemaError(f"{path}: interactions column timestamp must be a datetime; got {schema['timestamp']}")
    return encode_ids(frame)


def _id_type(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.String | pl.Categorical | pl.Enum) or dtype.is_integer()
