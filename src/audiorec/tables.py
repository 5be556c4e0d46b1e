"""Parquet table contracts, atomic writes and validating readers.

Every stage of the workflow exchanges Parquet tables with fixed schemas (see DESIGN.md). Writing goes to a
temporary file in the destination folder and is renamed into place, so an interrupted job never leaves a
half-written file that looks complete to Snakemake or to a person.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from audiorec.atomic import atomic_path
from audiorec.errors import SchemaError

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
    """
    table = to_arrow(frame)
    if kind is not None:
        table = _conform(table, kind)
    if metadata is not None:
        existing = dict(table.schema.metadata or {})
        existing[METADATA_KEY] = json.dumps(dict(metadata), sort_keys=True).encode()
        table = table.replace_schema_metadata(existing)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: str | os.PathLike[str], kind: str | None = None) -> pl.DataFrame:
    """Read a Parquet table; when ``kind`` is given, check it follows that contract.

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
    """Read an embeddings table into track ids and a ``(n_tracks, D)`` float32 matrix."""
    table = pq.read_table(path)
    if "track_id" not in table.column_names or "embedding" not in table.column_names:
        raise SchemaError(f"{path}: embeddings table needs columns track_id and embedding")
    column = table.column("embedding").combine_chunks()
    if not pa.types.is_fixed_size_list(column.type):
        raise SchemaError(f"{path}: column embedding has type {column.type}, expected fixed_size_list<float32>")
    dim = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return table.column("track_id").to_pylist(), values.reshape(-1, dim)


def resolve_audio_path(audio_path: str, tracks_path: str | os.PathLike[str]) -> Path:
    """Resolve a ``tracks.audio_path`` value: relative paths are relative to the tracks table's folder.

    Storing paths relative to the table keeps a results folder relocatable (copy it to a cluster, and the
    audio is still found), while datasets that live elsewhere may store absolute paths.
    """
    candidate = Path(audio_path)
    return candidate if candidate.is_absolute() else Path(tracks_path).parent / candidate
