"""Jukebox (OpenAI's 5B music language model) as a representation, the way JukeMIR probes it.

Castellon et al. (2021) showed that the middle of Jukebox's top-level prior makes strong MIR features, and
Tamm & Aljanaki (2024) used their library (jukemirlib) for recommendation. Per track, as JukeMIR does:

1. mono 44.1 kHz audio divided by its peak (over the audio the backbone is given: the first
   ``max_duration_s``, or the whole track when that is None), first ``clip_seconds`` (25 s) kept;
2. the VQ-VAE's top-level encoder (hop 128; float32, also under autocast) gives codes, of which the first
   ``n_ctx`` (8192, 23.78 s) are kept; a shorter clip keeps the codes it has;
3. the prior reads the codes shifted right by one behind a start token (artist + genre embedding), plus
   position embeddings and the timing signal of JukeMIR's setting (:func:`conditioning_ids`: unknown artist
   and genre, a 62 s song, offset 0), in blocks of 64 positions, the last padded (the prior is causal, so
   padding changes no real position);
4. layers are the prior's input and the residual stream after each of the ``kept_blocks`` (36 of 72) blocks,
   averaged over the codes; the last, block 36 with no final layer norm, is JukeMIR's representation.

Two published extractions differ in what they read and how they compute (option ``recipe``,
:data:`~audiorec.backbones.options.JUKEBOX_RECIPES`):

* ``jukemirlib``, the default, is the first paper's ``jukemirlib.extract(fpath, fp16=True, layers=[36],
  duration=24)``: the first 24 s are loaded and divided by their own peak (``max_duration_s`` 24), all of them
  are encoded, and the first 8192 codes kept. With ``fp16`` the prior's input is cast to float16
  (``x = x.half()``) and its projections, stored in float16 by the release, run in float16 (Jukebox's
  ``Conv1D`` takes the input's dtype); layer norms compute in float32 and return float16, attention runs
  through torch's fused kernels in float16. The VQ-VAE encoder stays in float32, and the weights of the
  projections are kept in float16 on the device (~5 GB for 36 blocks instead of ~10), so it fits a 24 GB card.
* ``jukemir``, JukeMIR's own ``representations/jukebox/main.py``: the whole track divided by its peak, its
  first 25 s encoded, the prior in float32 (``fp16=False``), and a track with fewer codes than the context
  (8192, 23.78 s) refused, as JukeMIR raises on it.

``precision: bf16`` runs the prior under bfloat16 autocast instead (the encoder in float32), float32 weights.

Only the top encoder and the first 36 blocks are built and loaded (:mod:`audiorec.backbones.jukebox_weights`).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.audio.windows import unpadded_windows
from audiorec.backbones.jukebox_model import Codebook, Prior, TopEncoder, projection_dtype, store_projections_in
from audiorec.backbones.jukebox_weights import load_jukebox_weights
from audiorec.backbones.options import JukeboxOptions
from audiorec.backbones.precision import precision_scope
from audiorec.backbones.pretrained import PretrainedBackbone, full_precision
from audiorec.errors import AudiorecError, ParameterError


def hop_length(spec: dict[str, Any]) -> int:
    """Audio samples per top-level code: every downsampling step halves the time axis."""
    return 2 ** sum(spec["vqvae"]["downs_t"])


@dataclass(frozen=True)
class ConditioningIds:
    """The label conditioner's inputs for one setting: ids, and the time bins of every context position."""

    total_length: int
    """Song length in samples (a multiple of the hop, as jukemirlib rounds it)."""
    sample_length: int
    """Audio samples covered by the context: ``n_ctx * hop``."""
    artist: int
    genres: tuple[int, ...]
    """One id per genre slot, ``-1`` for an empty slot."""
    total_length_bin: int
    absolute_bins: torch.Tensor
    relative_bins: torch.Tensor


def _time_bins(position: torch.Tensor, low: float, high: float, bins: int) -> torch.Tensor:
    """Bin of each position in ``[low, high)``, in float32 arithmetic as the release bins them."""
    return (bins * ((position - low) / (high - low))).floor().long()


