"""Contrastive objectives: InfoNCE with in-batch negatives, its multi-level sum, and MelCPC.

InfoNCE (eq. 1 of Choi et al. 2022) scores every anchor against every positive of the batch; the anchor's own
positive is the target and the other tracks' positives are its negatives. The paper's score is the raw dot
product ``y_aᵀ y_p``; ``similarity="cosine"`` divides the cosine by a temperature instead (SimCLR's choice), which
keeps the loss from rewarding vectors for merely growing in norm and bounds the logits, a departure from the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from audiorec.errors import ParameterError


def info_nce(
    anchors: torch.Tensor, positives: torch.Tensor, similarity: str = "dot", temperature: float | None = None
) -> torch.Tensor:
    """Mean over the batch of ``-log softmax_j(s(a_i, p_j))[i]``, with ``s`` the dot product or ``cos / τ``.

    Parameters
    ----------
    anchors, positives : torch.Tensor, shape ``(B, D)``
        Row ``i`` of ``positives`` is the positive of row ``i`` of ``anchors``; B ≥ 2.
    similarity : str
        One of :data:`audiorec.ssl.config.SIMILARITIES`.
    temperature : float, optional
        τ > 0, for ``cosine`` only (the dot product has none).
    """
    if anchors.shape != positives.shape or anchors.ndim != 2 or anchors.shape[0] < 2:
        raise ParameterError(
            f"info_nce needs anchors and positives of one shape (B >= 2, D); got {tuple(anchors.shape)} and "
            f"{tuple(positives.shape)}"
        )
    if similarity == "dot" and temperature is None:
        logits = anchors @ positives.T
    elif similarity == "cosine" and temperature is not None and temperature > 0:
        logits = F.normalize(anchors, dim=1) @ F.normalize(positives, dim=1).T / temperature
    else:
        raise ParameterError(
            f"info_nce: similarity {similarity!r} with temperature {temperature!r}; use 'dot' without a temperature "
            "or 'cosine' with one > 0"
        )
    return F.cross_entropy(logits.float(), torch.arange(anchors.shape[0], device=anchors.device))


def multi_level_info_nce(
    anchor_levels: Sequence[torch.Tensor],
    positive_levels: Sequence[torch.Tensor],
    similarity: str = "dot",
    temperature: float | None = None,
) -> torch.Tensor:
    """Eq. 2: InfoNCE computed at every encoder level separately, then summed."""
    if len(anchor_levels) != len(positive_levels) or not anchor_levels:
        raise ParameterError(f"got {len(anchor_levels)} anchor levels and {len(positive_levels)} positive levels")
    return sum(
        (info_nce(a, p, similarity, temperature) for a, p in zip(anchor_levels, positive_levels, strict=True)),
        start=torch.zeros((), device=anchor_levels[0].device),
    )


def cpc_loss(
    segments: torch.Tensor,
    context: torch.Tensor,
    predictors: Sequence[torch.nn.Module],
    similarity: str = "dot",
    temperature: float | None = None,
) -> torch.Tensor:
    """Eq. 3, MelCPC: from each context step ``t``, predict the segment ``k`` steps ahead, for k = 1…K.

    For every k, the prediction ``W_k c_t`` is scored by InfoNCE against the true segment vector ``z_{t+k}``
    and, as negatives, the vectors at ``t+k`` of the other tracks of the batch. The loss averages over the
    context steps that have a target k steps ahead, then sums over k.

    Parameters
    ----------
    segments : torch.Tensor, shape ``(B, T, D)``
        Encoder vectors ``z`` of T consecutive segments.
    context : torch.Tensor, shape ``(B, T, C)``
        GRU outputs ``c`` over them (C: the context width, 256 in the paper).
    predictors
        K linear maps from C to D, ``predictors[k - 1]`` for k steps ahead; K < T.
    """
    n_steps = segments.shape[1]
    if context.shape[:2] != segments.shape[:2] or context.ndim != 3 or not 0 < len(predictors) < n_steps:
        raise ParameterError(
            f"cpc_loss needs segments (B, T, D) and context (B, T, C) over the same steps and 1 <= K < T "
            f"predictors; got {tuple(segments.shape)}, {tuple(context.shape)} and K = {len(predictors)}"
        )
    total = torch.zeros((), device=segments.device)
    for k, predictor in enumerate(predictors, start=1):
        losses = [
            info_nce(predictor(context[:, t]), segments[:, t + k], similarity, temperature) for t in range(n_steps - k)
        ]
        total = total + torch.stack(losses).mean()
    return total
