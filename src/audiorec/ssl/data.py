"""Training data of the self-supervised encoders: which tracks, their input statistics, and pretext examples.

Training tracks
---------------
An encoder trained by the workflow must never have heard the audio that an evaluation tests it on. The
training tracks of a dataset are therefore the tracks that are

* in the ``train`` split of *every* label table (genre, instrument): the probes' validation and test tracks
  stay unheard, whichever probe is run;
* first heard in the recommendation train window (they occur in ``split/train``): cold items, released in the
  evaluation month, stay unheard. Warm evaluation items are train-window tracks by definition, exactly the
  tracks whose embeddings KNN already averages into user profiles.

A dataset without labels or without a listening log applies the condition it has; one with neither defines no
training tracks.

The playlist-continuation probe leaves these tracks out of its catalogue, as Choi et al. removed the tracks of
their training set from AOTM-2011, and does so for every backbone, so all backbones face the same task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from audiorec.audio.decode import load_audio
from audiorec.audio.windows import split_windows
from audiorec.errors import AudioError, AudiorecError
from audiorec.ssl.augment import augment
from audiorec.ssl.config import SSLConfig
from audiorec.ssl.features import N_MELS, SAMPLE_RATE, SEGMENT_SAMPLES, fit_to_length, log_mel
from audiorec.ssl.sampling import minimum_samples, required_samples, segment_starts

log = logging.getLogger(__name__)

TRAIN = "train"


def training_track_ids(
    track_ids: Sequence[str], label_tables: Sequence[pl.DataFrame], train_split: pl.DataFrame | None
) -> list[str]:
    """The training tracks (module docstring), in the order of ``track_ids``.

    Parameters
    ----------
    track_ids
        The dataset's tracks.
    label_tables
        Every label table of the dataset (``track_id``, ``label``, ``split``); none for a dataset without labels.
    train_split
        The recommendation train split (``track_id`` column); None for a dataset without a listening log.

    Raises
    ------
    AudiorecError
        If the dataset has neither labels nor a listening log (nothing would keep test tracks out), if a label
        table has no ``split`` column, or if no track qualifies.
    """
    if not label_tables and train_split is None:
        raise AudiorecError(
            "a dataset without label splits and without a listening log has no held-out tracks to protect, "
            "so it defines no self-supervised training tracks; train the encoder on another dataset"
        )
    allowed = set(track_ids)
    if train_split is not None:
        allowed &= set(train_split.get_column("track_id").to_list())
    for number, labels in enumerate(label_tables):
        if "split" not in labels.columns:
            raise AudiorecError(f"label table {number} has no split column; its test tracks could not be held out")
        allowed &= set(labels.filter(pl.col("split") == TRAIN).get_column("track_id").to_list())
    chosen = [track_id for track_id in track_ids if track_id in allowed]
    if not chosen:
        raise AudiorecError(
            "no track is in the train split of every label table and in the recommendation train window"
        )
    return chosen


@dataclass
class AudioScan:
    """The usable training tracks and per-band statistics of their log-mel frames."""

    paths: list[Path] = field(default_factory=list)
    mean: np.ndarray = field(default_factory=lambda: np.zeros(N_MELS))
    std: np.ndarray = field(default_factory=lambda: np.ones(N_MELS))
    skipped: dict[str, str] = field(default_factory=dict)


class _ScannedTracks(Dataset):
    """Decodes a track and sums its log-mel frames per band; returns the error text instead of raising."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, str | None]:
        """(length in samples, per-band [frame count, sum, sum of squares], error)."""
        try:
            signal = load_audio(self.paths[index], SAMPLE_RATE)
        except AudioError as error:
            return 0, None, error.problem
        frames = log_mel(split_windows(signal, SEGMENT_SAMPLES, 0.5)).reshape(-1, N_MELS).astype(np.float64)
        moments = np.stack([np.full(N_MELS, frames.shape[0], np.float64), frames.sum(axis=0), (frames**2).sum(axis=0)])
        return signal.shape[0], moments, None


def _unchanged(item: tuple) -> tuple:
    """Keep a scanned item as NumPy values (the default would convert its arrays to tensors)."""
    return item


def scan_training_audio(
    paths: Sequence[Path], config: SSLConfig, *, num_workers: int = 0, progress: bool = True
) -> AudioScan:
    """Decode every training track once: keep those long enough for the pretext task, and compute the
    per-band mean and standard deviation of their log-mel frames, with which every input is standardised.

    Undecodable tracks and tracks too short for the task are left out and listed in ``skipped``.
    """
    needed = minimum_samples(config)
    scan = AudioScan()
    moments = np.zeros((3, N_MELS))
    loader = DataLoader(_ScannedTracks(paths), batch_size=None, num_workers=num_workers, collate_fn=_unchanged)
    for path, (length, track_moments, error) in zip(
        paths, tqdm(loader, desc="ssl: scan training audio", unit="track", disable=not progress), strict=True
    ):
        if error is None and length < needed:
            error = f"{length / SAMPLE_RATE:.2f} s is shorter than the {needed / SAMPLE_RATE:.2f} s the task needs"
        if error is not None:
            scan.skipped[str(path)] = error
            log.warning("left out of training: %s: %s", path, error)
            continue
        scan.paths.append(Path(path))
        moments += track_moments
    if len(scan.paths) < 2:
        raise AudiorecError(
            f"self-supervised training needs at least 2 usable training tracks, got {len(scan.paths)} "
            f"({len(scan.skipped)} left out; tracks must hold {needed / SAMPLE_RATE:.2f} s for loss {config.loss!r}"
            f"{'' if config.positive is None else f' and positive {config.positive!r}'})"
        )
    count, total, square = moments
    scan.mean = total / count
    scan.std = np.sqrt(np.maximum(square / count - scan.mean**2, 0.0))
    return scan


class PretextExamples(Dataset):
    """One pretext example per track: the raw log-mel inputs ``(views, 188, 96)`` of its segments.

    Views are (anchor, positive) for the siamese losses and the ``cpc_segments`` consecutive segments of a
    window for MelCPC. An example depends only on (seed, epoch, track index), never on worker scheduling or
    batch order, so training is reproducible with any number of workers and resumable at any epoch.
    """

    def __init__(self, paths: Sequence[Path], config: SSLConfig) -> None:
        self.paths = list(paths)
        self.config = config
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        signal = load_audio(self.paths[index], SAMPLE_RATE)
        signal = fit_to_length(signal, max(signal.shape[0], required_samples(self.config)))
        segments = np.stack(
            [signal[start : start + SEGMENT_SAMPLES] for start in segment_starts(self.config, signal.shape[0], rng)]
        )
        if self.config.positive == "self":
            segments = np.stack([segments[0], augment(segments[0], SAMPLE_RATE, rng)])
        return log_mel(segments)


def collate(examples: list[np.ndarray]) -> torch.Tensor:
    """Stack examples into a ``(B, views, 188, 96)`` batch."""
    return torch.from_numpy(np.stack(examples))
