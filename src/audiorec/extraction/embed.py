"""The extraction driver: tracks in, per-layer time-pooled vectors out, failures recorded, never fatal.

Decoding runs in DataLoader worker processes, overlapped with the backbone's compute in the main process.
A shard stores the vectors of *every* hidden layer; :func:`gather_shards` later selects the configured
layer, so changing the layer never repeats a forward pass.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from audiorec.audio.decode import load_audio
from audiorec.backbones import Backbone, select_layer
from audiorec.errors import AudioError, AudiorecError, ContractError, SchemaError
from audiorec.storage.tables import SCHEMAS, embeddings_table, read_metadata, read_table, write_table

log = logging.getLogger(__name__)

SILENCE_PEAK = 1e-5
"""Peak amplitude under which a decoded track is flagged ``silent`` (its vector is kept, not dropped)."""


@dataclass
class ShardResult:
    """Vectors of every layer for the tracks that succeeded, and one failures row per track that did not."""

    track_ids: list[str] = field(default_factory=list)
    layers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    silent: list[bool] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    padded_short: int = 0
    """Embedded tracks shorter than one window that ``short_audio: pad`` zero-padded (recorded in metadata)."""

    def layer_matrices(self, backbone: Backbone) -> dict[str, np.ndarray]:
        """Stack each layer's vectors into a ``(n_tracks, dim)`` float32 matrix."""
        return {
            name: np.stack(self.layers[name]) if self.track_ids else np.zeros((0, dim), np.float32)
            for name, dim in backbone.layer_dims.items()
        }

    def failures_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.failures, schema={"track_id": pl.String, "audio_path": pl.String, "error": pl.String})


class _DecodedTracks(Dataset):
    """Decodes one track per item; returns the error text instead of raising, so workers never die."""

    def __init__(self, track_ids: Sequence[str], paths: Sequence[Path], backbone: Backbone) -> None:
        self.track_ids = list(track_ids)
        self.paths = list(paths)
        self.sample_rate = backbone.sample_rate
        self.clip_policy = backbone.clip_policy

    def __len__(self) -> int:
        return len(self.track_ids)

    def __getitem__(self, index: int) -> tuple[str, str, torch.Tensor | None, str | None]:
        """Decode one track; the signal travels as a tensor, which workers hand over in shared memory.

        A numpy array would be pickled through a pipe instead, which costs a decoding worker about as much
        time per track as decoding a FLAC file does.
        """
        track_id, path = self.track_ids[index], self.paths[index]
        try:
            signal = load_audio(path, self.sample_rate, max_duration_s=self.clip_policy.max_duration_s)
            return track_id, str(path), torch.from_numpy(self.clip_policy.apply(signal, self.sample_rate)), None
        except AudioError as error:
            return track_id, str(path), None, error.problem
        except Exception as error:  # a decoder bug must not kill a 100k-track extraction either
            return track_id, str(path), None, f"{type(error).__name__}: {error}"


def _as_list(batch: list) -> list:
    return batch