def conditioning_ids(spec: dict[str, Any]) -> ConditioningIds:
    """JukeMIR's labels in the config's ``conditioning`` block, binned as the release's label conditioner bins them.

    The song length is ``total_length_s`` rounded down to a multiple of the hop; the context covers
    ``[offset, offset + n_ctx·hop)``, interpolated over the ``n_ctx`` positions, both absolutely (against the
    longest song, ``max_duration_s``) and relative to the song length (clamped to its end).
    """
    labels, condition, n_ctx = spec["labels"], spec["conditioning"], spec["prior"]["n_ctx"]
    sample_rate, hop, n_bins = spec["sample_rate"], hop_length(spec), labels["time_bins"]
    total = int(condition["total_length_s"] * sample_rate) // hop * hop
    shortest, longest = labels["min_duration_s"] * sample_rate, labels["max_duration_s"] * sample_rate
    if not shortest <= total < longest:
        raise ParameterError(f"jukebox: total_length_s must lie in [{shortest / sample_rate}, {longest / sample_rate})")
    genres = list(condition["genres"])
    if not 0 < len(genres) <= labels["genre_slots"]:
        raise ParameterError(f"jukebox: conditioning needs 1 to {labels['genre_slots']} genre ids, got {genres}")
    song = torch.tensor([[float(total)]], device="cpu")
    start = torch.tensor([[float(condition["offset"])]], device="cpu")
    end = start + n_ctx * hop
    fraction = torch.arange(0, n_ctx, dtype=torch.float32, device="cpu").view(1, n_ctx) / n_ctx
    relative_start, relative_end = start / song, (end / song).clamp(0.0, 1.0)
    return ConditioningIds(
        total_length=total,
        sample_length=n_ctx * hop,
        artist=int(condition["artist"]),
        genres=tuple(genres + [-1] * (labels["genre_slots"] - len(genres))),
        total_length_bin=int(_time_bins(song, shortest, longest, n_bins)),
        absolute_bins=_time_bins(start + (end - start) * fraction, 0.0, longest, n_bins)[0],
        relative_bins=_time_bins(relative_start + (relative_end - relative_start) * fraction, 0.0, 1.0, n_bins)[0],
    )


