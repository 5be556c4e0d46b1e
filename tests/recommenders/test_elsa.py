"""ELSA against its reference implementation (``elsarec`` 0.1.4), its loss by hand, and its training guarantees."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch
from elsa import ELSA as ElsarecELSA  # elsarec 0.1.4, the reference implementation (test extra)

from audiorec.errors import ParameterError
from audiorec.recommenders import RECOMMENDERS, Catalogue, RunFiles, TrainData, recommender_class
from audiorec.recommenders import elsa as elsa_module
from audiorec.recommenders.elsa import ELSATask, fit_elsa, nmse_loss, reconstruct, unit_rows
from audiorec.recommenders.options import ELSAOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


def random_log(n_users: int = 40, n_items: int = 60, density: float = 0.15, seed: int = 0) -> sp.csr_matrix:
    """A binary users × items matrix with an empty user and an item nobody heard."""
    matrix = (np.random.default_rng(seed).random((n_users, n_items)) < density).astype(np.float32)
    matrix[3] = 0
    matrix[:, 7] = 0
    return sp.csr_matrix(matrix)


def elsarec_model(n_items: int, factors: int, seed: int):
    """elsarec's ELSA, built right after seeding torch as :func:`fit_elsa` builds its own."""
    torch.manual_seed(seed)
    return ElsarecELSA(n_items=n_items, n_dims=factors, device=CPU, lr=0.01)


def test_loss_of_a_three_by_four_matrix_by_hand():
    """A = [[1, 0], [0, 1], [.6, .8], [-1, 0]] (raw rows at other scales: ELSA normalises them).

    Row [1, 1, 0, 0]: xA = [1, 1], xAAᵀ − x = [0, 0, 1.4, −1], orthogonal to x: squared error of the unit rows 2.
    Row [1, 0, 1, 0]: xA = [1.6, .8], xAAᵀ − x = [.6, .8, .6, −1.6] (norm² 3.92 = 2.8²/2), cosine with x
    1.2 / (√3.92 · √2) = 3/7: squared error 2 − 6/7 = 8/7. The empty row predicts and targets zeros: 0.
    Mean over the 12 entries: (2 + 8/7) / 12 = 11/42.
    """
    raw = torch.tensor([[2.0, 0.0], [0.0, 0.5], [0.3, 0.4], [-3.0, 0.0]])
    rows = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    prediction = reconstruct(rows, unit_rows(raw))
    torch.testing.assert_close(prediction[1], torch.tensor([0.6, 0.8, 0.6, -1.6]))
    assert float(nmse_loss(prediction, rows)) == pytest.approx(11 / 42, rel=1e-6)
    module = elsa_module.ELSA(4, 2)
    module.factors.data = raw
    assert float(nmse_loss(module(rows), rows).detach()) == pytest.approx(11 / 42, rel=1e-6)


@pytest.mark.parametrize("epochs", [1, 3])
def test_factors_after_training_equal_elsarec_from_the_same_seed(epochs):
    """Same seed → elsarec's initial factors; same batches (row order) → the same factors after every epoch."""
    heard = random_log()
    reference = elsarec_model(heard.shape[1], 8, seed=5)
    initial = reference.get_items_embeddings(as_numpy=True).copy()
    reference.fit(heard, epochs=epochs, batch_size=16, shuffle=False, verbose=False)
    ours = fit_elsa(heard, ELSAOptions(factors=8, max_epochs=epochs, batch_size=16), seed=5, device=CPU)
    expected = reference.get_items_embeddings(as_numpy=True)
    assert np.abs(expected - initial).max() > 1e-2, "training moved the factors"
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)


