"""Stages of the data rules: a dataset's tables, declared downloads and archives, precomputed vectors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiorec.datasets import get_source


def fetch_dataset(source: str, options: Mapping[str, Any], out_dir: str | Path) -> None:
    """Produce a dataset's tables (tracks, interactions, labels, playlists) in ``out_dir``."""
    get_source(source).fetch(options, out_dir)


def download(name: str, spec: Mapping[str, Any], dest: str | Path) -> None:
    """Fetch a declared file (URL or local path) to ``dest``, verified against its checksum."""
    from audiorec.storage.download import DownloadSpec, fetch

    fetch(DownloadSpec.from_mapping(name, spec), dest)


def download_weights(source: str, entry: Mapping[str, Any], file: str, dest: str | Path) -> None:
    """Fetch the file ``file`` of the published weights ``source`` to ``dest``, verified against its sha256."""
    from audiorec.storage.published_weights import parse_source
    from audiorec.storage.weights_fetch import fetch_published_file

    fetch_published_file(parse_source(source, entry, f"published weights {source!r}"), file, dest)


def extract(archive_path: str | Path, archive_format: str, out_dir: str | Path) -> None:
    """Unpack a downloaded archive into ``out_dir``, refusing members that would land outside it."""
    from audiorec.storage.archives import extract_archive

    extract_archive(archive_path, archive_format, out_dir)


def embed_precomputed(
    source: str,
    dataset_options: Mapping[str, Any],
    backbone_name: str,
    backbone_options: Mapping[str, Any],
    tracks_path: str | Path,
    embeddings_path: str | Path,
    failures_path: str | Path,
    layer: str | int = "last",
) -> None:
    """Write a ``precomputed`` backbone's embeddings: the dataset's or a user's vectors, aligned with its tracks.

    ``layer`` picks the vector column of a user's file (``options.path``).
    """
    from audiorec.backbones.precomputed import PrecomputedBackbone

    backbone = PrecomputedBackbone.from_options(backbone_options)
    backbone.write_embeddings(
        backbone_name, source, dataset_options, tracks_path, embeddings_path, failures_path, layer
    )
