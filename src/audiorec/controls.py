"""Controls that make a recommendation result interpretable.

The shuffled-embedding control keeps a backbone's embeddings table but hands every track the vector of
another track (rows permuted by a seed). The set of vectors, their scale and their geometry are unchanged;
only the link between a track and its own audio is broken. If a model scores as well on the shuffled table
as on the real one, the audio is not what helps it.
"""

from __future__ import annotations

import numpy as np


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
    return np.asarray(vectors)[permutation].copy()
