"""The journal's Hybrid (kind ``hybrid``): ELSA with item factors from audio, trained as the original script trains."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from audiorec.recommenders import RECOMMENDERS, RunFiles, recommender_class
from audiorec.recommenders.audio_elsa import AudioELSA
from audiorec.recommenders.elsa import ELSATask
from audiorec.recommenders.options import AudioELSAOptions
from audiorec.recommenders.runs import model_catalogue

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"factors": 16, "max_epochs": 3, "batch_size": 64}


def fitted(world, seed: int = 0, files: RunFiles | None = None, **options):
    model = recommender_class("hybrid").from_options({**TINY, **options}, seed)
    model.fit(world.catalogue, world.train, world.validation, files)
    return model


def test_one_epoch_is_the_original_training_loop(neural_world):
    """Without shuffling, one epoch equals the original script's loop written out: the MLP built right after
    seeding, Adam at lr 0.01, NMSE of row-normalised x·A·Aᵀ − x against the row, batches of users in order."""
    heard = sp.csr_matrix(neural_world.train.heard, dtype=np.float32)
    embeddings = torch.from_numpy(neural_world.catalogue.embeddings)
    torch.manual_seed(4)
    network = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    for start in range(0, heard.shape[0], 64):
        rows = torch.from_numpy(heard[start : start + 64].toarray())
        items = F.normalize(network(embeddings), p=2, dim=-1)
        output = (rows @ items) @ items.T - rows
        loss = F.mse_loss(F.normalize(output, dim=-1), F.normalize(rows, dim=-1), reduction="mean")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model = fitted(neural_world, seed=4, max_epochs=1, shuffle=False)
    ours = model.trained_module().network.state_dict()
    for name, expected in network.state_dict().items():
        torch.testing.assert_close(ours[name], expected, rtol=0, atol=1e-5)
    assert model.result.best_epoch == 1


def test_validation_loss_is_each_validation_row_reconstructing_itself(neural_world):
    """The original's validation: the non-empty validation rows, in batches, each batch's NMSE of the model's
    reconstruction of those rows, averaged over batches (not over rows)."""
    torch.manual_seed(0)
    module = AudioELSA(torch.from_numpy(neural_world.catalogue.embeddings), 8)
    validation = sp.csr_matrix(neural_world.validation.heard, dtype=np.float32)
    options = AudioELSAOptions(factors=8, batch_size=16)
    task = ELSATask(module, neural_world.train.heard, validation, options, excluded=neural_world.train.excluded)
    rows = validation[validation.getnnz(axis=1) > 0].toarray()
    assert len(rows) > 16 and len(rows) % 16, "several batches, the last one short"
    losses = []
    with torch.no_grad():
        items = module.item_factors()
        for start in range(0, len(rows), 16):
            batch = torch.from_numpy(rows[start : start + 16])
            prediction = batch @ items @ items.T - batch
            losses.append(float(F.mse_loss(F.normalize(prediction, dim=-1), F.normalize(batch, dim=-1))))
        figures = task.validate()
    assert figures["loss"] == pytest.approx(np.mean(losses), rel=1e-6)
    assert 0 <= figures["HitRate@50"] <= 1


def test_new_items_are_scored_as_catalogue_items_with_the_same_embedding(neural_world):
    model = fitted(neural_world)
    users, catalogue = neural_world.val_users, neural_world.catalogue
    scores, items = model.recommend(catalogue, users, 20)
    new_scores = model.score_new_items(catalogue, users, catalogue.embeddings)
    np.testing.assert_allclose(np.take_along_axis(new_scores, items, axis=1), scores, rtol=1e-5, atol=1e-6)
    other = model.score_new_items(catalogue, users, catalogue.embeddings[:5] + 1.0)
    assert other.shape == (len(users.user_ids), 5) and np.isfinite(other).all()
    assert RECOMMENDERS.traits("hybrid").ranks_unseen_items and RECOMMENDERS.traits("hybrid").uses_embeddings


def test_plateau_lowers_the_rate_after_5_epochs_and_stops_after_16(neural_world, monkeypatch):
    """The original's ReduceLROnPlateau(patience=5) and early stop at 16 epochs without a lower validation loss."""
    scripted = iter([2.0, 1.0] + [1.0] * 100)
    monkeypatch.setattr(ELSATask, "validate", lambda self: {"loss": next(scripted)})
    model = fitted(neural_world, factors=4, max_epochs=200, batch_size=256)
    history = model.result.history
    assert [record["epoch"] for record in history] == list(range(18)), "epoch 1 best, then 16 without a better one"
    assert model.result.best_epoch == 1
    rates = [record["lr"] for record in history[1:]]
    assert rates[:7] == [0.01] * 7 and rates[7] == pytest.approx(0.001), "lowered after the sixth bad epoch"


