"""Per-track vectors a researcher brings: the Parquet file of ``{kind: precomputed, options: {path: FILE}}``.

The file has a ``track_id`` text column and one or more vector columns (a list or fixed-size list of floats per
row); each vector column is one layer, in file order, and the backbone's ``layer`` picks the one written (as
:func:`audiorec.backbones.base.select_layer` does for extracted layers: ``last``, ``mean``, an index or a column
name). Only the columns the layer needs are read.

A file written by another program can carry what an extraction never produces: NaN, vectors of several widths,
a track listed twice. Each would change results without a trace (a NaN poisons every similarity it enters, a
repeated id makes a track's vector depend on row order), so each is an error that names the file, the problem,
how many rows it touches and a few of their track ids. The layout alone is read from the Parquet footer by
:func:`vector_file`, which the plan calls to refuse a bad file before any job runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audiorec.backbones.base import select_layer
from audiorec.errors import DatasetError, ParameterError

ID_COLUMN = "track_id"
EXAMPLES = 5
"""How many track ids (or row numbers) an error or a log line shows."""


@dataclass(frozen=True)
class VectorFile:
    """A user's vector file as its footer describes it: the path and the vector columns, in file order."""

    path: Path
    columns: tuple[str, ...]

    def layer_columns(self, layer: str | int) -> tuple[str, ...]:
        """The vector columns ``layer`` reads: every one for ``mean``, else the one it selects.

        Raises
        ------
        ParameterError
            Naming the file, for an index out of range or a name that is no vector column.
        """
        if layer == "mean":
            return self.columns
        if layer == "last":
            return self.columns[-1:]
        if isinstance(layer, int) and not isinstance(layer, bool):
            if not -len(self.columns) <= layer < len(self.columns):
                raise ParameterError(
                    f"{self.path}: layer {layer} is out of range for its {len(self.columns)} vector column(s) "
                    f"{list(self.columns)}"
                )
            return (self.columns[layer],)
        if layer in self.columns:
            return (str(layer),)
        raise ParameterError(
            f"{self.path}: layer must be 'last', 'mean', an index or one of its vector columns {list(self.columns)}; "
            f"got {layer!r}"
        )


@dataclass(frozen=True)
class UserVectors:
    """The vectors of the selected layer: track ids in file order, a ``(n, D)`` float32 matrix, the columns read."""

    track_ids: list[str]
    vectors: np.ndarray
    columns: tuple[str, ...]