def test_top_k_equals_elsarec_predictions_without_heard_items():
    """elsarec's full predictions xAAᵀ − x, heard items removed, give the recommender's top K item for item."""
    heard = random_log(n_users=30, n_items=50, seed=1)
    track_ids = [f"t{index:02d}" for index in range(heard.shape[1])]
    coo = heard.tocoo()
    train = pl.DataFrame({"user_id": [f"u{row:02d}" for row in coo.row], "track_id": [track_ids[c] for c in coo.col]})
    train = train.with_columns(plays=pl.lit(1))
    users = [f"u{row:02d}" for row in range(heard.shape[0])]
    catalogue = Catalogue.from_tracks(track_ids)
    data = TrainData.build(train, catalogue, users)

    reference = elsarec_model(heard.shape[1], 6, seed=2)
    reference.fit(data.heard.astype(np.float32), epochs=2, batch_size=8, shuffle=False, verbose=False)
    predictions = reference.predict(data.heard.astype(np.float32), batch_size=8).numpy()
    predictions[data.heard.toarray()] = -np.inf
    k = 10
    expected = np.argsort(-predictions, axis=1, kind="stable")[:, :k]

    model = recommender_class("elsa").from_options({"factors": 6, "max_epochs": 2, "batch_size": 8}, seed=2)
    model.fit(catalogue, data, data)
    scores, items = model.recommend(catalogue, data, k)
    # Users with fewer than k unheard items would be padded; every user here has plenty.
    np.testing.assert_array_equal(items, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(predictions, expected, axis=1), rtol=1e-4, atol=1e-5)


def test_same_seed_same_factors_other_seed_other_factors():
    heard = random_log()
    options = ELSAOptions(factors=8, max_epochs=2, batch_size=16, shuffle=True)
    first = fit_elsa(heard, options, seed=1, device=CPU)
    np.testing.assert_array_equal(first, fit_elsa(heard, options, seed=1, device=CPU))
    assert not np.allclose(first, fit_elsa(heard, options, seed=2, device=CPU))


class Killed(Exception):
    """Stands for the process being killed in the middle of an epoch."""


def test_killed_run_resumes_and_ends_with_the_factors_of_an_uninterrupted_run(tmp_path, monkeypatch):
    heard = random_log()
    options = ELSAOptions(factors=8, max_epochs=4, batch_size=16, shuffle=True)
    expected = fit_elsa(heard, options, seed=3, device=CPU)

    files = RunFiles.beside(tmp_path / "checkpoint.pt", tmp_path / "log.csv")
    original_loss, calls = ELSATask.loss, {"n": 0}

    def dying_loss(self, batch):
        calls["n"] += 1
        if calls["n"] == 8:  # epoch 3 of 3 batches each, second batch
            raise Killed
        return original_loss(self, batch)

    monkeypatch.setattr(ELSATask, "loss", dying_loss)
    with pytest.raises(Killed):
        fit_elsa(heard, options, seed=3, device=CPU, files=files)
    monkeypatch.setattr(ELSATask, "loss", original_loss)
    assert pl.read_csv(files.training_log).get_column("epoch").to_list() == [0, 1, 2]
    resumed = fit_elsa(heard, options, seed=3, device=CPU, files=files)
    np.testing.assert_array_equal(resumed, expected)
    assert pl.read_csv(files.training_log).get_column("epoch").to_list() == [0, 1, 2, 3, 4]


def test_defaults_are_the_journal_settings_and_bad_options_name_themselves():
    options = ELSAOptions()
    assert (options.factors, options.max_epochs, options.batch_size, options.learning_rate) == (768, 10, 128, 0.01)
    assert (options.optimizer, options.shuffle, options.restore_best, options.amp) == ("nadam", False, False, False)
    traits = RECOMMENDERS.traits("elsa")
    assert traits.trained and not traits.uses_embeddings and not traits.ranks_unseen_items
    with pytest.raises(ParameterError, match="optimizer"):
        ELSAOptions(optimizer="sgd")
    with pytest.raises(ParameterError, match="factors"):
        ELSAOptions(factors=0)
    with pytest.raises(ParameterError, match="does not match"):
        ELSATask(elsa_module.ELSA(60, 4), random_log(), random_log(n_items=59), options)


def test_nadam_is_what_the_task_optimises_with():
    module = elsa_module.ELSA(60, 4)
    heard = random_log()
    nadam = ELSATask(module, heard, heard, ELSAOptions(factors=4)).make_optimizer([module.factors], 0.01)
    adam_options = ELSAOptions(factors=4, optimizer="adam")
    adam = ELSATask(module, heard, heard, adam_options).make_optimizer([module.factors], 0.1)
    assert type(nadam) is torch.optim.NAdam and type(adam) is torch.optim.Adam
