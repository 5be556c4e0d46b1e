"""Stages of the ssl rules: the tracks a self-supervised encoder may learn from, and its training."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from audiorec.storage.tables import read_table, resolve_audio_path, write_table

log = logging.getLogger(__name__)


def ssl_training_tracks(
    tracks_path: str | Path,
    label_paths: Sequence[str | Path],
    train_split_path: str | Path | None,
    out_path: str | Path,
) -> None:
    """Write the tracks self-supervised encoders may train on (:mod:`audiorec.ssl.data`): ``track_id``."""
    from audiorec.ssl import training_track_ids

    track_ids = read_table(tracks_path, "tracks").get_column("track_id").to_list()
    labels = [read_table(path, "labels") for path in label_paths]
    train = read_table(train_split_path, "split") if train_split_path is not None else None
    chosen = training_track_ids(track_ids, labels, train)
    log.info("%d of %d tracks are self-supervised training tracks", len(chosen), len(track_ids))
    write_table(pl.DataFrame({"track_id": chosen}, schema={"track_id": pl.String}), out_path)


def ssl_train(
    tracks_path: str | Path,
    training_tracks_path: str | Path,
    options: Mapping[str, Any],
    out_path: str | Path,
    *,
    num_workers: int = 0,
    progress: bool = True,
) -> None:
    """Train a self-supervised encoder on the training tracks' audio and write its checkpoint.

    The training state after every epoch is kept beside the checkpoint (``<name>.state.pt``), so an
    interrupted job resumes, and a job rerun with more ``epochs`` continues where the last one ended.
    """
    from audiorec.ssl import SSLConfig, save_checkpoint, train

    config = SSLConfig.from_mapping(options)
    chosen = read_table(training_tracks_path).get_column("track_id").to_list()
    tracks = read_table(tracks_path, "tracks").filter(pl.col("track_id").is_in(chosen))
    paths = [resolve_audio_path(p, tracks_path) for p in tracks.get_column("audio_path")]
    state_path = Path(out_path).with_suffix(".state.pt")
    model, history = train(config, paths, resume_path=state_path, num_workers=num_workers, progress=progress)
    save_checkpoint(model, history, out_path)
    log.info("losses per epoch: %s", ", ".join(f"{loss:.4f}" for loss in history.losses))
