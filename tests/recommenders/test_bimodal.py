"""The Bimodal recommender: its decoupled contrastive losses against hand-computed values, Yeh et al.'s formula and
the original code's outputs, towers that learn to align a planted problem, its three scorings, its user vectors,
new items, seeding, checkpoint, resume, and the ELSA factors it reads."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from audiorec.errors import ParameterError
from audiorec.recommenders import Catalogue, RunFiles, TrainData, recommender_class
from audiorec.recommenders.bimodal import BimodalRecommender, trained_items
from audiorec.recommenders.contrastive import LOSSES, contrastive_loss, dcl_one_way, vmf_weights
from audiorec.recommenders.options import BimodalOptions, ELSAOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TAU = 0.1
Z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=torch.float64)
Z2 = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)

ORIGINAL = {
    "dcl": 2.7290349336571165,
    "dclw": 3.76820893509817,
    "sdcl": 1.496521838842227,
    "sdclw": 1.887657989256474,
    "adcl": 0.595473941641762,
    "adclw": 1.1150609423622886,
}
"""Each variant of the original code (``contrastive.py`` of Darel13712/adopting-pretrained-audio, called as its
``train_contrast.py`` calls it: both directions summed for DCL and DCLW, one for the others) on Z1, Z2, temperature
0.1, sigma 0.5, in float64."""

SMALL = {"hidden_dim": 16, "batch_size": 32, "max_epochs": 3, "elsa_factors": 4}


def test_one_way_dcl_is_the_hand_computed_value():
    # Item 0: positive ⟨(1,0),(.8,.6)⟩ = .8; negatives ⟨z1_0, z1_k⟩ = 0, .6 and ⟨z1_0, z2_k⟩ = 0, 1 (k = 1, 2).
    item0 = -8 + math.log(math.exp(0) + math.exp(6) + math.exp(0) + math.exp(10))
    # Item 1: positive 1; negatives 0, .8 (same view) and .6, 0 (other view).
    item1 = -10 + math.log(math.exp(0) + math.exp(8) + math.exp(6) + math.exp(0))
    # Item 2: positive .6; negatives .6, .8 (same view) and .96, .8 (other view).
    item2 = -6 + math.log(math.exp(6) + math.exp(8) + math.exp(9.6) + math.exp(8))
    expected = (item0 + item1 + item2) / 3
    assert float(dcl_one_way(Z1, Z2, TAU)) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.3680709885359474, rel=1e-12)  # the original's one-way DCL


@pytest.mark.parametrize("name", LOSSES)
def test_every_variant_gives_the_original_code_s_value(name):
    assert float(contrastive_loss(name, Z1, Z2, TAU, 0.5)) == pytest.approx(ORIGINAL[name], rel=1e-12)


def test_hand_computed_variants_on_the_3x2_batch():
    """SDCL adds ⟨z2_i, z2_k⟩ to the denominator, ADCL keeps only ⟨z1_i, z2_k⟩; both one way."""
    # Beyond the one-way DCL terms above: ⟨z2_0, z2_1⟩ = .6, ⟨z2_0, z2_2⟩ = .8, ⟨z2_1, z2_2⟩ = 0.
    sdcl = np.mean(
        [
            -8 + math.log(2 + math.exp(6) + math.exp(10) + math.exp(6) + math.exp(8)),
            -10 + math.log(3 + math.exp(8) + 2 * math.exp(6)),
            -6 + math.log(math.exp(6) + 3 * math.exp(8) + math.exp(9.6) + math.exp(0)),
        ]
    )
    adcl = np.mean(
        [
            -8 + math.log(math.exp(0) + math.exp(10)),
            -10 + math.log(math.exp(6) + math.exp(0)),
            -6 + math.log(math.exp(9.6) + math.exp(8)),
        ]
    )
    assert float(contrastive_loss("sdcl", Z1, Z2, TAU)) == pytest.approx(sdcl, rel=1e-12)
    assert float(contrastive_loss("adcl", Z1, Z2, TAU)) == pytest.approx(adcl, rel=1e-12)


def test_dcl_is_yeh_et_al_s_formula_without_the_positive_in_the_denominator(rng):
    """L = mean_i −⟨z1_i, z2_i⟩/τ + log Σ_{k≠i} exp(⟨z1_i, z1_k⟩/τ) + exp(⟨z1_i, z2_k⟩/τ), in both directions; the
    InfoNCE denominator (positive kept) gives a strictly larger value."""
    z1 = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((5, 4))), dim=1)
    z2 = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((5, 4))), dim=1)

    def one_way(a: np.ndarray, b: np.ndarray, keep_positive: bool = False) -> float:
        terms = []
        for i in range(len(a)):
            negatives = [a[i] @ a[k] for k in range(len(a)) if k != i]
            negatives += [a[i] @ b[k] for k in range(len(a)) if k != i or keep_positive]
            terms.append(-(a[i] @ b[i]) / TAU + math.log(sum(math.exp(s / TAU) for s in negatives)))
        return float(np.mean(terms))

    a, b = z1.numpy(), z2.numpy()
    assert float(contrastive_loss("dcl", z1, z2, TAU)) == pytest.approx(one_way(a, b) + one_way(b, a), rel=1e-10)
    assert one_way(a, b, keep_positive=True) > one_way(a, b)


def test_dclw_weights_the_positive_term_by_the_negative_von_mises_fisher_weighting():
    sims = np.array([0.8, 1.0, 0.6])
    softmax = np.exp(sims / 0.5) / np.exp(sims / 0.5).sum()
    expected = 2 - 3 * softmax
    weights = vmf_weights(Z1, Z2, 0.5).numpy()
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[2] > weights[0] > weights[1]  # the least similar pair weighs most
    positives = -sims / TAU
    unweighted = float(dcl_one_way(Z1, Z2, TAU))
    weighted = float(dcl_one_way(Z1, Z2, TAU, vmf_weights(Z1, Z2, 0.5)))
    assert weighted - unweighted == pytest.approx(float(np.mean(positives * (expected - 1))), rel=1e-12)


def test_options_name_the_problem():
    with pytest.raises(ParameterError, match="model bimodal option loss must be one of"):
        BimodalOptions(loss="infonce")
    with pytest.raises(ParameterError, match="option selection must be 'train_loss' or 'val_hitrate'"):
        BimodalOptions(selection="val_loss")
    with pytest.raises(ParameterError, match=r"unknown option\(s\) \['lr'\]"):
        recommender_class("bimodal_content").from_options({"lr": 0.1}, 0)


def test_the_defaults_are_the_original_s():
    options = BimodalOptions()
    assert (options.hidden_dim, options.batch_size, options.learning_rate, options.max_epochs) == (
        768,
        10000,
        1e-3,
        100,
    )
    assert (options.loss, options.temperature, options.lr_patience, options.early_stopping_patience) == (
        "dcl",
        0.1,
        5,
        16,
    )
    assert (options.selection, options.amp, options.unit_items) == ("train_loss", False, False)
    assert options.elsa_options() == ELSAOptions()  # ELSA as the original fitted it: 768 factors, 10 epochs


def test_a_cut_epoch_cuts_the_elsa_fit_s_epochs_too():
    """A cost probe at paper size (``max_batches_per_epoch``) must not spend a whole ELSA epoch before the cut
    towers' first batch: the cap reaches the ELSA fit whose factors the collaborative tower reads."""
    assert BimodalOptions(max_batches_per_epoch=3).elsa_options().max_batches_per_epoch == 3
    assert BimodalOptions().elsa_options().max_batches_per_epoch is None