def _worker_context() -> str:
    """Start decoding workers by fork where the platform has it.

    Workers only decode audio and never touch CUDA, so forking is safe even after a GPU model was loaded;
    spawn would re-run the calling script in each worker, which breaks Snakemake's script jobs.
    """
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def extract(
    track_ids: Sequence[str],
    audio_paths: Sequence[str | os.PathLike[str]],
    backbone: Backbone,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "embed",
) -> ShardResult:
    """Embed the given tracks with ``backbone``.

    A track that cannot be decoded, or whose vectors come out non-finite, becomes a failures row naming
    the file and the problem; every other track still gets its vectors.
    """
    dataset = _DecodedTracks(track_ids, [Path(p) for p in audio_paths], backbone)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_as_list,
        multiprocessing_context=_worker_context() if num_workers > 0 else None,
        persistent_workers=False,
    )
    result = ShardResult(layers={name: [] for name in backbone.layers})
    with torch.inference_mode(), tqdm(total=len(dataset), desc=description, unit="track", disable=not progress) as bar:
        for batch in loader:
            decoded = []
            for track_id, path, signal, error in batch:
                refusal = backbone.short_audio_refusal(signal.numpy()) if error is None else None
                if error is not None or refusal is not None:  # undecodable, or too short for a windowed model
                    result.failures.append({"track_id": track_id, "audio_path": path, "error": error or refusal})
                else:
                    decoded.append((track_id, path, signal.numpy()))
            for (track_id, path, signal), vectors, error in _embed_isolating_failures(backbone, decoded):
                if error is not None:
                    result.failures.append({"track_id": track_id, "audio_path": path, "error": error})
                    continue
                result.track_ids.append(track_id)
                result.silent.append(bool(np.max(np.abs(signal)) < SILENCE_PEAK))
                result.padded_short += int(backbone.short_audio == "pad" and backbone.shorter_than_window(signal))
                for name in backbone.layers:
                    result.layers[name].append(vectors[name])
            bar.update(len(batch))
    for failure in result.failures:
        log.warning("failed %s (%s): %s", failure["track_id"], failure["audio_path"], failure["error"])
    return result


def check_batch_output(backbone: Backbone, outputs: Any, n_tracks: int) -> None:
    """Raise :class:`ContractError` unless ``outputs`` has every declared layer at its declared width.

    Unlike a track the backbone cannot embed (a failures row), a batch of the wrong shape is a bug in the backbone
    itself: every track would be wrong the same way, so the job stops, naming the kind and the layer.
    """
    what = f"backbone kind {backbone.kind!r}"
    if not isinstance(outputs, Mapping):
        raise ContractError(f"{what}: embed_batch returned {type(outputs).__name__}, not a dict of layer -> array")
    missing = [name for name in backbone.layers if name not in outputs]
    if missing:
        raise ContractError(f"{what}: embed_batch returned no layer(s) {missing}; it declares {list(backbone.layers)}")
    for name, width in backbone.layer_dims.items():
        shape = np.shape(outputs[name])
        if shape != (n_tracks, width):
            raise ContractError(
                f"{what}: layer {name!r} came out {shape} for {n_tracks} tracks; it declares width {width}"
            )


def _embed_isolating_failures(
    backbone: Backbone, decoded: list[tuple[str, str, np.ndarray]]
) -> Iterator[tuple[tuple[str, str, np.ndarray], dict[str, np.ndarray] | None, str | None]]:
    """Embed a batch; if the batch fails as a whole, retry track by track to isolate the culprit."""
    if not decoded:
        return
    try:
        batch_vectors = backbone.embed_batch([signal for _, _, signal in decoded])
    except Exception as error:
        if len(decoded) == 1:
            yield decoded[0], None, f"backbone failed: {type(error).__name__}: {error}"
        else:
            for item in decoded:
                yield from _embed_isolating_failures(backbone, [item])
        return
    check_batch_output(backbone, batch_vectors, len(decoded))
    for index, item in enumerate(decoded):
        vectors = {name: batch_vectors[name][index] for name in backbone.layers}
        if all(np.all(np.isfinite(vector)) for vector in vectors.values()):
            yield item, vectors, None
        else:
            yield item, None, "backbone produced NaN or infinite values"


