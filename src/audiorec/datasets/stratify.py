"""Seeded stratified train/val/test assignment that keeps groups (excerpts of one recording) together."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from audiorec.datasets.options import check_fractions
from audiorec.errors import ParameterError

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


def stratified_group_split(
    labels: Sequence[str], groups: Sequence[str], fractions: Sequence[float], seed: int
) -> np.ndarray:
    """Assign every item to ``train``/``val``/``test`` so each label keeps ``fractions`` and no group is split.

    Excerpts cut from one recording sound alike; putting some in train and others in test would let a
    probe recognise the recording instead of the class. Groups are therefore assigned whole: within each
    label (a group takes the label most of its items have), the distinct groups are sorted, permuted with
    ``seed`` and cut at the cumulative fractions (rounded to whole groups, at least one train group per
    label). Sorting first makes the result independent of the input order.

    Returns
    -------
    numpy.ndarray of str, shape (n_items,)
        The split of each item.
    """
    labels, groups = [str(label) for label in labels], [str(group) for group in groups]
    if len(labels) != len(groups):
        raise ParameterError(f"labels ({len(labels)}) and groups ({len(groups)}) differ in length")
    shares = check_fractions(fractions, "stratified split")
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for label, group in zip(labels, groups, strict=True):
        votes[group][label] += 1
    # The most frequent label; ties go to the first label in sorted order, so the result is deterministic.
    group_label = {group: min(count.items(), key=lambda item: (-item[1], item[0]))[0] for group, count in votes.items()}
    rng = np.random.default_rng(seed)
    group_split: dict[str, str] = {}
    for label in sorted(set(group_label.values())):
        members = sorted(group for group, owner in group_label.items() if owner == label)
        order = rng.permutation(len(members))
        bounds = np.floor(np.cumsum(shares) * len(members) + 0.5).astype(int)
        bounds[0] = max(bounds[0], 1)
        for rank, index in enumerate(order):
            group_split[members[index]] = SPLIT_NAMES[int(np.searchsorted(bounds, rank, side="right"))]
    return np.array([group_split[group] for group in groups], dtype=object)
