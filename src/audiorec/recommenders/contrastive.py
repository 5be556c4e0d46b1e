"""Decoupled contrastive losses between two views of the same items (the Bimodal recommender's objective).

Decoupled contrastive learning (Yeh et al., ECCV 2022, "Decoupled Contrastive Learning") is InfoNCE with the
positive pair removed from the denominator. For unit rows ``z1`` (one view) and ``z2`` (the other view) of a
batch of N items, item i's one-way loss is

    L_i = −w_i·⟨z1_i, z2_i⟩/τ + log Σ_{k≠i} [exp(⟨z1_i, z1_k⟩/τ) + exp(⟨z1_i, z2_k⟩/τ)]

and the batch loss is the mean over i. ``w_i = 1`` for DCL; DCLW weights the positive term by the negative von
Mises-Fisher weighting w_i = 2 − N·softmax_i(⟨z1_i, z2_i⟩/σ), which gives hard positives (dissimilar views)
more weight and leaves the mean weight at 1.

The journal version of Tamm & Aljanaki ("Adopting State-of-the-Art Pretrained Audio Representations for Music
Recommender Systems") trains its Bimodal net with these losses and three variants; every variant here computes
what its public code computes:

* ``dcl``, ``dclw``: the one-way loss above, summed over both directions (audio → CF and CF → audio);
* ``sdcl``: one direction, whose denominator holds the other view's similarities among themselves as well
  (⟨z2_i, z2_k⟩, k ≠ i): symmetric in what it pushes apart;
* ``sdclw``: the original code's SDCLW derives from its one-way DCL rather than from SDCL, so it is the
  one-way, weighted DCL (no ⟨z2_i, z2_k⟩ terms), taken in one direction only;
* ``adcl``, ``adclw``: one direction, only cross-view negatives ⟨z1_i, z2_k⟩ (k ≠ i) in the denominator.

The excluded terms are not removed but masked by adding log(1e-45) to their logits, as the original does; a
masked term therefore contributes exp(s/τ)·1e-45 to its sum, which changes no float32 result.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from audiorec.errors import ParameterError
from audiorec.recommenders.options import BIMODAL_LOSSES

MASK_LOGIT = math.log(1e-45)
"""Added to the logit of every excluded pair (the positive and each item with itself): the original's mask."""

LOSSES = BIMODAL_LOSSES
"""The loss variants of option ``loss``; ``dcl`` is the original's default."""


def vmf_weights(z1: torch.Tensor, z2: torch.Tensor, sigma: float) -> torch.Tensor:
    """DCLW's positive weights 2 − N·softmax(⟨z1_i, z2_i⟩/σ) over the batch (mean 1, larger for less similar pairs)."""
    return 2 - z1.shape[0] * torch.softmax((z1 * z2).sum(dim=1) / sigma, dim=0)


def _one_way(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float,
    negatives: tuple[torch.Tensor, ...],
    weights: torch.Tensor | None,
) -> torch.Tensor:
    """Mean over items of −w·⟨z1_i, z2_i⟩/τ + logsumexp of the ``negatives`` blocks' row i, diagonals masked."""
    positive = -(z1 * z2).sum(dim=1) / temperature
    if weights is not None:
        positive = positive * weights
    logits = torch.cat(negatives, dim=1) / temperature
    # Mask each block's diagonal in place: no dense batch × (blocks · batch) mask (800 MB per block at 10000).
    size, blocks = z1.shape[0], len(negatives)
    rows = torch.arange(size, device=z1.device)
    columns = (rows[None, :] + size * torch.arange(blocks, device=z1.device)[:, None]).ravel()
    logits[rows.repeat(blocks), columns] += MASK_LOGIT
    return (positive + torch.logsumexp(logits, dim=1)).mean()


def dcl_one_way(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """One-way DCL of view ``z1`` against view ``z2``: negatives ⟨z1_i, z1_k⟩ and ⟨z1_i, z2_k⟩, k ≠ i."""
    cross = z1 @ z2.T
    return _one_way(z1, z2, temperature, (z1 @ z1.T, cross), weights)


def contrastive_loss(
    name: str, content: torch.Tensor, collaborative: torch.Tensor, temperature: float = 0.1, sigma: float = 0.5
) -> torch.Tensor:
    """The loss variant ``name`` (one of :data:`LOSSES`) of unit rows ``content`` (z1) and ``collaborative`` (z2).

    ``sigma`` is the von Mises-Fisher temperature of the weighted variants (``*w``); the others ignore it.
    """
    if name not in _VARIANTS:
        raise ParameterError(f"unknown contrastive loss {name!r}; expected one of {', '.join(LOSSES)}")
    return _VARIANTS[name](content, collaborative, temperature, sigma)


def _both_ways(z1: torch.Tensor, z2: torch.Tensor, temperature: float, weights: torch.Tensor | None) -> torch.Tensor:
    """DCL of z1 against z2 plus DCL of z2 against z1; the cross-view similarities are computed once (the second
    direction's are the transpose), a quarter of the loss's matrix products at a batch of 10000."""
    cross = z1 @ z2.T
    forward = _one_way(z1, z2, temperature, (z1 @ z1.T, cross), weights)
    return forward + _one_way(z2, z1, temperature, (z2 @ z2.T, cross.T), weights)


def _dcl(z1: torch.Tensor, z2: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    return _both_ways(z1, z2, temperature, None)


def _dclw(z1: torch.Tensor, z2: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    return _both_ways(z1, z2, temperature, vmf_weights(z1, z2, sigma))  # the weights are symmetric in z1, z2


def _sdcl(z1: torch.Tensor, z2: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    return _one_way(z1, z2, temperature, (z1 @ z1.T, z1 @ z2.T, z2 @ z2.T), None)


def _sdclw(z1: torch.Tensor, z2: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    return dcl_one_way(z1, z2, temperature, vmf_weights(z1, z2, sigma))


def _adcl(z1: torch.Tensor, z2: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    return _one_way(z1, z2, temperature, (z1 @ z2.T,), None)


def _adclw(z1: torch.Tensor, z2: torch.Tensor, temperature: float, sigma: float) -> torch.Tensor:
    return _one_way(z1, z2, temperature, (z1 @ z2.T,), vmf_weights(z1, z2, sigma))


_VARIANTS: dict[str, Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor]] = {
    "dcl": _dcl,
    "dclw": _dclw,
    "sdcl": _sdcl,
    "sdclw": _sdclw,
    "adcl": _adcl,
    "adclw": _adclw,
}
