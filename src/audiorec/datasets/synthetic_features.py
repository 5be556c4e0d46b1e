"""Generated precomputed features of the ``synthetic`` source: noisy random projections of the track latents.

A feature of width ``D`` is ``latent @ P + noise``: ``P`` is a ``(d, D)`` Gaussian projection scaled so each
dimension of the signal has unit variance, and the noise has standard deviation ``feature_noise`` per
dimension. The latents decide which taste clusters a track belongs to, and users choose clusters by taste, so
the features carry a real content signal; the noise, and popularity (which they cannot see), keep it weak.

The vectors are generated and written in blocks of :data:`BLOCK_ROWS` tracks, each block from its own seeded
stream, so a 109k x 4800 feature (2.1 GB) never needs more than one block in memory while it is written, and
the values do not depend on how the work is chunked. Reading preallocates the ``(n, D)`` matrix and fills it
row group by row group, so the reader holds the matrix once, not the Arrow table beside it (2.7 GB peak for
the 2.1 GB matrix of a 109k x 4800 feature).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audiorec.datasets.synthetic_options import FEATURES_STREAM, SyntheticOptions, child_rng
from audiorec.errors import DatasetError
from audiorec.storage.atomic import atomic_path

BLOCK_ROWS = 4096
"""Tracks generated, and written as one Parquet row group, at a time."""


def feature_schema(width: int) -> pa.Schema:
    """The embeddings-table layout: ``track_id`` and ``embedding: fixed_size_list<float32>[width]``."""
    return pa.schema([("track_id", pa.string()), ("embedding", pa.list_(pa.float32(), width))])


def _stream_key(name: str) -> int:
    """A stable integer per feature name, so each feature's draws are its own whatever else is generated."""
    return zlib.crc32(name.encode())


def feature_blocks(
    options: SyntheticOptions, name: str, width: int, latent: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first row, (rows, width) float32 block)`` of feature ``name`` over the tracks' ``latent``."""
    key = _stream_key(name)
    noise = options.resolved().feature_noise
    projection_rng = child_rng(options, FEATURES_STREAM, key)
    norm = float(np.sqrt(np.mean(np.sum(latent.astype(np.float64) ** 2, axis=1))))
    projection = (projection_rng.standard_normal((latent.shape[1], width)) / max(norm, 1e-12)).astype(np.float32)
    for block, first in enumerate(range(0, latent.shape[0], BLOCK_ROWS)):
        rows = latent[first : first + BLOCK_ROWS]
        rng = child_rng(options, FEATURES_STREAM, key, block + 1)
        values = rows @ projection
        values += noise * rng.standard_normal(values.shape, dtype=np.float32)
        yield first, values


def write_feature(
    options: SyntheticOptions, name: str, width: int, track_ids: list[str], latent: np.ndarray, path: Path
) -> None:
    """Write feature ``name`` for every track to ``path`` (an embeddings table), block by block, atomically."""
    schema = feature_schema(width)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="none") as writer:
        # Gaussian noise does not compress: compression would cost time and save almost nothing.
        for first, values in feature_blocks(options, name, width, latent):
            ids = pa.array(track_ids[first : first + values.shape[0]], type=pa.string())
            column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=pa.float32()), width)
            writer.write_table(pa.Table.from_arrays([ids, column], schema=schema))


def read_feature(path: Path) -> tuple[list[str], np.ndarray]:
    """Read a feature file into ids and a ``(n, D)`` float32 matrix, one row group at a time.

    Raises
    ------
    DatasetError
        If the file is missing or is not an embeddings table.
    """
    if not path.is_file():
        raise DatasetError(f"synthetic: feature file {path} does not exist; fetch the dataset first")
    source = pq.ParquetFile(path)
    embedding = source.schema_arrow.field("embedding").type if "embedding" in source.schema_arrow.names else None
    if embedding is None or not pa.types.is_fixed_size_list(embedding):
        raise DatasetError(f"{path}: not an embeddings table (track_id, embedding: fixed_size_list<float32>)")
    vectors = np.empty((source.metadata.num_rows, embedding.list_size), dtype=np.float32)
    track_ids: list[str] = []
    row = 0
    # Row group by row group (each one written block): iter_batches held about twice the matrix at 4800-d.
    for group in range(source.num_row_groups):
        part = source.read_row_group(group)
        values = part.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        vectors[row : row + part.num_rows] = values.reshape(part.num_rows, -1)
        track_ids.extend(part.column("track_id").to_pylist())
        row += part.num_rows
    return track_ids, vectors
