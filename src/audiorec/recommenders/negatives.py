"""Negative users for the Shallow Net: for an item, users drawn uniformly among those who never interacted with it.

The first paper samples, for each positive (user, item) pair, 20 users "who did not interact with this
item". Drawing ids from a fixed range and hoping they are negatives silently trains on false negatives, so
here every draw is a true negative, uniform over the item's non-listeners, in one of two exact ways:

- a world whose users × items grid is small (up to :data:`DIRECT_SAMPLING_ENTRIES`) keeps each item's
  non-listeners in one flat array and draws a position in the item's slice: one step, no loop. On the demo's
  world, where users heard a large share of the catalogue, rejection needs ~7 rounds per batch;
- a larger world (the paper's: 17k users × 56k items) checks each uniform draw against the sorted
  interaction keys and redraws the rejected ones until every draw is a negative.

Everything runs in torch on the model's device, so sampling does not bottleneck a GPU epoch.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.errors import ParameterError

DIRECT_SAMPLING_ENTRIES = 1 << 22
"""Largest users-by-items grid whose non-listener lists are kept (at most 32 MB of int64 positions)."""


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
        self.non_listeners: tuple[torch.Tensor, torch.Tensor] | None = None
        """Every item's non-listeners, item after item, and where each item's slice starts (small grids only)."""
        if self.n_users * n_items <= DIRECT_SAMPLING_ENTRIES:
            grid = np.ones(self.n_users * n_items, dtype=bool)
            grid[keys] = False  # item-major: the cells left are each item's non-listeners, in user order
            starts = np.concatenate([[0], np.cumsum(self.n_users - listeners)[:-1]]).astype(np.int64)
            self.non_listeners = (
                torch.as_tensor(np.flatnonzero(grid) % self.n_users, device=device),
                torch.as_tensor(starts, device=device),
            )

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
        if self.non_listeners is not None:
            users, starts = self.non_listeners
            # A 62-bit draw modulo the slice length: its bias is below 2^-40 for any slice this grid allows.
            draws = torch.randint(1 << 62, (len(items), n), generator=generator, device=self.device)
            return users[starts[items, None] + draws % self.available[items, None]]
        users = torch.randint(self.n_users, (len(items), n), generator=generator, device=self.device)
        items = items[:, None].expand(-1, n)
        rejected = self.is_interaction(users, items)
        while bool(rejected.any()):
            redraw = torch.randint(self.n_users, (int(rejected.sum()),), generator=generator, device=self.device)
            users[rejected] = redraw
            rejected[rejected.clone()] = self.is_interaction(redraw, items[rejected])
        return users
