"""BERT4Rec (Sun et al. 2019) on frozen audio item embeddings, as in Tamm & Aljanaki 2024, section 2.2.

A user's sequence is their distinct train tracks in order of first listen, the last ``max_len`` kept.
Training masks each position with probability ``mask_probability`` (at least one per sequence) and predicts
the masked tracks with a cross-entropy over the whole catalogue. The item input is the backbone's frozen
embedding table followed by a trainable linear projection to the hidden size; the same projected items score
the output (hidden state · projected item + a learned per-item bias). [PAD] and [MASK] are two trainable rows
kept apart from the frozen table, and they are never scored, so they can never be recommended.

Recommendations come from appending [MASK] to each user's most recent ``max_len - 1`` train tracks: the
hidden state at the mask scores every track, and the exact retrieval removes every track the user heard. Attention
is PyTorch's fused ``scaled_dot_product_attention``; batches are cropped to their longest sequence;
prediction runs in batches of users, never in a Python loop per user.

``bert4rec_random`` replaces the frozen table with a trainable, randomly initialised one (the paper's
reference point, a plain collaborative BERT4Rec): BERT's N(0, 0.02) embedding at the hidden size, with no
projection in front of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import hit_rate
from audiorec.recommenders.base import Catalogue, TrainData
from audiorec.recommenders.catalogue_softmax import catalogue_cross_entropy
from audiorec.recommenders.inner_product import InnerProductScoring, top_k_inner_product
from audiorec.recommenders.neural import NeuralRecommender
from audiorec.recommenders.options import Bert4RecCommonOptions, Bert4RecOptions, RandomBert4RecOptions
from audiorec.recommenders.sequences import mask_positions, recent_items
from audiorec.recommenders.trainer import TrainingTask
from audiorec.recommenders.vectors import pretrained_rows, pretrained_table

PREDICTION_BATCH = 1024
"""Users per forward pass at prediction and validation time."""

BUCKET_BATCHES = 16
"""Training batches drawn together and cut by sequence length, so that each pads only to its own longest."""


class EncoderLayer(nn.Module):
    """Post-norm transformer block (BERT): fused self-attention, then a GELU feed-forward, each residual."""

    def __init__(self, hidden: int, heads: int, feedforward: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden)
        self.feedforward = nn.Sequential(nn.Linear(hidden, feedforward), nn.GELU(), nn.Linear(feedforward, hidden))
        self.feedforward_norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """``x`` is ``(batch, length, hidden)``; ``padding`` ``(batch, 1, 1, length)`` adds ``-inf`` at padded keys."""
        batch, length, hidden = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4)
        attention_dropout = self.attention_dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=padding, dropout_p=attention_dropout)
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        x = self.attention_norm(x + F.dropout(self.out(attended), self.dropout, self.training))
        return self.feedforward_norm(x + F.dropout(self.feedforward(x), self.dropout, self.training))


class Bert4RecNet(nn.Module):
    """Bidirectional transformer over item sequences; ids ``n_items`` and ``n_items + 1`` are [PAD] and [MASK].

    Parameters
    ----------
    items
        ``(n_items, d)`` initial item table.
    freeze_items
        Keep the table as a buffer (frozen, not in checkpoints) instead of a trainable parameter.
    options
        Sizes, depth, dropout and ``max_len`` (the number of position embeddings).
    """

    def __init__(self, items: torch.Tensor, freeze_items: bool, hidden: int, options: Bert4RecCommonOptions) -> None:
        super().__init__()
        n_items, dim = items.shape
        if hidden % options.n_heads:
            raise ParameterError(f"hidden size {hidden} is not divisible by n_heads={options.n_heads}")
        if freeze_items:
            self.register_buffer("item_table", items.contiguous(), persistent=False)  # read only: no copy
        else:
            self.item_table = nn.Parameter(items.clone())
        self.pad, self.mask = n_items, n_items + 1
        self.special = nn.Parameter(torch.empty(2, dim))
        # A frozen table reaches the hidden size through a trainable projection. A trainable table of that size is
        # the model's own item embedding, as in BERT4Rec: a projection in front of it would only slow it down, since
        # Adam's steps on the table would then be scaled by the projection's small initial weights.
        self.projection = nn.Linear(dim, hidden) if freeze_items or dim != hidden else nn.Identity()
        self.positions = nn.Embedding(options.max_len, hidden)
        self.input_norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(options.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(hidden, options.n_heads, options.feedforward_dim, options.dropout, options.attention_dropout)
            for _ in range(options.n_layers)
        )
        # BERT4Rec's output transform (Sun et al. 2019, eq. 7; LayerNorm as in its reference code): the state at a
        # masked position goes through a dense GELU layer before it scores the projected items.
        self.output = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.apply(_init_weights)
        nn.init.normal_(self.special, std=0.02)

    def projected_items(self) -> torch.Tensor:
        """``(n_items, hidden)``: the items as the transformer reads them and as the output scores them."""
        return self.projection(self.item_table)

    def forward(self, sequences: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``(batch, length, hidden)`` of right-aligned id sequences (length ≤ ``max_len``).

        ``items`` may pass :meth:`projected_items` when the caller also needs it for scoring.
        """
        items = self.projected_items() if items is None else items
        special = self.projection(self.special)
        is_item = sequences < self.pad
        x = torch.where(
            is_item[..., None],
            items[sequences.clamp(max=self.pad - 1)],
            special[(sequences - self.pad).clamp(min=0)],
        )
        # Right alignment: the last column is always position max_len - 1, whatever the crop.
        x = x + self.positions.weight[self.positions.num_embeddings - sequences.shape[1] :]
        x = self.dropout(self.input_norm(x))
        # An additive mask rather than a boolean one: the attention kernels take it as is (a boolean mask is
        # converted on every call, which costs a fifth of the attention on a CPU).
        padding = torch.zeros(sequences.shape, dtype=x.dtype, device=x.device).masked_fill(
            sequences == self.pad, -math.inf
        )
        padding = padding[:, None, None, :]
        for layer in self.layers:
            x = layer(x, padding)
        return x

    def masked_loss(self, inputs: torch.Tensor, masked: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the catalogue of the tracks at the ``masked`` positions of ``inputs``."""
        items = self.projected_items()
        hidden = self.output(self.forward(inputs, items)[masked])
        return catalogue_cross_entropy(hidden, items, self.bias, targets)

    def user_vectors(self, sequences: torch.Tensor) -> torch.Tensor:
        """Output-transformed state at the last position (the appended [MASK]) of each sequence, in batches."""
        items = self.projected_items()
        parts = [
            self.output(self.forward(sequences[s : s + PREDICTION_BATCH], items)[:, -1])
            for s in range(0, len(sequences), PREDICTION_BATCH)
        ]
        return torch.cat(parts) if parts else torch.zeros(0, items.shape[1], device=items.device)


def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation: N(0, 0.02) weights, zero biases, unit layer norms."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def prediction_inputs(listen_order: sp.csr_matrix | None, rows: np.ndarray, max_len: int, pad: int) -> np.ndarray:
    """The most recent ``max_len - 1`` tracks of each user in ``rows``, then [MASK] (``pad + 1``)."""
    if listen_order is None:
        raise ParameterError("bert4rec needs the listening order; the train table must have a first_ts column")
    history = recent_items(listen_order, rows, max_len - 1, pad)
    return np.concatenate([history, np.full((len(rows), 1), pad + 1, dtype=np.int64)], axis=1)


def scoring_vectors(users: torch.Tensor, module: Bert4RecNet) -> tuple[np.ndarray, np.ndarray]:
    """Users ``[h, 1]`` and items ``[e, b]`` as arrays, so that their inner product is the score ``h · e + b``."""
    items = torch.cat([module.projected_items().float(), module.bias.float()[:, None]], dim=1)
    users = torch.cat([users.float(), torch.ones(len(users), 1, device=users.device)], dim=1)
    return users.cpu().numpy(), items.cpu().numpy()


class Bert4RecTask(TrainingTask):
    """Masked-item batches of train sequences; validation by predicting each user's validation tracks.

    The validation loss is the mean cross-entropy of the validation tracks under the scores at the appended
    [MASK], with the softmax over the tracks the user had not heard before the evaluation window: the candidates
    the ranking chooses from. (Over the whole catalogue, the loss would reward predicting the user's own history,
    which the ranking removes, and it can rise while validation HitRate improves.)
    """

    def __init__(
        self, module: Bert4RecNet, train: TrainData, validation: TrainData, options: Bert4RecCommonOptions
    ) -> None:
        self.module = module
        self.device = module.bias.device
        self.options = options
        if train.listen_order is None:
            raise ParameterError("bert4rec needs the listening order; the train table must have a first_ts column")
        rows = np.flatnonzero(train.heard.getnnz(axis=1) > 0)
        self.sequences = torch.as_tensor(
            recent_items(train.listen_order, rows, options.max_len, module.pad), device=self.device
        )
        self.lengths = (self.sequences != module.pad).sum(dim=1)
        self.val_rows = np.flatnonzero(validation.heard.getnnz(axis=1) > 0)
        inputs = prediction_inputs(train.listen_order, self.val_rows, options.max_len, module.pad)
        self.val_inputs = torch.as_tensor(inputs, device=self.device)
        self.val_truth = validation.heard[self.val_rows]
        pairs = sp.coo_matrix(self.val_truth)
        self.val_pair_rows = torch.as_tensor(pairs.row.astype(np.int64), device=self.device)
        self.val_pair_items = torch.as_tensor(pairs.col.astype(np.int64), device=self.device)
        self.val_excluded = train.excluded[self.val_rows]
        excluded = sp.coo_matrix(self.val_excluded)
        self.val_excluded_rows = torch.as_tensor(excluded.row.astype(np.int64), device=self.device)
        self.val_excluded_items = torch.as_tensor(excluded.col.astype(np.int64), device=self.device)

    def n_batches(self) -> int:
        return math.ceil(len(self.sequences) / self.options.batch_size)

    def batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each sequence once, in batches of similar lengths visited in random order (length bucketing).

        Sequences are shuffled, each run of ``BUCKET_BATCHES`` batches is sorted by length and cut, and the
        batches are then shuffled: a batch pads only to its own longest sequence, which saves a third or more of
        the work when histories range from a few tracks to ``max_len``.
        """
        size, pad = self.options.batch_size, self.module.pad
        order = torch.randperm(len(self.sequences), generator=generator, device=self.device)
        batches: list[torch.Tensor] = []
        for start in range(0, len(order), size * BUCKET_BATCHES):
            bucket = order[start : start + size * BUCKET_BATCHES]
            batches += bucket[torch.argsort(self.lengths[bucket], stable=True)].split(size)
        for index in torch.randperm(len(batches), generator=generator, device=self.device).tolist():
            batch = self.sequences[batches[index]]
            width = int(self.lengths[batches[index]].max())
            batch = batch[:, batch.shape[1] - width :]
            if float(torch.rand((), generator=generator, device=self.device)) < self.options.last_item_probability:
                # Right-aligned: the last column holds every sequence's most recent track.
                masked = torch.zeros_like(batch, dtype=torch.bool)
                masked[:, -1] = True
            else:
                masked = mask_positions(batch != pad, self.options.mask_probability, generator)
            yield batch.masked_fill(masked, self.module.mask), masked, batch[masked]

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.module.masked_loss(*batch)

    def validate(self) -> dict[str, float]:
        users = self.module.user_vectors(self.val_inputs).float()
        items = self.module.projected_items().float()
        bias = self.module.bias.float()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for start in range(0, len(users), PREDICTION_BATCH):
            end = start + PREDICTION_BATCH
            scores = users[start:end] @ items.T + bias
            heard = (self.val_excluded_rows >= start) & (self.val_excluded_rows < end)
            scores[self.val_excluded_rows[heard] - start, self.val_excluded_items[heard]] = -math.inf
            inside = (self.val_pair_rows >= start) & (self.val_pair_rows < end)
            rows, cols = self.val_pair_rows[inside] - start, self.val_pair_items[inside]
            total += (torch.logsumexp(scores, dim=1)[rows] - scores[rows, cols]).double().sum()
        k = self.options.validation_k
        _, top = top_k_inner_product(*scoring_vectors(users, self.module), self.val_excluded, k, self.device)
        loss = float(total) / max(len(self.val_pair_rows), 1)
        return {"loss": loss, f"HitRate@{k}": hit_rate(top, self.val_truth)}


class Bert4RecRecommender(InnerProductScoring, NeuralRecommender):
    """BERT4Rec on a backbone's frozen embeddings."""

    kind = "bert4rec"
    options_class = Bert4RecOptions

    def item_table(self, catalogue: Catalogue) -> tuple[torch.Tensor, bool]:
        """Initial item table and whether it is frozen."""
        return torch.from_numpy(pretrained_table(catalogue, self.options.standardize, self.kind)), True

    def build_module(self, catalogue: Catalogue, train: TrainData) -> Bert4RecNet:
        items, frozen = self.item_table(catalogue)
        hidden = self.options.hidden_size or items.shape[1]
        return Bert4RecNet(items, freeze_items=frozen, hidden=hidden, options=self.options)

    def build_task(self, module: nn.Module, train: TrainData, validation: TrainData) -> Bert4RecTask:
        return Bert4RecTask(module, train, validation, self.options)

    def scoring_vectors(self, catalogue: Catalogue, train: TrainData) -> tuple[np.ndarray, np.ndarray]:
        """Vectors whose inner product is the score ``h · e + b`` of every user of ``train`` and every item.

        A new item is scored through the projection of its frozen embedding. Its output bias never met it as a
        target, only as a softmax negative, which is part of what the cold-start table measures.
        """
        module = self.trained_module()
        module.eval()
        inputs = prediction_inputs(train.listen_order, np.arange(len(train.user_ids)), self.options.max_len, module.pad)
        with torch.no_grad():
            users = module.user_vectors(torch.as_tensor(inputs, device=self.device))
            return scoring_vectors(users, module)

    def content_item_vectors(self, catalogue: Catalogue, embeddings: np.ndarray) -> np.ndarray:
        """``[projection of the frozen embedding, 0]`` for tracks outside the catalogue. They have no learned output
        bias; a bias shared by all of them would not change how they rank against each other, which is all the
        cold-start ranking asks."""
        module = self.trained_module()
        raw = torch.from_numpy(pretrained_rows(catalogue, embeddings, self.options.standardize, self.kind))
        with torch.no_grad():
            module.eval()
            items = module.projection(raw.to(self.device)).float()
            return torch.cat([items, torch.zeros(len(items), 1, device=items.device)], dim=1).cpu().numpy()


class RandomBert4RecRecommender(Bert4RecRecommender):
    """The reference point: BERT4Rec with trainable, randomly initialised item embeddings and no audio."""

    kind = "bert4rec_random"
    options_class = RandomBert4RecOptions

    def item_table(self, catalogue: Catalogue) -> tuple[torch.Tensor, bool]:
        """BERT's N(0, 0.02) initialisation, the scale the position embeddings and special rows start at."""
        generator = torch.Generator().manual_seed(self.seed)
        return torch.randn(len(catalogue), self.options.item_dim, generator=generator) * 0.02, False
