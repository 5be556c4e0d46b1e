"""Shallow Net (Tamm & Aljanaki 2024, section 2.2): frozen audio item embeddings, learned users, cosine score.

User and item ids go through embedding tables and a dimension-preserving fully connected layer with ReLU
(one layer shared by both sides by default, ``separate_towers`` for two); the score of a (user, item) pair is
the cosine of the two outputs. The item table is the backbone's embeddings and stays frozen (a buffer, never
seen by the optimizer); the user table starts at the mean embedding of each user's train tracks and is
trained. The loss is a max-margin hinge between each positive pair and ``n_negatives`` users who never
interacted with its item, drawn uniformly among such users (:mod:`audiorec.recommenders.negatives`).

``shallow_random`` is the paper's reference point: the same network with a randomly initialised, trainable
item table, so any gain of ``shallow`` over it comes from the audio embeddings.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.evaluation.metrics import hit_rate
from audiorec.recommenders.base import Catalogue, TrainData
from audiorec.recommenders.inner_product import InnerProductScoring, top_k_inner_product
from audiorec.recommenders.negatives import NegativeUserSampler
from audiorec.recommenders.neural import NeuralRecommender, random_table, rows_of
from audiorec.recommenders.options import RandomShallowNetOptions, ShallowCommonOptions, ShallowNetOptions
from audiorec.recommenders.trainer import TrainingTask
from audiorec.recommenders.vectors import mean_of_heard, pretrained_rows, pretrained_table

log = logging.getLogger(__name__)

SCORE_MATRIX_FACTOR = 4
"""The loss scores a batch against every user once the batch names this many times as many user rows as there
are users; below, gathering the named rows is cheaper (``benchmarks/shallow_steps.py`` measures both)."""


class ShallowNet(nn.Module):
    """Two embedding tables, a dimension-preserving Linear + ReLU per side (shared or not), cosine scores.

    Parameters
    ----------
    items
        ``(n_items, d)`` initial item table.
    users
        ``(n_users, d)`` initial user table.
    freeze_items
        Keep the item table as a buffer (no gradient, not in the optimizer, not in checkpoints: it is the
        backbone's embeddings table) instead of a parameter.
    separate_towers
        One fully connected layer per side instead of one shared layer.
    """

    def __init__(self, items: torch.Tensor, users: torch.Tensor, freeze_items: bool, separate_towers: bool) -> None:
        super().__init__()
        if freeze_items:
            self.register_buffer("item_table", items.contiguous(), persistent=False)  # read only: no copy
        else:
            self.item_table = nn.Parameter(items.clone())
        self.user_table = nn.Parameter(users.clone())
        dim = items.shape[1]
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, dim), nn.ReLU()) for _ in range(2 if separate_towers else 1)
        )

    def encode_users(self, raw: torch.Tensor) -> torch.Tensor:
        """Unit-norm output of the user tower."""
        return F.normalize(self.towers[0](raw), dim=-1)

    def encode_items(self, raw: torch.Tensor) -> torch.Tensor:
        """Unit-norm output of the item tower."""
        return F.normalize(self.towers[-1](raw), dim=-1)

    def hinge_loss(
        self, users: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor, margin: float
    ) -> torch.Tensor:
        """Mean of ``max(0, margin - cos(user, item) + cos(negative, item))`` over pairs and their negatives.

        ``users`` and ``items`` are ``(batch,)`` indices of positive pairs, ``negatives`` ``(batch, n)`` users.
        The same values are computed one of three ways, whichever does the least work for the table's size:

        - a batch that names at least :data:`SCORE_MATRIX_FACTOR` times as many user rows as the table has
          (small worlds): the whole table goes through the tower and one matrix product scores every item
          against every user; the loss gathers its cosines from that ``(batch, users)`` matrix. Gathering
          ``(batch, n, d)`` user rows instead, and scattering their gradients back, costs up to 2.4x as
          much per step there (``benchmarks/shallow_steps.py``);
        - a batch that names at least as many rows as the table has: the whole table goes through the tower
          once and rows are gathered after;
        - otherwise (paper-sized worlds) only the named rows go through the tower.
        """
        item = self.encode_items(self.item_table[items])
        named_rows = users.numel() + negatives.numel()
        if SCORE_MATRIX_FACTOR * self.user_table.shape[0] <= named_rows:
            scores = item @ self.encode_users(self.user_table).T
            positive, negative = scores.gather(1, users[:, None]), scores.gather(1, negatives)
            return F.relu(margin - positive + negative).mean()
        if named_rows >= self.user_table.shape[0]:
            encoded = self.encode_users(self.user_table)
            user, negative_users = encoded[users], encoded[negatives]
        else:
            user, negative_users = (
                self.encode_users(self.user_table[users]),
                self.encode_users(self.user_table[negatives]),
            )
        positive = (user * item).sum(dim=-1)
        negative = (negative_users * item[:, None, :]).sum(dim=-1)
        return F.relu(margin - positive[:, None] + negative).mean()


class ShallowTask(TrainingTask):
    """Batches of positive train pairs with freshly drawn negative users; validation on held-out pairs.

    Pairs whose item every user heard have no negative and are left out (with a warning). The validation
    loss uses negatives drawn once (among users who heard the item in neither train nor validation), so the
    loss of different epochs is measured on the same triples and early stopping compares like with like.
    """

    def __init__(
        self, module: ShallowNet, train: TrainData, validation: TrainData, options: ShallowCommonOptions, seed: int
    ) -> None:
        self.module = module
        self.device = module.user_table.device
        self.options = options
        self.sampler = NegativeUserSampler(train.heard, self.device)
        self.users, self.items = self._pairs(train.heard, self.sampler, "train")
        interacted = (train.heard + validation.heard).astype(bool)
        val_sampler = NegativeUserSampler(interacted, self.device)
        self.val_users, self.val_items = self._pairs(validation.heard, val_sampler, "validation")
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        self.val_negatives = val_sampler.sample(self.val_items, options.n_negatives, generator)
        self.val_rows = np.flatnonzero(validation.heard.getnnz(axis=1) > 0)
        self.val_truth = validation.heard[self.val_rows]
        self.val_excluded = train.excluded[self.val_rows]

    def _pairs(
        self, heard: sp.csr_matrix, sampler: NegativeUserSampler, what: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        coo = sp.coo_matrix(heard)
        users = torch.as_tensor(coo.row.astype(np.int64), device=self.device)
        items = torch.as_tensor(coo.col.astype(np.int64), device=self.device)
        keep = sampler.has_negatives(items)
        if not bool(keep.all()):
            log.warning("%d %s pairs left out: every user heard their item", int((~keep).sum()), what)
        return users[keep], items[keep]

    def n_batches(self) -> int:
        return math.ceil(len(self.users) / self.options.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.users), generator=generator, device=self.device)
        for start in range(0, len(order), self.options.batch_size):
            index = order[start : start + self.options.batch_size]
            items = self.items[index]
            yield self.users[index], items, self.sampler.sample(items, self.options.n_negatives, generator)

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.module.hinge_loss(*batch, margin=self.options.margin)

    def validate(self) -> dict[str, float]:
        total, size = 0.0, self.options.batch_size
        for start in range(0, len(self.val_users), size):
            part = slice(start, start + size)
            loss = self.module.hinge_loss(
                self.val_users[part], self.val_items[part], self.val_negatives[part], self.options.margin
            )
            total += float(loss) * len(self.val_users[part])
        k = self.options.validation_k
        users = self.module.encode_users(self.module.user_table[torch.as_tensor(self.val_rows, device=self.device)])
        items = self.module.encode_items(self.module.item_table)
        _, top = top_k_inner_product(users.float(), items.float(), self.val_excluded, k, self.device)
        return {"loss": total / max(len(self.val_users), 1), f"HitRate@{k}": hit_rate(top, self.val_truth)}


class ShallowNetRecommender(InnerProductScoring, NeuralRecommender):
    """Shallow Net on a backbone's frozen embeddings."""

    kind = "shallow"
    options_class = ShallowNetOptions

    def item_table(self, catalogue: Catalogue) -> tuple[torch.Tensor, bool]:
        """Initial item table and whether it is frozen."""
        return torch.from_numpy(pretrained_table(catalogue, self.options.standardize, self.kind)), True

    def build_module(self, catalogue: Catalogue, train: TrainData) -> ShallowNet:
        items, frozen = self.item_table(catalogue)
        users = torch.from_numpy(mean_of_heard(train.heard, items.numpy()))
        return ShallowNet(items, users, freeze_items=frozen, separate_towers=self.options.separate_towers)

    def build_task(self, module: nn.Module, train: TrainData, validation: TrainData) -> ShallowTask:
        return ShallowTask(module, train, validation, self.options, self.seed)

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """Tower outputs of users and items (unit norm: their inner product is the cosine score). The item tower
        scores any track from its frozen embedding, heard in train or not.

        A user unseen in training starts from the mean of their heard items, as every user did before training.
        """
        module = self.trained_module()
        with torch.no_grad():
            raw_items = module.item_table.detach()
            rows = rows_of(train.user_ids, self.fit_users)
            raw_users = torch.from_numpy(mean_of_heard(train.heard, raw_items.float().cpu().numpy())).to(self.device)
            known = torch.as_tensor(rows >= 0, device=self.device)
            raw_users[known] = module.user_table[torch.as_tensor(rows[rows >= 0], device=self.device)]
            module.eval()
            users = module.encode_users(raw_users).float().cpu().numpy()
            items = module.encode_items(raw_items).float().cpu().numpy()
        return users, items

    def content_item_vectors(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        """The item tower's output for tracks outside the catalogue, from their frozen embeddings."""
        module = self.trained_module()
        raw = torch.from_numpy(pretrained_rows(catalogue, embeddings, self.options.standardize, self.kind))
        with torch.no_grad():
            module.eval()
            return module.encode_items(raw.to(self.device)).float().cpu().numpy()


class RandomShallowNetRecommender(ShallowNetRecommender):
    """The reference point: Shallow Net with a randomly initialised, trainable item table and no audio."""

    kind = "shallow_random"
    options_class = RandomShallowNetOptions

    def item_table(self, catalogue: Catalogue) -> tuple[torch.Tensor, bool]:
        generator = torch.Generator().manual_seed(self.seed)
        return random_table(len(catalogue), self.options.item_dim, generator), False