def planted(rng: np.random.Generator, n_items: int = 120, n_users: int = 80):
    """Audio embeddings and collaborative factors that are two noisy views of one latent vector per item."""
    latent = rng.standard_normal((n_items, 6))
    audio = latent @ rng.standard_normal((6, 12)) + 0.05 * rng.standard_normal((n_items, 12))
    factors = np.tanh(latent @ rng.standard_normal((6, 8))) + 0.05 * rng.standard_normal((n_items, 8))
    heard = rng.random((n_users, n_items)) < 0.1
    heard[np.arange(n_items) % n_users, np.arange(n_items)] = True  # every item heard once at least
    catalogue = Catalogue.from_tracks([f"t{i:03d}" for i in range(n_items)], audio.astype(np.float32))
    matrix = sp.csr_matrix(heard)
    users = np.array([f"u{u:03d}" for u in range(n_users)], dtype=object)
    train = TrainData(users, matrix, matrix, np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel())
    validation_heard = sp.csr_matrix(rng.random((n_users, n_items)) < 0.02)
    validation = TrainData(users, validation_heard, validation_heard, train.item_plays)
    return catalogue, train, validation, factors.astype(np.float32)


@pytest.fixture
def given_factors(monkeypatch):
    """Substitute the ELSA fit by the given factors; returns the list of calls made."""
    calls: list[int] = []

    def use(factors: np.ndarray) -> list[int]:
        def source(catalogue, train, validation, options, seed):
            calls.append(seed)
            return factors

        monkeypatch.setattr(BimodalRecommender, "collaborative_factors", staticmethod(source))
        return calls

    return use


def trained(kind: str, world, options: dict | None = None, seed: int = 0, files: RunFiles | None = None):
    catalogue, train, validation, _ = world
    model = recommender_class(kind).from_options({**SMALL, **(options or {})}, seed)
    model.fit(catalogue, train, validation, files)
    return model


def matching_accuracy(model) -> float:
    """Share of items whose own CF tower output is the nearest (cosine) to their audio tower output."""
    module = model.trained_module()
    with torch.no_grad():
        content, collaborative = module(torch.arange(module.content_table.shape[0]))
    return float(((content @ collaborative.T).argmax(dim=1) == torch.arange(len(content))).float().mean())


def test_the_towers_learn_to_match_each_item_s_two_views(rng, given_factors):
    world = planted(rng)
    given_factors(world[3])
    untrained = trained("bimodal_content", world, {"max_epochs": 1, "learning_rate": 1e-12})
    model = trained("bimodal_content", world, {"max_epochs": 20, "learning_rate": 1e-2})
    chance = 1 / len(world[0])
    assert matching_accuracy(untrained) < 0.1
    assert matching_accuracy(model) > 0.5 > 40 * chance
    log = model.result.history
    assert log[-1]["train_loss"] < 0.5 * log[1]["train_loss"]


