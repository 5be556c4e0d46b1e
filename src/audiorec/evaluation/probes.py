"""Linear probes of frozen track embeddings: genre and instrument classification (Choi et al., 2022, sec. 4).

Each probe standardises the embeddings with statistics of its training tracks, fits a linear SVM and a
multinomial logistic regression for every C of a grid on the ``train`` split, keeps the C with the best
``val`` accuracy, refits on train + val, and reports accuracy and macro-F1 on ``test``. The test split is
read once, after every choice is made.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from audiorec.errors import ParameterError

log = logging.getLogger(__name__)

CLASSIFIERS = ("svm", "logreg")
DEFAULT_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one classifier on one task.

    Attributes
    ----------
    classifier
        ``svm`` or ``logreg``.
    C
        The regularisation constant chosen on the validation split.
    val_accuracy
        Validation accuracy of every C tried, in grid order.
    accuracy, macro_f1
        Test-split scores of the model refit on train + val with the chosen C.
    """

    classifier: str
    C: float
    val_accuracy: dict[float, float]
    accuracy: float
    macro_f1: float

    def to_dict(self) -> dict[str, object]:
        return {
            "classifier": self.classifier,
            "C": self.C,
            "val_accuracy": {str(c): acc for c, acc in self.val_accuracy.items()},
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
        }


def _classifier(kind: str, C: float, max_iter: int, seed: int) -> ClassifierMixin:
    if kind == "svm":
        return LinearSVC(C=C, max_iter=max_iter, random_state=seed)
    if kind == "logreg":
        return LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    raise ParameterError(f"classifier must be one of {list(CLASSIFIERS)}, got {kind!r}")


def _fit(kind: str, C: float, features: np.ndarray, labels: np.ndarray, max_iter: int, seed: int) -> Pipeline:
    """Standardise with the fitting tracks' statistics, then fit; convergence warnings are counted, not raised."""
    model = make_pipeline(StandardScaler(), _classifier(kind, C, max_iter, seed))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(features, labels)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning("%s with C=%g did not converge in %d iterations", kind, C, max_iter)
    return model


def linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray,
    classifier: str,
    Cs: Sequence[float] = DEFAULT_CS,
    *,
    max_iter: int = 5000,
    seed: int = 0,
) -> ProbeResult:
    """Fit one linear classifier with C chosen on ``val``; score it on ``test``.

    Parameters
    ----------
    features : np.ndarray, shape ``(n, D)``
        Track embeddings.
    labels, split : np.ndarray, shape ``(n,)``
        Class and split (``train``/``val``/``test``) of each track.
    classifier
        ``svm`` (linear-kernel SVM) or ``logreg`` (multinomial logistic regression).
    Cs
        Grid of inverse regularisation strengths; ties in validation accuracy go to the smaller C.
    """
    features = np.asarray(features, dtype=np.float64)
    labels, split = np.asarray(labels), np.asarray(split)
    if features.ndim != 2 or not len(features) == len(labels) == len(split):
        raise ParameterError(
            "features (n, D), labels (n,) and split (n,) must agree; "
            f"got {features.shape}, {labels.shape}, {split.shape}"
        )
    if not Cs or any(c <= 0 for c in Cs):
        raise ParameterError(f"Cs must be a non-empty list of positive numbers, got {list(Cs)}")
    parts = {name: split == name for name in SPLITS}
    empty = [name for name, mask in parts.items() if not mask.any()]
    if empty:
        raise ParameterError(f"probe needs tracks in every split {list(SPLITS)}; none in {empty}")
    if np.unique(labels[parts["train"]]).size < 2:
        raise ParameterError("probe needs at least 2 classes among the train tracks")
    train, val, test = parts["train"], parts["val"], parts["test"]
    val_accuracy = {
        float(c): float(
            accuracy_score(
                labels[val], _fit(classifier, c, features[train], labels[train], max_iter, seed).predict(features[val])
            )
        )
        for c in Cs
    }
    best = max(val_accuracy.values())
    chosen = min(c for c, acc in val_accuracy.items() if acc == best)
    fitting = train | val
    predicted = _fit(classifier, chosen, features[fitting], labels[fitting], max_iter, seed).predict(features[test])
    return ProbeResult(
        classifier=classifier,
        C=chosen,
        val_accuracy=val_accuracy,
        accuracy=float(accuracy_score(labels[test], predicted)),
        macro_f1=float(f1_score(labels[test], predicted, average="macro")),
    )


def probe_labels(
    track_ids: Sequence[str],
    vectors: np.ndarray,
    labels: pl.DataFrame,
    Cs: Sequence[float] = DEFAULT_CS,
    *,
    max_iter: int = 5000,
    seed: int = 0,
) -> dict[str, object]:
    """Both classifiers on a labels table (``track_id``, ``label``, ``split``) over the embedded tracks.

    Labelled tracks without an embedding (undecodable audio) are left out and counted in ``n_missing``.

    Returns
    -------
    dict
        ``n_tracks``, ``n_missing``, ``classes``, per-split counts in ``n_per_split``, and one entry per
        classifier (:meth:`ProbeResult.to_dict`).
    """
    missing_columns = {"track_id", "label", "split"} - set(labels.columns)
    if missing_columns:
        raise ParameterError(f"labels table lacks column(s) {sorted(missing_columns)}; it has {labels.columns}")
    row_of = {track_id: row for row, track_id in enumerate(track_ids)}
    present = labels.filter(pl.col("track_id").is_in(list(row_of)))
    rows = np.array([row_of[t] for t in present.get_column("track_id").to_list()], dtype=np.int64)
    y = present.get_column("label").to_numpy()
    split = present.get_column("split").to_numpy()
    features = np.asarray(vectors)[rows]
    result: dict[str, object] = {
        "n_tracks": int(present.height),
        "n_missing": int(labels.height - present.height),
        "classes": sorted(set(y.tolist())),
        "n_per_split": {name: int((split == name).sum()) for name in SPLITS},
    }
    for classifier in CLASSIFIERS:
        result[classifier] = linear_probe(features, y, split, classifier, Cs, max_iter=max_iter, seed=seed).to_dict()
    return result