class LabelTable(nn.Module):
    """One embedding table of the label conditioner (``….emb.weight`` in the checkpoint)."""

    def __init__(self, bins: int, width: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(bins, width)


class LabelConditioner(nn.Module):
    """Start token (artist + genre embeddings) and timing signal (song length, absolute and relative position)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        labels, width = spec["labels"], spec["prior"]["width"]
        self.bow_genre_emb = LabelTable(labels["genre_bins"], width)
        self.artist_emb = LabelTable(labels["artist_bins"], width)
        self.total_length_emb = LabelTable(labels["time_bins"], width)
        self.absolute_pos_emb = LabelTable(labels["time_bins"], width)
        self.relative_pos_emb = LabelTable(labels["time_bins"], width)
        ids = conditioning_ids(spec)
        genres = [genre for genre in ids.genres if genre >= 0]
        self.register_buffer("artist", torch.tensor([ids.artist]), persistent=False)
        self.register_buffer("genres", torch.tensor(genres), persistent=False)
        self.register_buffer("total_length_bin", torch.tensor([ids.total_length_bin]), persistent=False)
        # Rebuilt from lists so that they land on the device the model is built on (meta, for shape checks).
        self.register_buffer("absolute_bins", torch.tensor(ids.absolute_bins.tolist()), persistent=False)
        self.register_buffer("relative_bins", torch.tensor(ids.relative_bins.tolist()), persistent=False)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The start token ``(width,)`` and the timing signal ``(n_ctx, width)``."""
        start = self.artist_emb.emb(self.artist)[0] + self.bow_genre_emb.emb(self.genres).sum(0)
        timing = (
            self.total_length_emb.emb(self.total_length_bin)
            + self.absolute_pos_emb.emb(self.absolute_bins)
            + self.relative_pos_emb.emb(self.relative_bins)
        )
        return start, timing


class JukeboxTop(nn.Module):
    """The top-level VQ-VAE encoder and codebook, the label conditioner and the prior's first blocks.

    Attribute names follow the published state dicts, whose keys therefore load unchanged.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        vq, prior = spec["vqvae"], spec["prior"]
        if prior["n_ctx"] % prior["block_ctx"] or not 0 < prior["kept_blocks"] <= prior["depth"]:
            raise ParameterError("jukebox: n_ctx must be whole attention blocks and 0 < kept_blocks <= depth")
        self.level = str(len(vq["downs_t"]) - 1)
        self.hop = hop_length(spec)
        self.n_ctx, self.block_ctx = prior["n_ctx"], prior["block_ctx"]
        self.encoders = nn.ModuleDict({self.level: TopEncoder(vq)})
        codebook = Codebook(vq["codebook_size"], vq["emb_width"])
        self.bottleneck = nn.ModuleDict({"level_blocks": nn.ModuleDict({self.level: codebook})})
        self.prior = Prior(prior, vq["codebook_size"])
        self.y_emb = LabelConditioner(spec)

    def encode(self, clip: torch.Tensor) -> torch.Tensor:
        """Codes ``(min(samples // hop, n_ctx),)`` of a mono clip ``(samples,)``, in float32 under autocast.

        The whole clip is encoded before the codes are cut to the context, so the last kept codes see the
        audio after them, as in JukeMIR.
        """
        if clip.shape[-1] < self.hop:
            raise ParameterError(f"a clip of {clip.shape[-1]} samples is shorter than one code ({self.hop} samples)")
        with full_precision(clip.device):
            latents = self.encoders[self.level](clip.float().view(1, 1, -1))
            return self.bottleneck["level_blocks"][self.level].quantise(latents)[0, : self.n_ctx]

    def layers(self, codes: torch.Tensor) -> Iterator[torch.Tensor]:
        """The prior's input, then each block's output, ``(batch, positions, width)``, for ``codes`` of one length.

        The input is summed in float32 and then takes the dtype the projections are stored in: float16 ones
        make jukemirlib's float16 residual stream (``x = x.half()``), float32 ones keep it in float32.
        """
        batch, length = codes.shape
        padded = math.ceil(length / self.block_ctx) * self.block_ctx
        start, timing = self.y_emb()
        tokens = self.prior.x_emb(F.pad(codes, (0, padded - length)))
        x = torch.cat([start.expand(batch, 1, -1), tokens[:, :-1]], dim=1)
        x = x + self.prior.pos_emb.pos_emb[:padded] + timing[:padded]
        x = x.to(projection_dtype(self.prior.transformer))
        yield x[:, :length]
        for block in self.prior.transformer._attn_mods:
            x = block(x)
            yield x[:, :length]


class JukeboxBackbone(PretrainedBackbone):
    """Jukebox 5B's top prior (``size``: ``5b``), JukeMIR's block-36 representation and every block before it."""

    kind = "jukebox"
    family = "jukebox"
    options_class = JukeboxOptions
    options: JukeboxOptions
    float32_parts = "VQ-VAE encoder"
    max_windows_per_forward = 2
    """Each 25 s clip returns 37 float32 layers of 8192 by 4800 values (~5.8 GB)."""

    @classmethod
    def build_model(cls, spec: dict[str, Any]) -> nn.Module:
        return JukeboxTop(spec)

    @classmethod
    def hidden_sizes(cls, spec: dict[str, Any]) -> list[int]:
        return [spec["prior"]["width"]] * (spec["prior"]["kept_blocks"] + 1)

    @classmethod
    def min_window_samples(cls, spec: dict[str, Any]) -> int:
        """One code's worth of audio."""
        return hop_length(spec)

    @classmethod
    def hidden_states(cls, model: nn.Module, clips: torch.Tensor) -> list[torch.Tensor]:
        """Every layer for clips of one length: each clip is encoded alone, as JukeMIR encodes a track."""
        codes = torch.stack([model.encode(clip) for clip in clips])
        return list(model.layers(codes))

    def windows(self, signal: np.ndarray) -> Sequence[np.ndarray]:
        """One window: the peak-normalised signal's first ``clip_seconds``, unpadded when shorter.

        Raises
        ------
        AudiorecError
            Under ``recipe: jukemir``, if the window holds fewer codes than the context (JukeMIR refuses it).
        """
        peak = float(np.max(np.abs(signal))) if signal.size else 0.0
        normalised = signal / peak if peak > 0 else signal
        size = round(self.clip_seconds * self.sample_rate)
        clip = normalised[:size]
        context = self.model.n_ctx * self.model.hop
        if self.options.recipe == "jukemir" and clip.shape[0] < context:
            raise AudiorecError(
                f"jukebox recipe jukemir needs {context / self.sample_rate:.2f} s of audio ({self.model.n_ctx} codes) "
                f"and the track has {clip.shape[0] / self.sample_rate:.2f} s; JukeMIR refuses shorter tracks "
                "(recipe jukemirlib embeds the codes there are)"
            )
        return unpadded_windows(clip, size, self.min_window_samples(self.spec))

    def prepare(self) -> None:
        """Store the prior's projections for the precision used (float16 under fp16) before moving the model."""
        self._store_prior_for(self.precision_used)
        super().prepare()

    def _store_prior_for(self, precision: str) -> None:
        dtype = torch.float16 if precision == "fp16" else torch.float32
        if projection_dtype(self.model.prior) != dtype:
            store_projections_in(self.model.prior, dtype)

    def precision_context(self) -> contextlib.AbstractContextManager:
        """fp16 is jukemirlib's recipe (module docstring), not autocast; the other precisions are the generic ones."""
        used = self.precision_used
        self._store_prior_for(used)
        return precision_scope(used, self.device, autocast=used != "fp16")

    @property
    def precision(self) -> str:
        if self.precision_used == "fp16":
            return f"float16 residual stream and prior projections (jukemirlib), {self.float32_parts} in float32"
        return super().precision

    def load_weights(self, path: str | os.PathLike[str], ignore: tuple[str, ...] = ()) -> None:
        """Strictly load a converted file, or convert the published checkpoints once (module docstring).

        What is left out of the published checkpoints is fixed by the config, so ``ignore`` must stay empty.
        """
        if ignore:
            raise ParameterError(f"jukebox loads strictly; its unused checkpoint parts are fixed, got ignore={ignore}")
        self._weights_sha256 = load_jukebox_weights(self.model, path, self.spec, self.options.converted)

    @property
    def pooling(self) -> str:
        return f"mean over the top-level codes of the first {self.clip_seconds:g} s (at most {self.model.n_ctx})"