def write_shard(result: ShardResult, backbone: Backbone, vectors_path: str | Path, failures_path: str | Path) -> None:
    """Write a shard: ``track_id``, ``silent`` and one ``fixed_size_list<float32>`` column per layer."""
    columns: dict[str, pa.Array] = {
        "track_id": pa.array(result.track_ids, type=pa.string()),
        "silent": pa.array(result.silent, type=pa.bool_()),
    }
    for name, matrix in result.layer_matrices(backbone).items():
        columns[name] = embeddings_table(result.track_ids, matrix).column("embedding")
    metadata = {
        "backbone_kind": backbone.kind,
        "layers": list(backbone.layers),
        "sample_rate": backbone.sample_rate,
        "weights_sha256": backbone.weights_sha256,
        "pooling": backbone.pooling,
        "precision": backbone.precision,
        "precision_requested": getattr(backbone, "requested_precision", backbone.precision),
        "device": backbone.device_description,
        "short_audio": backbone.short_audio,
        "short_audio_padded": result.padded_short,
    }
    write_table(pa.table(columns), vectors_path, metadata=metadata)
    write_table(result.failures_frame(), failures_path, kind="failures")


def _read_shard(path: str | Path) -> pa.Table:
    """Read one shard's vectors; a damaged shard is named, so the user knows which one to delete and rerun."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise SchemaError(f"{path}: cannot read shard: {error}") from error


def read_shard_layers(shard_paths: Sequence[str | Path]) -> tuple[pa.Table, dict[str, np.ndarray], dict[str, object]]:
    """Concatenate shards in order: the combined table, every hidden layer as a ``(tracks, dim)`` matrix (in the
    backbone's layer order), and the first shard's metadata."""
    if not shard_paths:
        raise SchemaError("no shards to gather")
    combined = pa.concat_tables([_read_shard(path) for path in shard_paths])
    metadata = read_metadata(shard_paths[0])
    per_layer = {}
    for name in metadata.get("layers", []):
        column = combined.column(name).combine_chunks()
        values = column.flatten().to_numpy(zero_copy_only=False)
        per_layer[name] = values.reshape(combined.num_rows, column.type.list_size).astype(np.float32, copy=False)
    return combined, per_layer, metadata


def gather_shards(
    shard_paths: Sequence[str | Path],
    failure_paths: Sequence[str | Path],
    layer: str | int,
    embeddings_path: str | Path,
    failures_path: str | Path,
    extra_metadata: dict[str, object] | None = None,
) -> int:
    """Concatenate shards in order, keep the configured layer, and write the backbone's tables.

    Returns the number of embedded tracks. Raises :class:`AudiorecError` if no track at all could be
    embedded, since every downstream result would be meaningless.
    """
    combined, per_layer, metadata = read_shard_layers(shard_paths)
    failures = pl.concat([read_table(path, "failures") for path in failure_paths]) if failure_paths else None
    if failures is None:
        failures = pl.DataFrame(schema=dict(zip(SCHEMAS["failures"].names, [pl.String] * 3, strict=True)))
    if combined.num_rows == 0:
        raise AudiorecError(_nothing_embedded(metadata, failures, extra_metadata or {}))
    vectors = select_layer(per_layer, layer)
    table = embeddings_table(combined.column("track_id").to_pylist(), vectors).append_column(
        "silent", combined.column("silent")
    )
    metadata.update({"layer": layer, "dim": int(vectors.shape[1]), **(extra_metadata or {})})
    if "short_audio_padded" in metadata:  # the first shard's count, summed over every shard
        metadata["short_audio_padded"] = sum(int(read_metadata(p).get("short_audio_padded", 0)) for p in shard_paths)
    write_table(table, embeddings_path, metadata=metadata)
    write_table(failures, failures_path, kind="failures")
    return combined.num_rows


def _nothing_embedded(metadata: Mapping[str, Any], failures: pl.DataFrame, extra: Mapping[str, Any]) -> str:
    """The one line that ends a gather with no vector: which backbone, and the error most tracks met."""
    who = f"backbone {extra.get('backbone', '?')!r} (kind {metadata.get('backbone_kind', '?')!r})"
    if failures.is_empty():
        return f"{who}: no track could be embedded, and no failure was recorded"
    top = failures.group_by("error").len().sort(["len", "error"], descending=[True, False]).row(0)
    return f"{who}: no track could be embedded; {top[1]} of {failures.height} tracks failed with: {top[0]}"
