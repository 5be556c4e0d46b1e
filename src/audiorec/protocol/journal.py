"""The journal version's split (Tamm & Aljanaki 2026, ``data/src/split.py`` of their code): protocol ``journal2026``.

It differs from the 2024 paper's protocol (:mod:`audiorec.protocol.split`) in what it reads and in how it assigns
users. For a test start ``T``, the window ``[T - train_months, T + test_months)`` (12 + 1 months by default, the
original's one year and one month) is all it looks at:

1. Only the events inside the window are grouped into (user, track) pairs, so a listen before the window is
   neither history nor makes a pair old: a pair heard before the window and again in the test month is *new* in
   the test month (the original compresses the windowed log, keeping each pair's first listen *inside* it).
   :func:`~audiorec.protocol.split.temporal_split` filters the events; this module classifies the pairs.
2. ``train`` holds the pairs heard in ``[T - train_months, T)``: first listen there and listens there.
3. The evaluation pairs are those whose first listen inside the window falls in ``[T, T + test_months)``, with
   their listens there, of users present in ``train`` (warm users).
4. A pair is *hot* when its track occurs in ``train`` (any user's), else *cold*. ``cold_test`` holds the cold
   pairs, of every warm user; the cold-start evaluation ranks their tracks.
5. Validation users are drawn only from the hot users who have no cold pair ("so little of them" in the
   original): scikit-learn's ``train_test_split(users, test_size=1 - val_fraction, random_state=seed)`` over those
   users in the order they appear in the original's grouped table (sorted ids), its *train* side being the
   validation users (30 % with the original's ``test_size=0.7`` and ``random_state=42``). ``val`` holds their hot
   pairs; ``test`` holds the hot pairs of every other warm user, users with cold pairs included.
6. ``heard_before_window`` is empty: a ranking removes only the user's train tracks, the original's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from audiorec.errors import ParameterError
from audiorec.protocol.pairs import CANDIDATE, TRAIN, Pairs

if TYPE_CHECKING:
    from audiorec.protocol.split_config import SplitConfig


def journal_protocol(pairs: Pairs, n_users: int, n_tracks: int, config: SplitConfig) -> dict[str, np.ndarray]:
    """The rows of ``pairs`` (grouped from the window's events only) in each split, as arrays of row numbers.

    ``pairs`` comes from :func:`audiorec.protocol.pairs.group_pairs` over the events of the window, so its
    ``CANDIDATE`` pairs are those first heard inside the window in the test months (step 3 of the module
    docstring) and it has no pair heard only before the window.
    """
    user, track, kind = pairs.user, pairs.track, pairs.kind
    train = np.flatnonzero(kind == TRAIN)
    train_user, train_track = _mask(user[train], n_users), _mask(track[train], n_tracks)
    candidates = np.flatnonzero(kind == CANDIDATE)
    warm = candidates[train_user[user[candidates]]]
    is_hot = train_track[track[warm]]
    hot, cold = warm[is_hot], warm[~is_hot]
    has_cold = _mask(user[cold], n_users)
    eligible = np.unique(user[hot][~has_cold[user[hot]]])  # sorted codes are sorted ids
    is_val = _mask(validation_users(eligible, config.val_fraction, config.seed), n_users)[user[hot]]
    return {
        "train": train,
        "val": hot[is_val],
        "test": hot[~is_val],
        "cold_test": cold,
        "heard_before_window": np.zeros(0, dtype=np.int64),
    }


def validation_users(users: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """The validation side of scikit-learn's ``train_test_split(users, test_size=1 - val_fraction, random_state=seed)``.

    scikit-learn itself draws the split, so the permutation is exactly the original's: ``RandomState(seed)``
    permutes the positions, the first ``ceil(test_size * n)`` are the test side and the rest the train side,
    which the original takes as its validation users. ``users`` must be in the original's order (sorted ids).

    Raises
    ------
    ParameterError
        When scikit-learn cannot split (it leaves neither side empty, so fewer than four users with the default
        ``val_fraction`` 0.3 cannot be split); the original stops there too.
    """
    from sklearn.model_selection import train_test_split

    test_size = round(1.0 - val_fraction, 12)  # 1 - 0.7 is 0.30000000000000004, whose ceil can differ
    try:
        chosen, _ = train_test_split(users, test_size=test_size, random_state=seed)
    except ValueError as error:
        raise ParameterError(
            f"split protocol journal2026: cannot split the {users.size} hot user(s) without a cold item into "
            f"validation and test with val_fraction {val_fraction} (scikit-learn's train_test_split with "
            f"test_size={test_size:g}: {error}); the log's evaluation month has too few users"
        ) from error
    return np.asarray(chosen)


def _mask(codes: np.ndarray, size: int) -> np.ndarray:
    """A boolean array over all ``size`` codes, true at ``codes``."""
    mask = np.zeros(size, dtype=bool)
    mask[codes] = True
    return mask
