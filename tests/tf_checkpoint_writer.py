"""Write TensorFlow-format checkpoints in tests, without TensorFlow, to exercise the numpy reader.

Follows the LevelDB table format (prefix-compressed keys, restart points, several data blocks and an index
block) and the ``BundleEntryProto`` / ``BundleHeaderProto`` encodings that TensorFlow's BundleWriter emits.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = 0xDB4775248B80FB57
DTYPE_CODES = {
    np.dtype("float32"): 1,
    np.dtype("float64"): 2,
    np.dtype("int32"): 3,
    np.dtype("int64"): 9,
    np.dtype("bool"): 10,
    np.dtype("float16"): 19,
}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def field_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<I", value)


def entry_proto(dtype_code: int, shape: tuple[int, ...], offset: int, size: int, sliced: bool = False) -> bytes:
    shape_proto = b"".join(field_bytes(2, field_varint(1, dim)) for dim in shape)
    proto = field_varint(1, dtype_code) + field_bytes(2, shape_proto)
    if offset:  # proto3 leaves default values out, as TensorFlow does
        proto += field_varint(4, offset)
    proto += field_varint(5, size) + field_fixed32(6, 0x12345678)
    if sliced:
        proto += field_bytes(7, b"")
    return proto


def block(records: list[tuple[bytes, bytes]], restart_interval: int = 4) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for index, (key, value) in enumerate(records):
        if index % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = next((i for i, (a, b) in enumerate(zip(key, previous, strict=False)) if a != b), None)
            shared = min(len(key), len(previous)) if shared is None else shared
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    restarts = restarts or [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def write_checkpoint(
    prefix: str | Path,
    tensors: dict[str, np.ndarray],
    *,
    records_per_block: int = 5,
    big_endian: bool = False,
    extra_records: dict[str, bytes] | None = None,
) -> None:
    """Write ``PREFIX.index`` and ``PREFIX.data-00000-of-00001`` holding ``tensors``.

    ``extra_records`` adds raw ``name → BundleEntryProto`` records (e.g. a partitioned or string tensor).
    """
    data = bytearray()
    records = {b"": field_varint(1, 1) + field_varint(2, int(big_endian)) + field_bytes(3, field_varint(1, 1))}
    for name, array in tensors.items():
        array = np.asarray(array)  # tobytes() is C-ordered; ascontiguousarray would make scalars 1-d
        records[name.encode()] = entry_proto(DTYPE_CODES[array.dtype], array.shape, len(data), array.nbytes)
        data += array.tobytes()
    for name, proto in (extra_records or {}).items():
        records[name.encode()] = proto
    ordered = sorted(records.items())
    table, index = bytearray(), []
    for start in range(0, len(ordered), records_per_block):
        chunk = ordered[start : start + records_per_block]
        contents = block(chunk)
        index.append((chunk[-1][0], varint(len(table)) + varint(len(contents))))
        table += contents + b"\x00" + b"\x00" * 4
    meta_offset, meta = len(table), block([])
    table += meta + b"\x00" * 5
    index_offset, index_block = len(table), block(index, restart_interval=1)
    table += index_block + b"\x00" * 5
    handles = varint(meta_offset) + varint(len(meta)) + varint(index_offset) + varint(len(index_block))
    table += handles + b"\x00" * (40 - len(handles)) + struct.pack("<Q", MAGIC)
    Path(f"{prefix}.index").write_bytes(bytes(table))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
