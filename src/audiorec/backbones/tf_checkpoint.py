"""Read TensorFlow (TF1 / TF2 "V2") checkpoints with numpy alone, so no model needs TensorFlow at run time.

A checkpoint ``PREFIX`` is two files. ``PREFIX.index`` is an SSTable in the LevelDB table format: sorted
``tensor name → BundleEntryProto`` records (dtype, shape, shard, byte offset and size), and one header record
under the empty key (``BundleHeaderProto``: number of shards, endianness). ``PREFIX.data-SSSSS-of-NNNNN`` hold
the raw tensor bytes. Both formats are small and stable, so a ~150-line reader replaces a multi-GB dependency.

Formats: https://github.com/google/leveldb/blob/main/doc/table_format.md and
tensorflow/core/protobuf/tensor_bundle.proto.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiorec.errors import ParameterError

TABLE_MAGIC = 0xDB4775248B80FB57
"""Last 8 bytes of every LevelDB-format table."""
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
"""A block is followed by its compression type (1 byte) and a masked CRC32C (4 bytes)."""

# tensorflow/core/framework/types.proto: the numeric dtypes a checkpoint stores as plain little-endian arrays.
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    17: np.dtype("<u2"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data files (a ``BundleEntryProto``)."""

    name: str
    dtype_code: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    sliced: bool


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``position``; return the value and the position after it."""
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _proto_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield ``(field number, value)`` of a serialised protobuf message (varints, fixed and length-delimited)."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 1:
            value, position = int.from_bytes(data[position : position + 8], "little"), position + 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire_type == 5:
            value, position = int.from_bytes(data[position : position + 4], "little"), position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield field, value


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` of a table block; keys are prefix-compressed against the previous key."""
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 * (n_restarts + 1)
    position, key = 0, b""
    while position < end:
        shared, position = _varint(block, position)
        unshared, position = _varint(block, position)
        value_length, position = _varint(block, position)
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        yield key, block[position : position + value_length]
        position += value_length


def _block_handle(data: bytes, position: int = 0) -> tuple[int, int, int]:
    """Decode a ``BlockHandle`` (offset, size) and return them with the position after it."""
    offset, position = _varint(data, position)
    size, position = _varint(data, position)
    return offset, size, position


def _read_block(table: bytes, offset: int, size: int, source: Path) -> bytes:
    if offset + size + BLOCK_TRAILER_SIZE > len(table):
        raise ParameterError(f"{source} is truncated: a block ends past the end of the file")
    compression = table[offset + size]
    if compression != 0:  # TensorFlow's BundleWriter always writes uncompressed tables
        raise ParameterError(f"{source} uses table compression type {compression}; only uncompressed is supported")
    return table[offset : offset + size]


def _parse_entry(name: str, value: bytes) -> TensorEntry:
    dtype_code, shape, shard_id, offset, size, sliced = 0, (), 0, 0, 0, False
    for field, content in _proto_fields(value):
        if field == 1:
            dtype_code = int(content)
        elif field == 2:
            dims = [dim for number, dim in _proto_fields(bytes(content)) if number == 2]
            shape = tuple(next((int(v) for n, v in _proto_fields(bytes(dim)) if n == 1), 0) for dim in dims)
        elif field == 3:
            shard_id = int(content)
        elif field == 4:
            offset = int(content)
        elif field == 5:
            size = int(content)
        elif field == 7:
            sliced = True
    return TensorEntry(name, dtype_code, shape, shard_id, offset, size, sliced)


class TFCheckpoint:
    """The tensors of a TensorFlow checkpoint, read lazily from its data files.

    Parameters
    ----------
    prefix
        The checkpoint prefix (``PREFIX.index`` must exist), or a folder whose checkpoint files have an
        empty prefix (``folder/.index``), as the musicnn package ships them.

    Raises
    ------
    ParameterError
        If the index is missing, is not a LevelDB-format table, or describes big-endian data.
    """

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        prefix = Path(prefix)
        self.prefix = f"{prefix}{os.sep}" if prefix.is_dir() else str(prefix)
        self.index_path = Path(self.prefix + ".index")
        if not self.index_path.is_file():
            raise ParameterError(f"TensorFlow checkpoint index {self.index_path} does not exist")
        self.num_shards = 1
        self.entries: dict[str, TensorEntry] = {}
        for key, value in self._records():
            if key == b"":
                header = dict(_proto_fields(value))
                self.num_shards = int(header.get(1, 1))
                if int(header.get(2, 0)) != 0:
                    raise ParameterError(f"{self.index_path} describes big-endian tensors, which are not supported")
            else:
                name = key.decode("utf-8")
                self.entries[name] = _parse_entry(name, value)

    def _records(self) -> Iterator[tuple[bytes, bytes]]:
        table = self.index_path.read_bytes()
        if len(table) < FOOTER_SIZE or struct.unpack_from("<Q", table, len(table) - 8)[0] != TABLE_MAGIC:
            raise ParameterError(f"{self.index_path} is not a TensorFlow checkpoint index (no table magic number)")
        footer = table[-FOOTER_SIZE:]
        _, _, position = _block_handle(footer)  # the metaindex block is empty in checkpoints
        index_offset, index_size, _ = _block_handle(footer, position)
        for _, handle in _block_entries(_read_block(table, index_offset, index_size, self.index_path)):
            offset, size, _ = _block_handle(handle)
            yield from _block_entries(_read_block(table, offset, size, self.index_path))

    def data_path(self, shard_id: int) -> Path:
        """The data file holding shard ``shard_id``."""
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def tensor(self, name: str) -> np.ndarray:
        """Read one tensor as a numpy array of its stored dtype and shape.

        Raises
        ------
        ParameterError
            If the tensor is absent, partitioned, of a non-numeric dtype, or its bytes do not match its shape.
        """
        try:
            entry = self.entries[name]
        except KeyError:
            raise ParameterError(f"tensor {name!r} is not in checkpoint {self.prefix}") from None
        if entry.sliced:
            raise ParameterError(f"tensor {name!r} of {self.prefix} is partitioned, which is not supported")
        dtype = TF_DTYPES.get(entry.dtype_code)
        if dtype is None:
            raise ParameterError(
                f"tensor {name!r} of {self.prefix} has unsupported TensorFlow dtype {entry.dtype_code}"
            )
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise ParameterError(
                f"tensor {name!r} of {self.prefix}: {entry.size} bytes do not hold shape {entry.shape} of {dtype}"
            )
        path = self.data_path(entry.shard_id)
        with open(path, "rb") as handle:
            handle.seek(entry.offset)
            raw = handle.read(entry.size)
        if len(raw) != entry.size:
            raise ParameterError(f"{path} is truncated: tensor {name!r} needs bytes up to {entry.offset + entry.size}")
        return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).copy()
