"""The shared trainer on a tiny regression task: resume after a kill, early stopping, plateau LR, best state."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
import torch
from torch import nn

from audiorec.errors import ParameterError, TrainingError
from audiorec.recommenders import RunFiles
from audiorec.recommenders.options import TrainingOptions
from audiorec.recommenders.trainer import TrainingTask, train

TIMING = ("train_seconds", "val_seconds")
BATCHES = ("train_batches", "epoch_batches")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Killed(Exception):
    """Stands for the process being killed in the middle of an epoch."""


class Regression(TrainingTask):
    """A linear target learned by a small network with dropout, batches drawn from the trainer's generator.

    ``scripted_losses`` replaces the validation loss by a fixed sequence (one value per validation), and
    ``kill_in_epoch`` raises :class:`Killed` halfway through that epoch's batches.
    """

    def __init__(self, scripted_losses: list[float] | None = None, kill_in_epoch: int | None = None) -> None:
        torch.manual_seed(0)
        self.module = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
        self.device = torch.device("cpu")
        data = torch.Generator().manual_seed(1)
        self.x = torch.randn(256, 4, generator=data)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        self.scripted_losses = scripted_losses
        self.kill_in_epoch = kill_in_epoch
        self.epochs_started = 0
        self.validations = 0

    def n_batches(self) -> int:
        return 8

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        self.epochs_started += 1
        order = torch.randperm(len(self.x), generator=generator)
        for number, start in enumerate(range(0, len(order), 32)):
            if self.epochs_started == self.kill_in_epoch and number == 4:
                raise Killed
            yield order[start : start + 32]

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(self.module(self.x[batch]), self.y[batch])

    def validate(self) -> dict[str, float]:
        self.validations += 1
        if self.scripted_losses is not None:
            return {"loss": self.scripted_losses[self.validations - 1]}
        return {"loss": float(nn.functional.mse_loss(self.module(self.x), self.y)), "Scale": 1.0}


def files_in(folder) -> RunFiles:
    return RunFiles.beside(folder / "checkpoint.pt", folder / "training_log.csv")


def without_timing(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key not in TIMING} for record in history]


def test_killed_run_resumes_from_its_last_epoch_and_ends_like_an_uninterrupted_one(tmp_path):
    options = TrainingOptions(max_epochs=6, early_stopping_patience=10)
    reference = Regression()
    expected = train(reference, options, seed=3, files=files_in(tmp_path / "a"), fingerprint="f", progress=False)

    killed = Regression(kill_in_epoch=4)
    with pytest.raises(Killed):
        train(killed, options, seed=3, files=files_in(tmp_path / "b"), fingerprint="f", progress=False)
    assert not (tmp_path / "b" / "checkpoint.pt").exists()
    assert pl.read_csv(tmp_path / "b" / "training_log.csv").get_column("epoch").to_list() == [0, 1, 2, 3]

    resumed_task = Regression()
    resumed = train(resumed_task, options, seed=3, files=files_in(tmp_path / "b"), fingerprint="f", progress=False)
    assert resumed.resumed_from == 3
    assert resumed_task.epochs_started == 3, "epochs 4 to 6 only"
    assert without_timing(resumed.history) == without_timing(expected.history)
    for name, tensor in reference.module.state_dict().items():
        assert torch.equal(tensor, resumed_task.module.state_dict()[name]), name
    checkpoint = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == expected.best_epoch
    log = pl.read_csv(tmp_path / "b" / "training_log.csv")
    assert log.get_column("epoch").to_list() == list(range(7))
    assert log.columns == ["epoch", "train_loss", "val_loss", "val_Scale", "lr", *TIMING, *BATCHES, "best"]
    assert log.get_column("train_batches").to_list() == [0] + [8] * 6 and set(log.get_column("epoch_batches")) == {8}


def test_a_batch_cap_cuts_every_epoch_short_and_the_log_says_how_much_of_an_epoch_ran(tmp_path):
    capped_task, whole_task = Regression(), Regression()
    capped = train(capped_task, TrainingOptions(max_epochs=2, max_batches_per_epoch=3), seed=3, progress=False)
    whole = train(whole_task, TrainingOptions(max_epochs=2), seed=3, progress=False)
    assert [r["train_batches"] for r in capped.history] == [0, 3, 3]
    assert [r["epoch_batches"] for r in capped.history] == [8, 8, 8]
    assert [r["train_batches"] for r in whole.history] == [0, 8, 8]
    assert capped.history[1]["train_loss"] != whole.history[1]["train_loss"], "fewer batches, another mean loss"
    with pytest.raises(ParameterError, match="max_batches_per_epoch"):
        TrainingOptions(max_batches_per_epoch=0)


def test_finished_run_is_not_trained_again_and_other_options_start_afresh(tmp_path):
    options = TrainingOptions(max_epochs=3)
    files = files_in(tmp_path)
    first = train(Regression(), options, seed=0, files=files, fingerprint="same", progress=False)
    again_task = Regression()
    again = train(again_task, options, seed=0, files=files, fingerprint="same", progress=False)
    assert again.resumed_from == 3 and again_task.epochs_started == 0
    assert again.best_epoch == first.best_epoch
    fresh_task = Regression()
    fresh = train(fresh_task, options, seed=0, files=files, fingerprint="changed", progress=False)
    assert fresh.resumed_from is None and fresh_task.epochs_started == 3


def test_early_stopping_plateau_lr_and_best_state_restored():
    # Validation improves until epoch 2, then never again: patience 3 stops after epoch 5, and the LR drops
    # once the plateau exceeds lr_patience = 1 epoch.
    losses = [1.0, 0.8, 0.5, 0.6, 0.7, 0.9, 0.9, 0.9]
    task = Regression(scripted_losses=losses)
    best_weights = {}

    class Spy(Regression):
        def validate(self) -> dict[str, float]:
            figures = super().validate()
            if self.validations == 3:
                best_weights.update({k: v.clone() for k, v in self.module.state_dict().items()})
            return figures

    task = Spy(scripted_losses=losses)
    options = TrainingOptions(max_epochs=20, lr_patience=1, lr_factor=0.5, early_stopping_patience=3)
    result = train(task, options, seed=0, progress=False)
    assert [record["epoch"] for record in result.history] == [0, 1, 2, 3, 4, 5]
    assert result.best_epoch == 2
    assert [record["best"] for record in result.history] == [True, True, True, False, False, False]
    assert [record["lr"] for record in result.history] == [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 5e-4]
    for name, tensor in task.module.state_dict().items():
        assert torch.equal(tensor, best_weights[name]), name


def test_untrained_state_is_kept_when_training_never_helps():
    task = Regression(scripted_losses=[0.1, 0.2, 0.3])
    initial = {k: v.clone() for k, v in task.module.state_dict().items()}
    result = train(task, TrainingOptions(max_epochs=2), seed=0, progress=False)
    assert result.best_epoch == 0
    assert all(torch.equal(initial[k], v) for k, v in task.module.state_dict().items())


def test_last_state_is_kept_when_asked_even_if_validation_was_better_before():
    task = Regression(scripted_losses=[0.1, 0.2, 0.3])
    initial = {k: v.clone() for k, v in task.module.state_dict().items()}
    result = train(task, TrainingOptions(max_epochs=2, restore_best=False), seed=0, progress=False)
    assert result.best_epoch == 2
    assert any(not torch.equal(initial[k], v) for k, v in task.module.state_dict().items())


def test_non_finite_loss_is_a_training_error():
    with pytest.raises(TrainingError, match="validation loss nan at epoch 1"):
        train(Regression(scripted_losses=[1.0, float("nan")]), TrainingOptions(max_epochs=2), seed=0, progress=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_epochs": 0}, "max_epochs must be an integer >= 1, got 0"),
        ({"learning_rate": -1.0}, r"learning_rate must be a number in \(0.0, inf\), got -1.0"),
        ({"lr_factor": 1.5}, "lr_factor"),
        ({"batch_size": 2.5}, "batch_size"),
    ],
)
def test_invalid_options_name_the_option_and_value(options, message):
    with pytest.raises(ParameterError, match=message):
        TrainingOptions(**options)
