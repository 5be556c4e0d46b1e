"""Negative users for the Shallow Net: for an item, users drawn uniformly among those who never interacted with it.

The first paper samples, for each positive (user, item) pair, 20 users "who did not interact with this
item". Drawing ids from a fixed range and hoping they are negatives silently trains on false negatives, so
here each draw is checked against the interaction set and redrawn until it is a true negative. Rejection
keeps the distribution exactly uniform over the item's non-listeners. Everything runs in torch on the
model's device, so sampling does not bottleneck a GPU epoch.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.errors import ParameterError


class NegativeUserSampler:
    """Uniform sampler of users who did not interact with given items.

    Parameters
    ----------
    interacted
        Users × items matrix; a non-zero entry means the user interacted with the item and is never drawn
        as a negative for it.
    device
        Where the lookup tensors live and the samples are drawn.
    """

    def __init__(self, interacted: sp.csr_matrix, device: torch.device) -> None:
        coo = sp.coo_matrix(interacted)
        self.n_users, n_items = interacted.shape
        keys = np.unique(coo.col.astype(np.int64) * self.n_users + coo.row.astype(np.int64))
        self.device = device
        self.keys = torch.as_tensor(keys, device=device)
        listeners = np.bincount((keys // self.n_users).astype(np.int64), minlength=n_items)
        self.available = torch.as_tensor(self.n_users - listeners, device=device)

    def has_negatives(self, items: torch.Tensor) -> torch.Tensor:
        """Whether at least one user never interacted with each item (else no negative can be drawn)."""
        return self.available[items] > 0

    def is_interaction(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Elementwise: did ``users`` interact with ``items`` (broadcast shapes)?"""
        if self.keys.numel() == 0:
            return torch.zeros(torch.broadcast_shapes(users.shape, items.shape), dtype=torch.bool, device=self.device)
        keys = items * self.n_users + users
        position = torch.searchsorted(self.keys, keys).clamp(max=self.keys.numel() - 1)
        return self.keys[position] == keys

    def sample(self, items: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """``(len(items), n)`` users, each drawn uniformly among the users who never interacted with its item.

        Raises
        ------
        ParameterError
            If an item has been heard by every user, so that no negative exists.
        """
        if not bool(self.has_negatives(items).all()):
            raise ParameterError("cannot sample negative users for an item every user interacted with")
        users = torch.randint(self.n_users, (len(items), n), generator=generator, device=self.device)
        items = items[:, None].expand(-1, n)
        rejected = self.is_interaction(users, items)
        while bool(rejected.any()):
            redraw = torch.randint(self.n_users, (int(rejected.sum()),), generator=generator, device=self.device)
            users[rejected] = redraw
            rejected[rejected.clone()] = self.is_interaction(redraw, items[rejected])
        return users
