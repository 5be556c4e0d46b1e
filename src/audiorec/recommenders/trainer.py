"""The small trainer every neural recommender uses: epochs, validation, plateau LR, early stopping, resumable.

One epoch = one pass over the task's batches, then a validation pass. The learning rate drops on a
validation-loss plateau (``ReduceLROnPlateau``), training stops after ``early_stopping_patience`` epochs without
a better validation loss, and the best state (the untrained one included, epoch 0) is restored at the end.

After every epoch the whole training state (weights, optimizer, scheduler, mixed-precision scaler,
early-stopping counters, history and every random generator) is written atomically. A run that was killed
resumes from its last finished epoch and ends exactly where an uninterrupted run ends; the state carries a
fingerprint of the options and data, so a changed config starts afresh instead of resuming a stale run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import nn
from tqdm.auto import tqdm

from audiorec.common.devices import describe_device
from audiorec.errors import TrainingError
from audiorec.recommenders.base import RunFiles
from audiorec.recommenders.options import TrainingOptions
from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.checkpointing import load_state, rng_state, save_state, set_rng_state

log = logging.getLogger(__name__)


class TrainingTask(ABC):
    """One model's training problem, as the trainer sees it.

    Attributes
    ----------
    module
        The network; the optimizer updates its parameters that require gradients (frozen tables are buffers).
    device
        Where the module and the task's tensors live.
    """

    module: nn.Module
    device: torch.device

    @abstractmethod
    def n_batches(self) -> int:
        """Number of batches of one epoch (for the progress bar)."""

    @abstractmethod
    def batches(self, generator: torch.Generator) -> Iterator[Any]:
        """One epoch of training batches, shuffled and sampled with ``generator`` only."""

    @abstractmethod
    def loss(self, batch: Any) -> torch.Tensor:
        """Scalar training loss of a batch."""

    @abstractmethod
    def validate(self) -> dict[str, float]:
        """Validation figures of the current weights; ``"loss"`` is the one that drives LR and stopping."""

    def make_optimizer(self, parameters: list[nn.Parameter], learning_rate: float) -> torch.optim.Optimizer:
        """The optimiser of the trainable parameters: Adam, unless the model's reference implementation uses
        another (ELSA's uses NAdam), which its task says by overriding this."""
        return torch.optim.Adam(parameters, lr=learning_rate)


@dataclass(frozen=True)
class TrainingResult:
    """What :func:`train` did.

    Attributes
    ----------
    history
        One record per epoch: ``epoch``, ``train_loss``, ``val_loss``, the other validation figures as
        ``val_<name>``, ``lr``, ``train_seconds``, ``val_seconds``, ``best``. Epoch 0 validates the untrained
        model (its ``train_loss`` is ``None``).
    best_epoch
        The epoch whose weights the module holds now.
    resumed_from
        The last finished epoch found in the resume state, or ``None`` for a fresh run.
    """

    history: list[dict[str, Any]]
    best_epoch: int
    resumed_from: int | None


def _autocast(device: torch.device, enabled: bool) -> tuple[contextlib.AbstractContextManager, torch.dtype | None]:
    """bf16 autocast on GPUs that support it, fp16 on older ones; full precision on the CPU."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext(), None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype), dtype


def _copy_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def train(
    task: TrainingTask,
    options: TrainingOptions,
    seed: int,
    *,
    fingerprint: str = "",
    files: RunFiles | None = None,
    description: str = "train",
    progress: bool = True,
) -> TrainingResult:
    """Train ``task.module`` in place and leave it holding the best validated state.

    Parameters
    ----------
    task
        Batches, loss and validation of one model.
    options
        Optimiser, schedule and stopping settings.
    seed
        Seeds the sampling generator and torch's global generator (dropout), so a CPU run is reproducible.
        The module itself is initialised by the caller (seed torch before building it).
    fingerprint
        Identifies the problem (options, data); a resume state with another fingerprint is ignored.
    files
        Checkpoint, training log and resume state; without them nothing is written and nothing resumed.
    description
        Label of the progress bar and log lines.
    progress
        Show a tqdm bar over epochs.

    Raises
    ------
    TrainingError
        If a training or validation loss is not finite.
    """
    with _reproducible(task.device):
        return _train(task, options, seed, fingerprint, files, description, progress)


@contextlib.contextmanager
def _reproducible(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on the CPU, where they cost little.

    The backward pass of an embedding lookup accumulates rows in thread order, so two CPU runs with the same
    seed would otherwise drift apart in the last bits. On a GPU the deterministic kernels are slower and the
    contract is only a statistically equivalent run, so the global setting is left alone there.
    """
    if device.type != "cpu":
        yield
        return
    previous, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


def _train(
    task: TrainingTask,
    options: TrainingOptions,
    seed: int,
    fingerprint: str,
    files: RunFiles | None,
    description: str,
    progress: bool,
) -> TrainingResult:
    module = task.module
    parameters = [p for p in module.parameters() if p.requires_grad]
    optimizer = task.make_optimizer(parameters, options.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=options.lr_factor, patience=options.lr_patience
    )
    autocast, amp_dtype = _autocast(task.device, options.amp)
    log.info("%s: training on %s", description, describe_device(task.device))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    generator = torch.Generator(device=task.device)
    generator.manual_seed(seed)
    torch.manual_seed(seed)

    state = None if files is None else load_state(files.resume_state, fingerprint)
    if state is None:
        history: list[dict[str, Any]] = []
        started = time.perf_counter()
        figures = _validate(task, autocast, description, 0)
        record = _record(0, None, figures, options.learning_rate, (0.0, 0), time.perf_counter() - started, True, task)
        history.append(record)
        best = {"epoch": 0, "loss": figures["loss"], "module": _copy_state(module)}
        bad_epochs, start, resumed_from, finished = 0, 1, None, False
        _save(files, fingerprint, 0, module, optimizer, scheduler, scaler, best, bad_epochs, history, generator, False)
    else:
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], generator)
        history, best, bad_epochs = list(state["history"]), dict(state["best"]), int(state["bad_epochs"])
        resumed_from, finished = int(state["epoch"]), bool(state["finished"])
        start = resumed_from + 1
        log.info("%s: resuming after epoch %d (best epoch %d)", description, resumed_from, best["epoch"])

    epochs = range(start, options.max_epochs + 1) if not finished else range(0)
    bar = tqdm(
        epochs, total=options.max_epochs, initial=start - 1, desc=description, unit="epoch", disable=not progress
    )
    for epoch in bar:
        started = time.perf_counter()
        train_loss, batches = _train_epoch(
            task, optimizer, scaler, autocast, generator, description, epoch, options.max_batches_per_epoch
        )
        trained = time.perf_counter()
        figures = _validate(task, autocast, description, epoch)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(figures["loss"])
        improved = figures["loss"] < best["loss"]
        if improved:
            best = {"epoch": epoch, "loss": figures["loss"], "module": _copy_state(module)}
            bad_epochs = 0
        else:
            bad_epochs += 1
        training = (trained - started, batches)
        record = _record(epoch, train_loss, figures, lr, training, time.perf_counter() - trained, improved, task)
        history.append(record)
        bar.set_postfix(train_loss=f"{train_loss:.4f}", val_loss=f"{figures['loss']:.4f}", lr=f"{lr:.1e}")
        log.info("%s: %s", description, ", ".join(f"{key}={value}" for key, value in record.items()))
        finished = bad_epochs >= options.early_stopping_patience or epoch == options.max_epochs
        _save(
            files,
            fingerprint,
            epoch,
            module,
            optimizer,
            scheduler,
            scaler,
            best,
            bad_epochs,
            history,
            generator,
            finished,
        )
        if files is not None:
            _write_log(history, files.training_log)
        if bad_epochs >= options.early_stopping_patience:
            log.info("%s: no better validation loss for %d epochs; stopping", description, bad_epochs)
            break
    bar.close()

    if options.restore_best:
        module.load_state_dict(best["module"])
        kept = best
    else:
        last = history[-1]
        kept = {"epoch": last["epoch"], "loss": last["val_loss"], "module": _copy_state(module)}
    log.info("%s: keeping epoch %d, validation loss %.6f", description, kept["epoch"], kept["loss"])
    if files is not None:
        _write_log(history, files.training_log)
        save_state({"module": kept["module"], "epoch": kept["epoch"], "fingerprint": fingerprint}, files.checkpoint)
    return TrainingResult(history=history, best_epoch=int(kept["epoch"]), resumed_from=resumed_from)


