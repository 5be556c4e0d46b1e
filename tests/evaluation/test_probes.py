"""Linear probes: separable data is learnt, random labels are not, and the test split never picks C."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.evaluation.probes import linear_probe, probe_labels


def synthetic(rng: np.random.Generator, n: int = 300, n_classes: int = 3, dim: int = 10, spread: float = 0.3):
    """Classes around well separated centres, split 60/20/20 at random."""
    labels = rng.integers(n_classes, size=n)
    centres = 5.0 * rng.normal(size=(n_classes, dim))
    features = centres[labels] + spread * rng.normal(size=(n, dim))
    split = rng.choice(["train", "val", "test"], size=n, p=[0.6, 0.2, 0.2])
    return features, np.array([f"class{c}" for c in labels]), split


@pytest.mark.parametrize("classifier", ["svm", "logreg"])
def test_separable_classes_are_classified_perfectly(rng, classifier):
    features, labels, split = synthetic(rng)
    result = linear_probe(features, labels, split, classifier, [0.01, 0.1, 1.0])
    assert result.accuracy == pytest.approx(1.0) and result.macro_f1 == pytest.approx(1.0)
    assert set(result.val_accuracy) == {0.01, 0.1, 1.0}


@pytest.mark.parametrize("classifier", ["svm", "logreg"])
def test_random_labels_score_at_chance(rng, classifier):
    n, n_classes = 2000, 4
    features = rng.normal(size=(n, 16))
    labels = rng.integers(n_classes, size=n).astype(str)
    split = rng.choice(["train", "val", "test"], size=n, p=[0.6, 0.2, 0.2])
    result = linear_probe(features, labels, split, classifier, [0.01, 1.0])
    assert abs(result.accuracy - 1 / n_classes) < 0.06


def test_no_test_track_is_used_to_pick_C(rng):
    features, labels, split = synthetic(rng, spread=4.0)  # overlapping classes: C matters
    Cs = [0.001, 0.01, 0.1, 1.0, 10.0]
    reference = linear_probe(features, labels, split, "logreg", Cs)
    test = split == "test"
    scrambled_features, scrambled_labels = features.copy(), labels.copy()
    scrambled_features[test] = rng.normal(scale=100.0, size=(test.sum(), features.shape[1]))
    scrambled_labels[test] = rng.permutation(labels[test])
    changed = linear_probe(scrambled_features, scrambled_labels, split, "logreg", Cs)
    assert changed.val_accuracy == reference.val_accuracy and changed.C == reference.C
    assert changed.accuracy != reference.accuracy  # the test split is still what is scored
    assert len(set(reference.val_accuracy.values())) > 1  # the choice of C was a real one


@pytest.mark.parametrize("classifier", ["svm", "logreg"])
def test_the_final_model_is_fit_without_the_test_tracks(rng, classifier):
    features, labels, split = synthetic(rng)
    test = split == "test"
    features[test] += 100.0  # a cluster of its own, with a class no other track has
    labels[test] = "unseen"
    # Fit on train + val only, the model cannot predict a class it never saw.
    assert linear_probe(features, labels, split, classifier, [0.1, 1.0]).accuracy == 0.0


def test_ties_in_validation_accuracy_go_to_the_smallest_C(rng):
    features, labels, split = synthetic(rng)
    assert linear_probe(features, labels, split, "svm", [10.0, 1.0, 0.1]).C == 0.1


def test_probe_labels_runs_both_classifiers_on_the_embedded_tracks(rng):
    features, labels, split = synthetic(rng, n=120)
    track_ids = [f"t{i}" for i in range(120)]
    table = pl.DataFrame(
        {"track_id": [*track_ids, "unembedded"], "label": [*labels, "class0"], "split": [*split, "test"]}
    )
    result = probe_labels(track_ids[::-1], features[::-1], table, [0.1, 1.0])
    assert result["n_tracks"] == 120 and result["n_missing"] == 1
    assert result["classes"] == sorted(set(labels)) and sum(result["n_per_split"].values()) == 120
    assert result["svm"]["accuracy"] == pytest.approx(1.0) and result["logreg"]["classifier"] == "logreg"


def test_invalid_inputs_are_named(rng):
    features, labels, split = synthetic(rng, n=60)
    with pytest.raises(ParameterError, match="classifier must be one of"):
        linear_probe(features, labels, split, "knn", [1.0])
    with pytest.raises(ParameterError, match=r"none in \['val'\]"):
        linear_probe(features, labels, np.where(split == "val", "train", split), "svm", [1.0])
    with pytest.raises(ParameterError, match="lacks column"):
        probe_labels(["a"], features[:1], pl.DataFrame({"track_id": ["a"], "label": ["x"]}))
