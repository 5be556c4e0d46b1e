"""Stages of the embed rules, and the command line's ``audiorec embed``: audio in, embeddings tables out.

Both the workflow (a shard of every layer, gathered later) and the command line (one folder, one layer at once)
build the backbone and run the extraction through :func:`extract_tracks`, so a file embeds the same either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiorec.storage.tables import embeddings_table, read_table, resolve_audio_path, write_table

if TYPE_CHECKING:
    from audiorec.backbones import Backbone
    from audiorec.extraction.embed import ShardResult

log = logging.getLogger(__name__)


def extract_tracks(
    track_ids: Sequence[str],
    paths: Sequence[str | Path],
    backbone_spec: Mapping[str, Any],
    *,
    weights: str | Path | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "embed",
) -> tuple[Backbone, ShardResult]:
    """Build the backbone of ``backbone_spec`` (``kind`` and ``options``) and embed the tracks with every layer.

    ``weights`` is a checkpoint the workflow trained for this backbone (rule ``ssl_train``); it becomes the
    backbone's ``weights`` option. Published weights (the spec's ``published`` block) are checked against their
    declared digests first. The backbone comes back with the vectors, as writing them needs its metadata.
    """
    from audiorec.backbones import build_backbone
    from audiorec.extraction.embed import extract
    from audiorec.storage.published_weights import verify_local_copy

    if "published" in backbone_spec:
        published = backbone_spec["published"]
        verify_local_copy(published["files"], published["origin"])
        log.info("%s: published weights %s, every file verified", backbone_spec["kind"], published["origin"])
    options = dict(backbone_spec.get("options") or {})
    if weights is not None:
        options["weights"] = str(weights)
    backbone = build_backbone(backbone_spec["kind"], options)
    log.info("%s: extracting on %s in %s", backbone_spec["kind"], backbone.device_description, backbone.precision)
    result = extract(
        track_ids,
        paths,
        backbone,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        description=description,
    )
    return backbone, result


def embed_shard(
    tracks_path: str | Path,
    backbone_spec: Mapping[str, Any],
    shard: int,
    shard_size: int,
    vectors_path: str | Path,
    failures_path: str | Path,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
    weights: str | Path | None = None,
) -> None:
    """Embed the ``shard``-th block of ``shard_size`` tracks (in tracks-table order) with every layer.

    The shard keeps every layer, so choosing another layer later (rule embed_gather) repeats no forward pass.
    ``weights`` is as in :func:`extract_tracks`.
    """
    from audiorec.extraction.embed import write_shard

    tracks = read_table(tracks_path, "tracks").slice(shard * shard_size, shard_size)
    backbone, result = extract_tracks(
        tracks.get_column("track_id").to_list(),
        [resolve_audio_path(p, tracks_path) for p in tracks.get_column("audio_path")],
        backbone_spec,
        weights=weights,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
        description=f"{backbone_spec['kind']} shard {shard}",
    )
    log.info("shard %d: %d tracks embedded, %d failed", shard, len(result.track_ids), len(result.failures))
    write_shard(result, backbone, vectors_path, failures_path)


def gather_embeddings(
    shard_paths: Sequence[str | Path],
    failure_paths: Sequence[str | Path],
    backbone_name: str,
    layer: str | int,
    embeddings_path: str | Path,
    failures_path: str | Path,
) -> None:
    """Write a backbone's embeddings table for the configured layer from its shards."""
    from audiorec.extraction.embed import gather_shards

    n = gather_shards(shard_paths, failure_paths, layer, embeddings_path, failures_path, {"backbone": backbone_name})
    log.info("%s: %d tracks in %s", backbone_name, n, embeddings_path)


def embed_files(
    track_ids: Sequence[str],
    paths: Sequence[str | Path],
    backbone_spec: Mapping[str, Any],
    layer: str | int,
    embeddings_path: str | Path,
    failures_path: str | Path,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    progress: bool = True,
) -> ShardResult:
    """Embed audio files in one go and write the embeddings table of ``layer`` and the failures table.

    Shards and a gather step pay off when a catalogue is extracted in many jobs; a folder embedded from the
    command line is one job, so it keeps the selected layer straight away. Returns the extraction, whose track
    ids and failures say what was written.
    """
    from audiorec.backbones import select_layer

    backbone, result = extract_tracks(
        track_ids, paths, backbone_spec, batch_size=batch_size, num_workers=num_workers, progress=progress
    )
    vectors = select_layer(result.layer_matrices(backbone), layer)
    metadata = {"backbone_kind": backbone.kind, "layer": layer, "pooling": backbone.pooling}
    write_table(embeddings_table(result.track_ids, vectors), embeddings_path, metadata=metadata)
    write_table(result.failures_frame(), failures_path, kind="failures")
    return result
