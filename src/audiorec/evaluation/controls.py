"""Controls that make a recommendation result interpretable.

The shuffled-embedding control keeps a backbone's embeddings table but hands every track the vector of
another track (rows permuted by a seed). The set of vectors, their scale and their geometry are unchanged;
only the link between a track and its own audio is broken. If a model scores as well on the shuffled table
as on the real one, the audio is not what helps it.

The width-matched random-init reference trains a model's random-init variant with item vectors as wide as a
backbone's embeddings (``item_dim: match``). The paper's random-init rows use a fixed width (BERT4Rec 64, the
Shallow Net 128) while the frozen models run at the embedding width (200 for MusiCNN, 1024 for MERT, 4800 for
Jukebox), so "audio beats random init" would otherwise mix content with capacity. Such a run is reported as
backbone ``<name>_width``: random init at that backbone's width, no audio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

SHUFFLED_SUFFIX = "_shuffled"
"""A shuffled-embedding control of backbone ``b`` is reported as backbone ``b + SHUFFLED_SUFFIX``."""

WIDTH_SUFFIX = "_width"
"""A width-matched random-init run at backbone ``b``'s width is reported as backbone ``b + WIDTH_SUFFIX``."""

NO_BACKBONE = "none"
"""The ``{backbone}`` of runs of models that read no embeddings (popularity, random, random-init networks)."""

MATCH = "match"
"""The ``item_dim`` value of a random-init variant that takes its width from a backbone."""


def matches_width(options: Mapping[str, Any] | None) -> bool:
    """Whether a model's options ask for item vectors as wide as a backbone's embeddings."""
    return bool(options) and options.get("item_dim") == MATCH


def shuffle_rows(vectors: np.ndarray, seed: int) -> np.ndarray:
    """A copy of ``vectors`` whose rows are permuted by a generator seeded with ``seed``.

    Examples
    --------
    >>> table = np.arange(6.0).reshape(3, 2)
    >>> shuffled = shuffle_rows(table, seed=0)
    >>> sorted(map(tuple, shuffled)) == sorted(map(tuple, table))
    True
    """
    permutation = np.random.default_rng(seed).permutation(len(vectors))
    return np.asarray(vectors)[permutation]  # indexing with an array already copies: one copy, not two
