"""The fixed train/val/test split of the demo world's label tables."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Assign train/val/test per class with the requested fractions (rounded per class).

    Not :func:`audiorec.datasets.stratify.stratified_group_split`: every track is its own group here, and
    the split must keep drawing from the world's labels stream (a child generator, where that function takes
    an integer seed) and rounding each class as below, or the label tables of existing worlds would change.
    """
    split = np.empty(labels.size, dtype=object)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_train = max(1, round(fractions[0] * members.size))
        n_val = min(members.size - n_train, round(fractions[1] * members.size))
        split[members[:n_train]] = "train"
        split[members[n_train : n_train + n_val]] = "val"
        split[members[n_train + n_val :]] = "test"
    return split