def vector_file(path: str | Path) -> VectorFile:
    """Read the layout of a user's vector file from its Parquet footer (no vector is read).

    Raises
    ------
    DatasetError
        Naming the file, when it does not exist or is not Parquet, has no text ``track_id`` column, no vector
        column, or a column besides ``track_id`` that is not a list of floats.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (a relative path is relative to the folder the workflow runs in)")
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise DatasetError(f"{path}: cannot read it as a Parquet file: {error}") from error
    if ID_COLUMN not in schema.names:
        raise DatasetError(f"{path}: no {ID_COLUMN} column; its columns are {schema.names}")
    id_type = schema.field(ID_COLUMN).type
    if pa.types.is_dictionary(id_type):
        id_type = id_type.value_type
    if not (pa.types.is_string(id_type) or pa.types.is_large_string(id_type)):
        raise DatasetError(f"{path}: column {ID_COLUMN} has type {id_type}; track ids must be text")
    columns = tuple(name for name in schema.names if name != ID_COLUMN)
    if not columns:
        raise DatasetError(
            f"{path}: no vector column besides {ID_COLUMN}; give each layer a column of float lists, one per track"
        )
    bad = [f"{name} ({schema.field(name).type})" for name in columns if not _is_float_vector(schema.field(name).type)]
    if bad:
        raise DatasetError(
            f"{path}: {len(bad)} column(s) are not vectors of floats: {', '.join(bad)}; every column besides "
            f"{ID_COLUMN} must be a list or fixed-size list of floats (one layer each)"
        )
    return VectorFile(path, columns)


def _is_float_vector(dtype: pa.DataType) -> bool:
    nested = pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype)
    return nested and pa.types.is_floating(dtype.value_type)


def read_user_vectors(path: str | Path, layer: str | int) -> UserVectors:
    """Read and check the vectors of ``layer`` from a user's file (see the module docstring).

    Raises
    ------
    DatasetError
        Naming the file and the problem, with counts and example track ids: a bad layout (:func:`vector_file`), no
        rows, null or repeated track ids, and in a column the layer reads: null vectors, vectors of mixed or zero
        width, NaN, infinite or missing values.
    ParameterError
        Naming the file, when ``layer`` selects no column, or is ``mean`` over columns of different widths.
    """
    layout = vector_file(path)
    columns = layout.layer_columns(layer)
    table = pq.read_table(layout.path, columns=[ID_COLUMN, *columns])
    if table.num_rows == 0:
        raise DatasetError(f"{layout.path}: the file holds no rows")
    track_ids = _checked_ids(layout.path, table.column(ID_COLUMN).combine_chunks())
    per_layer = {name: _column_vectors(layout.path, name, table.column(name), track_ids) for name in columns}
    try:
        vectors = select_layer(per_layer, layer) if layer == "mean" else per_layer[columns[0]]
    except ParameterError as error:
        raise ParameterError(f"{layout.path}: {error}") from error
    return UserVectors(track_ids, vectors, columns)


def _checked_ids(path: Path, ids: pa.Array) -> list[str]:
    """The track ids as text; null or repeated ones are an error."""
    if ids.null_count:
        rows = np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))
        raise DatasetError(
            f"{path}: {ids.null_count} of {len(ids)} rows have a null {ID_COLUMN}, e.g. rows "
            f"{rows[:EXAMPLES].tolist()} (counting from 0)"
        )
    ids = ids.cast(pa.string())
    counts = pc.value_counts(ids)
    repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    if len(repeated):
        extra = pc.sum(repeated.field("counts")).as_py() - len(repeated)
        examples = repeated.field("values").to_pylist()[:EXAMPLES]
        raise DatasetError(
            f"{path}: {len(repeated)} track ids appear more than once ({extra} extra rows), e.g. {examples}; "
            "give each track one row"
        )
    return ids.to_pylist()


def _column_vectors(path: Path, name: str, chunks: pa.ChunkedArray, track_ids: list[str]) -> np.ndarray:
    """One vector column as a ``(n, D)`` float32 matrix; null, ragged, empty or non-finite vectors are an error."""
    column = chunks.combine_chunks()
    where = f"{path}: column {name!r}"
    if column.null_count:
        null = column.is_null().to_numpy(zero_copy_only=False)
        examples = _examples(track_ids, null)
        raise DatasetError(f"{where} has {column.null_count} null vectors of {len(column)}, e.g. track ids {examples}")
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
    else:
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        widths, counts = np.unique(lengths, return_counts=True)
        width = int(widths[np.argmax(counts)])
        if len(widths) > 1:
            found = ", ".join(f"{count} of width {size}" for size, count in zip(widths, counts, strict=True))
            raise DatasetError(
                f"{where} mixes vector widths ({found}); e.g. track ids {_examples(track_ids, lengths != width)} "
                f"differ from the most common width {width}; every vector of a column must have the same width"
            )
    if width == 0:
        raise DatasetError(f"{where} holds empty vectors (width 0)")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused below
        vectors = (
            column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(column), width)
        )
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise DatasetError(
            f"{where} has NaN, infinite or missing values in {int(bad.sum())} of {len(column)} vectors, e.g. track "
            f"ids {_examples(track_ids, bad)}"
        )
    return vectors


def _examples(track_ids: list[str], mask: np.ndarray) -> list[str]:
    return [track_ids[row] for row in np.flatnonzero(mask)[:EXAMPLES]]