def test_selection_follows_the_epoch_s_training_loss_as_the_original_does(rng, given_factors):
    world = planted(rng)
    given_factors(world[3])
    history = trained("bimodal_content", world, {"max_epochs": 4}).result.history
    for record in history[1:]:
        assert record["val_loss"] == pytest.approx(record["train_loss"], rel=1e-9)
        assert "val_HitRate@50" in record
    by_hits = trained("bimodal_content", world, {"max_epochs": 2, "selection": "val_hitrate"}).result.history
    assert all(record["val_loss"] == -record["val_HitRate@50"] for record in by_hits)


def test_users_are_the_mean_of_their_items_and_average_averages_vectors(rng, given_factors):
    world = planted(rng)
    catalogue, train = world[0], world[1]
    given_factors(world[3])
    spaces = {}
    for kind in ("bimodal_content", "bimodal_collaborative", "bimodal_average"):
        users, items = trained(kind, world, {"max_epochs": 2}).scoring_vectors(catalogue, train)
        heard = train.heard.toarray()
        np.testing.assert_allclose(users, heard @ items / heard.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
        spaces[kind] = items
    average = (spaces["bimodal_content"] + spaces["bimodal_collaborative"]) / 2
    np.testing.assert_allclose(spaces["bimodal_average"], average, rtol=1e-5, atol=1e-6)
    assert not np.allclose(spaces["bimodal_content"], spaces["bimodal_collaborative"])


def test_content_scores_a_new_item_like_the_catalogue_item_with_its_embedding(rng, given_factors):
    world = planted(rng)
    catalogue, train = world[0], world[1]
    given_factors(world[3])
    model = trained("bimodal_content", world, {"max_epochs": 2, "standardize": True})
    users, items = model.scoring_vectors(catalogue, train)
    new = model.score_new_items(catalogue, train, catalogue.embeddings[[7, 30]])
    np.testing.assert_allclose(new, users @ items[[7, 30]].T, rtol=1e-5, atol=1e-5)
    collaborative = trained("bimodal_collaborative", world, {"max_epochs": 1})
    with pytest.raises(ParameterError, match="cannot rank new items"):
        collaborative.score_new_items(catalogue, train, catalogue.embeddings[:2])


def test_the_same_seed_trains_the_same_towers(rng, given_factors):
    world = planted(rng)
    given_factors(world[3])
    first, again, other = (
        trained("bimodal_average", world, {"max_epochs": 2}, seed=seed).scoring_vectors(world[0], world[1])[1]
        for seed in (5, 5, 6)
    )
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_a_checkpoint_restores_towers_and_factors_without_refitting(rng, given_factors, tmp_path):
    world = planted(rng)
    catalogue, train, validation, _ = world
    calls = given_factors(world[3])
    files = RunFiles.beside(tmp_path / "checkpoint.pt", tmp_path / "training_log.csv")
    model = trained("bimodal_content", world, {"max_epochs": 2}, seed=1, files=files)
    assert calls == [1]
    log = pl.read_csv(files.training_log)
    assert log.get_column("epoch").to_list() == [0, 1, 2]

    restored = recommender_class("bimodal_content").from_options(SMALL | {"max_epochs": 2}, 1)
    restored.restore(catalogue, train, validation, files.checkpoint)
    for left, right in zip(
        model.scoring_vectors(catalogue, train), restored.scoring_vectors(catalogue, train), strict=True
    ):
        np.testing.assert_array_equal(left, right)

    resumed = trained("bimodal_content", world, {"max_epochs": 2}, seed=1, files=files)  # finished: nothing to do
    assert calls == [1]  # the factors came from the resume state
    np.testing.assert_array_equal(
        resumed.scoring_vectors(catalogue, train)[1], model.scoring_vectors(catalogue, train)[1]
    )


def test_only_items_with_train_pairs_are_trained_on():
    heard = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 0, 1]], dtype=bool))
    train = TrainData(np.array(["a", "b"], dtype=object), heard, heard, np.zeros(4, dtype=np.float32))
    np.testing.assert_array_equal(trained_items(train), [0, 3])


def test_the_collaborative_side_is_elsa_fitted_on_the_train_users(rng):
    """Without substitution the towers read ELSA's factors, fitted with the ``elsa_*`` options and the run's seed."""
    from audiorec.recommenders.elsa import fit_elsa

    world = planted(rng, n_items=40, n_users=30)
    catalogue, train, validation, _ = world
    options = {**SMALL, "max_epochs": 1, "elsa_max_epochs": 2, "elsa_batch_size": 8}
    model = trained("bimodal_collaborative", world, options, seed=2)
    reference = fit_elsa(train.heard, BimodalOptions(**options).elsa_options(), 2, validation=validation.heard)
    np.testing.assert_allclose(model.trained_module().collaborative_table.numpy(), reference, rtol=1e-6, atol=1e-7)
    assert reference.shape == (len(catalogue), 4)
