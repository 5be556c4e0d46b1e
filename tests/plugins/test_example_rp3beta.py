"""The worked example's recommender, RP3beta, against its walk computed by hand on a tiny matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "src"


@pytest.fixture
def rp3beta(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from audiorec_example import rp3beta

    return rp3beta


# Three users × four items: u0 heard i0, i1; u1 heard i1, i2; u2 heard i1, i3.
HEARD = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]], dtype=bool))


def test_the_weights_are_the_two_step_walk_discounted_by_popularity(rp3beta):
    # P_iu: each item's listeners, 1/deg(item); P_ui: each user's items, 1/deg(user) = 1/2 for every user.
    # i0 → u0 → {i0, i1}: W[0, 1] = 1 · 1/2; i1 → {u0, u1, u2} (1/3 each) → their items (1/2 each).
    walk = np.array(
        [
            [1 / 2, 1 / 2, 0, 0],
            [1 / 6, 3 / 6, 1 / 6, 1 / 6],
            [0, 1 / 2, 1 / 2, 0],
            [0, 1 / 2, 0, 1 / 2],
        ]
    )
    popularity = np.array([1, 3, 1, 1])
    expected = walk / popularity[None, :] ** 0.5
    np.fill_diagonal(expected, 0.0)
    weights = rp3beta.rp3beta_weights(HEARD, alpha=1.0, beta=0.5, neighbours=4)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    squared = rp3beta.rp3beta_weights(HEARD, alpha=2.0, beta=0.0, neighbours=4)
    np.testing.assert_allclose(squared[1, 0], (1 / 3) ** 2 * (1 / 2) ** 2, rtol=1e-6)  # each step's probability²


def test_every_item_keeps_only_its_strongest_neighbours(rp3beta):
    weights = rp3beta.rp3beta_weights(HEARD, alpha=1.0, beta=0.0, neighbours=1)
    assert (np.count_nonzero(weights, axis=1) <= 1).all()
    assert weights[0, 1] == pytest.approx(0.5) and weights[2, 1] == pytest.approx(0.5)
