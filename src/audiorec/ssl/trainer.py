"""Training of a self-supervised encoder: Adam, learning rate reduced on a plateau of the training loss,
a resumable checkpoint after every epoch, and a final checkpoint the ``ssl`` backbone loads.

Training is deterministic on the CPU for a given seed: the initialisation is seeded, every example is a pure
function of (seed, epoch, track), and batches are a seeded permutation per epoch. The same holds after a
resume, because nothing random is carried from one epoch to the next except the model and optimiser states,
which the checkpoint stores.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from audiorec.common.devices import resolve_device
from audiorec.errors import AudiorecError
from audiorec.ssl.config import SSLConfig
from audiorec.ssl.data import PretextExamples, collate, scan_training_audio
from audiorec.ssl.losses import cpc_loss, info_nce, multi_level_info_nce
from audiorec.ssl.model import SSLModel
from audiorec.storage.checkpointing import data_fingerprint, load_state, save_state

log = logging.getLogger(__name__)


@dataclass
class TrainingHistory:
    """What happened during training, stored in the checkpoint.

    Attributes
    ----------
    losses, learning_rates, seconds
        Mean training loss, learning rate and wall time of every epoch run.
    n_tracks
        Training tracks used; ``skipped`` maps the others (undecodable, too short) to the reason.
    stopped_early
        Whether training stopped because the learning rate fell below ``min_lr``.
    """

    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    n_tracks: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    stopped_early: bool = False


def pretext_loss(model: SSLModel, batch: torch.Tensor) -> torch.Tensor:
    """The configured loss of a batch of raw log-mel examples ``(B, views, frames, 96)``.

    Anchors and positives (or all segments of the MelCPC windows) go through the encoder in one call, so batch
    normalisation sees them together.
    """
    config = model.config
    n_examples, n_views = batch.shape[:2]
    out = model.encode(batch.transpose(0, 1).reshape(n_views * n_examples, *batch.shape[2:]))
    if config.loss == "multi":
        anchors, positives = zip(*(level.view(n_views, n_examples, -1) for level in out.levels), strict=True)
        return multi_level_info_nce(anchors, positives, config.similarity, config.temperature)
    segments = out.segment.view(n_views, n_examples, -1).transpose(0, 1)  # (B, views, D)
    if config.loss == "cpc":
        return cpc_loss(segments, model.context(segments), model.predictors, config.similarity, config.temperature)
    return info_nce(segments[:, 0], segments[:, 1], config.similarity, config.temperature)


def epoch_batches(config: SSLConfig, n_tracks: int, epoch: int) -> list[list[int]]:
    """A seeded permutation of the tracks cut into full batches (a last partial batch is dropped, as batch
    normalisation and in-batch negatives degrade on tiny batches), or one batch when fewer tracks exist."""
    order = np.random.default_rng([config.seed, epoch]).permutation(n_tracks).tolist()
    size = config.batch_size
    if n_tracks < size:
        return [order]
    return [order[start : start + size] for start in range(0, n_tracks - size + 1, size)]


def _fingerprint(config: SSLConfig, paths: Sequence[Path]) -> str:
    payload = json.dumps({"config": config.training_fingerprint(), "tracks": [str(p) for p in paths]}, sort_keys=True)
    return data_fingerprint(payload.encode())


def train(
    config: SSLConfig,
    audio_paths: Sequence[str | Path],
    *,
    resume_path: str | Path | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> tuple[SSLModel, TrainingHistory]:
    """Train an encoder on the audio of ``audio_paths`` with the configured pretext task.

    Parameters
    ----------
    config
        Architecture, pretext task and schedule.
    audio_paths
        The training tracks' audio files (see :mod:`audiorec.ssl.data` for which tracks qualify).
    resume_path
        Where to keep the training state after every epoch. If it holds the state of a run with the same
        config and tracks that is not past ``epochs``, training continues from it: an interrupted run resumes,
        and raising ``epochs`` extends a finished one instead of starting over.
    num_workers
        Worker processes that decode and augment examples while the model trains.
    progress
        Show tqdm bars.

    Returns
    -------
    model, history
        The trained model (on the CPU, in eval mode) and what happened.
    """
    paths = [Path(p) for p in audio_paths]
    scan = scan_training_audio(paths, config, num_workers=num_workers, progress=progress)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = SSLModel(config)
    model.set_standardisation(torch.from_numpy(scan.mean).float(), torch.from_numpy(scan.std).float())
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience
    )
    history = TrainingHistory(n_tracks=len(scan.paths), skipped=scan.skipped)
    fingerprint = _fingerprint(config, scan.paths)
    resume = Path(resume_path) if resume_path is not None else None
    start = (
        _resume(resume, fingerprint, config.epochs, model, optimizer, scheduler, history) if resume is not None else 0
    )

    dataset = PretextExamples(scan.paths, config)
    log.info(
        "training on %d tracks (%d left out) on %s from epoch %d", len(scan.paths), len(scan.skipped), device, start
    )
    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        dataset.epoch = epoch
        loader = DataLoader(
            dataset,
            batch_sampler=epoch_batches(config, len(dataset), epoch),
            num_workers=num_workers,
            collate_fn=collate,
            pin_memory=device.type == "cuda",
        )
        model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"ssl epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress)
        for batch in bar:
            loss = pretext_loss(model, batch.to(device, non_blocking=True))
            if not torch.isfinite(loss):
                raise AudiorecError(f"training loss became {loss.item()} at epoch {epoch + 1}; lower learning_rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * batch.shape[0], count + batch.shape[0]
            bar.set_postfix(loss=f"{loss.item():.4f}")
        epoch_loss = total / count
        scheduler.step(epoch_loss)
        history.losses.append(epoch_loss)
        history.learning_rates.append(optimizer.param_groups[0]["lr"])
        history.seconds.append(time.perf_counter() - began)
        log.info(
            "epoch %d: loss %.5f, lr %.2e, %.1f s",
            epoch + 1,
            epoch_loss,
            history.learning_rates[-1],
            history.seconds[-1],
        )
        history.stopped_early = history.learning_rates[-1] < config.min_lr
        if resume is not None:
            save_state(
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch + 1,
                    "state_dict": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "history": dataclasses.asdict(history),
                },
                resume,
            )
        if history.stopped_early:
            log.info("learning rate below min_lr %.1e: training stops", config.min_lr)
            break
    model.to("cpu").eval()
    return model, history


def _resume(
    path: Path,
    fingerprint: str,
    epochs: int,
    model: SSLModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    history: TrainingHistory,
) -> int:
    """Restore a matching training state from ``path``; return the epoch to start from (0 without one)."""
    state = load_state(path, fingerprint)
    if state is None:
        return 0
    if state["epoch"] > epochs:
        log.warning("ignoring %s: it is %d epochs in, more than the %d asked for", path, state["epoch"], epochs)
        return 0
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for name, value in state["history"].items():
        setattr(history, name, value)
    log.info("resuming from %s after epoch %d", path, state["epoch"])
    return int(state["epoch"])


def save_checkpoint(model: SSLModel, history: TrainingHistory, path: str | Path) -> None:
    """Write the trained model with its architecture and training record (read by the ``ssl`` backbone)."""
    save_state(
        {
            "state_dict": {name: tensor.cpu() for name, tensor in model.state_dict().items()},
            "architecture": model.config.architecture(),
            "config": model.config.training_fingerprint(),
            "history": dataclasses.asdict(history),
        },
        path,
    )