def test_same_seed_same_ranking_and_a_killed_run_resumes_to_it(neural_world, tmp_path, monkeypatch):
    expected = fitted(neural_world, seed=2)
    again = fitted(neural_world, seed=2)
    users = neural_world.val_users
    np.testing.assert_array_equal(
        expected.recommend(neural_world.catalogue, users, 10)[1], again.recommend(neural_world.catalogue, users, 10)[1]
    )
    files = RunFiles.beside(tmp_path / "checkpoint.pt", tmp_path / "log.csv")
    original_loss, calls = ELSATask.loss, {"n": 0}
    batches = expected.result.history[-1]["epoch_batches"]

    def dying_loss(self, batch):
        calls["n"] += 1
        if calls["n"] == 2 * batches + 1:
            raise KeyboardInterrupt
        return original_loss(self, batch)

    monkeypatch.setattr(ELSATask, "loss", dying_loss)
    with pytest.raises(KeyboardInterrupt):
        fitted(neural_world, seed=2, files=files)
    monkeypatch.setattr(ELSATask, "loss", original_loss)
    resumed = fitted(neural_world, seed=2, files=files)
    assert resumed.result.resumed_from == 2
    for name, tensor in expected.trained_module().state_dict().items():
        assert torch.equal(tensor, resumed.trained_module().state_dict()[name]), name
    restored = recommender_class("hybrid").from_options(dict(TINY), 2)
    restored.restore(neural_world.catalogue, neural_world.train, neural_world.validation, files.checkpoint)
    catalogue = neural_world.catalogue
    ranked = restored.recommend(catalogue, users, 10)[1]
    np.testing.assert_array_equal(ranked, expected.recommend(catalogue, users, 10)[1])


def test_the_shuffled_control_gives_the_hybrid_permuted_embeddings(neural_world):
    model = recommender_class("hybrid").from_options(dict(TINY), 0)
    candidates = neural_world.catalogue.track_ids.tolist()

    class Table:
        vectors = neural_world.catalogue.embeddings
        path = "embeddings.parquet"

        @staticmethod
        def rows(tracks):
            return np.arange(len(tracks))

    plain = model_catalogue(model, candidates, Table, shuffle=False, seed=1)
    shuffled = model_catalogue(model, candidates, Table, shuffle=True, seed=1)
    np.testing.assert_array_equal(plain.embeddings, neural_world.catalogue.embeddings)
    assert not np.array_equal(shuffled.embeddings, plain.embeddings)
    assert sorted(map(tuple, shuffled.embeddings)) == sorted(map(tuple, plain.embeddings))


def test_defaults_are_the_original_scripts():
    options = AudioELSAOptions()
    assert (options.factors, options.max_epochs, options.batch_size, options.learning_rate) == (768, 200, 128, 0.01)
    assert (options.lr_patience, options.lr_factor, options.early_stopping_patience) == (5, 0.1, 16)
    assert (options.optimizer, options.shuffle, options.restore_best, options.standardize) == (
        "adam",
        True,
        True,
        False,
    )