def _train_epoch(
    task: TrainingTask,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    autocast: contextlib.AbstractContextManager,
    generator: torch.Generator,
    description: str,
    epoch: int,
    max_batches: int | None = None,
) -> tuple[float, int]:
    """One epoch of optimisation (at most ``max_batches`` batches); the mean training loss and the batches run."""
    task.module.train()
    total = torch.zeros((), dtype=torch.float64, device=task.device)
    count = 0
    for batch in task.batches(generator):
        if max_batches is not None and count >= max_batches:
            break
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = task.loss(batch)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.detach().double()
        count += 1
    mean = float(total) / max(count, 1)
    if not math.isfinite(mean):
        raise TrainingError(f"{description}: training loss {mean} at epoch {epoch}")
    return mean, count


def _validate(
    task: TrainingTask, autocast: contextlib.AbstractContextManager, description: str, epoch: int
) -> dict[str, float]:
    task.module.eval()
    with torch.no_grad(), autocast:
        figures = {name: float(value) for name, value in task.validate().items()}
    if not math.isfinite(figures.get("loss", math.nan)):
        raise TrainingError(f"{description}: validation loss {figures.get('loss')} at epoch {epoch}")
    return figures


def _record(
    epoch: int,
    train_loss: float | None,
    figures: Mapping[str, float],
    lr: float,
    training: tuple[float, int],
    val_seconds: float,
    best: bool,
    task: TrainingTask,
) -> dict[str, Any]:
    """One row of the training log; ``training`` is the epoch's seconds and batches (fewer than a whole epoch's
    ``epoch_batches`` when ``max_batches_per_epoch`` cut it short)."""
    train_seconds, batches = training
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": figures["loss"],
        **{f"val_{name}": value for name, value in figures.items() if name != "loss"},
        "lr": lr,
        "train_seconds": round(train_seconds, 4),
        "val_seconds": round(val_seconds, 4),
        "train_batches": batches,
        "epoch_batches": task.n_batches(),
        "best": best,
    }


def _write_log(history: list[dict[str, Any]], path: Path) -> None:
    write_text_atomic(pl.DataFrame(history).write_csv(float_precision=6), path)


def _save(
    files: RunFiles | None,
    fingerprint: str,
    epoch: int,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    scaler: torch.amp.GradScaler,
    best: Mapping[str, Any],
    bad_epochs: int,
    history: list[dict[str, Any]],
    generator: torch.Generator,
    finished: bool,
) -> None:
    if files is None:
        return
    state = {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "finished": finished,
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "best": dict(best),
        "bad_epochs": bad_epochs,
        "history": history,
        "rng": rng_state(generator),
    }
    save_state(state, files.resume_state)
