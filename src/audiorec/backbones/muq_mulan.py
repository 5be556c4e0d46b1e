"""MuQ-MuLan's audio embedding (OpenMuQ/MuQ-MuLan-large), loaded without the ``muq`` package.

The model is :mod:`audiorec.backbones.muq_mulan_model`; this module reads a track as the release's
``MuQMuLan.extract_audio_latents`` does (what ``mulan(wavs=...)`` returns):

* 24 kHz audio is cut into 10-s clips from its start; a last, shorter piece is completed with the track's
  own beginning (``audio[0 : clip - rest]``), not with silence, so a track shorter than half a clip becomes
  a clip of twice its length (the track twice) and any other last piece becomes a full clip;
* each clip gets its l2-normalised 512-d latent;
* the track's embedding is the plain mean of its clips' latents (not normalised again).

Every layer of the head is kept the same way, as the mean over clips of each clip's mean over frames:
``layer_0`` is the projection of MuQ's last hidden state, ``layer_1`` … ``layer_8`` the head's blocks and
the last layer (``layer: last``) the audio embedding. The one departure: a track so short that even doubled
it gives no spectrogram frame (under 1025 samples at the release's n_fft 2048) is zero-padded up to that
length, where the release would fail.

The MuQ inside the release was built from OpenMuQ/MuQ-large-msd-iter and normalises its log-mels with that
release's statistics, which the MuLan checkpoint does not repeat; they are shipped (``stats: msd``). A
``config.json`` beside the weights, as on the hub, is checked against the shipped architecture.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from audiorec.backbones.muq import MuQBackbone
from audiorec.backbones.muq_mulan_model import MuQMuLanAudio
from audiorec.backbones.musicfm import MelConformerBackbone, read_stats, stats_from_mapping
from audiorec.backbones.options import MuQMuLanOptions
from audiorec.errors import ParameterError

RELEASE_KEYS = {
    ("mulan", "dim_latent"): "dim_latent",
    ("audio_model", "model_dim"): "model_dim",
    ("audio_model", "use_layer_idx"): "use_layer_idx",
    ("audio_transformer", "dim"): "dim",
    ("audio_transformer", "tf_depth"): "tf_depth",
    ("audio_transformer", "heads"): "heads",
    ("audio_transformer", "dim_head"): "dim_head",
    ("audio_transformer", "ff_mult"): "ff_mult",
}
"""``(section, key)`` of the release's ``config.json`` and the key of the shipped ``mulan`` block it must equal."""

AUDIO_TOWER = "audio.model.model."
"""Prefix of MuQ's encoder inside the release's ``mulan`` state dict."""


def wrapped_clips(signal: np.ndarray, size: int, min_samples: int) -> list[np.ndarray]:
    """Clips of ``size`` samples; the last piece is completed with the signal's start (module docstring).

    A clip shorter than ``min_samples`` (only possible for a track under ``min_samples / 2``) is zero-padded.
    """
    signal = np.asarray(signal, dtype=np.float32)
    n_full, rest = divmod(signal.shape[0], size)
    clips = list(signal[: n_full * size].reshape(n_full, size))
    if rest or not clips:
        last = np.concatenate([signal[n_full * size :], signal[: size - rest]])
        if last.shape[0] < min_samples:
            last = np.pad(last, (0, min_samples - last.shape[0]))
        clips.append(last)
    return clips


def read_mulan_stats(name_or_path: str, shipped: dict[str, dict[str, float]], where: str) -> tuple[float, float]:
    """Shipped statistics by name, a stats JSON, or a MuQ release's ``config.json`` (its ``stat`` block)."""
    path = Path(name_or_path)
    if name_or_path not in shipped and path.is_file():
        release = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(release, dict) and "stat" in release:
            return stats_from_mapping(release["stat"], f"{where}: {path}")
    return read_stats(name_or_path, shipped, where)


class MuQMuLanBackbone(MelConformerBackbone):
    """MuQ-MuLan large (``size``: ``large``), 24 kHz, 10-s clips, the 512-d audio embedding as its last layer."""

    kind = "muq_mulan"
    family = "muq_mulan"
    options_class = MuQMuLanOptions
    checkpoint_prefix = "mulan."
    checkpoint_ignore = (
        "text.",
        "text_to_latents.",
        "contrast.",
        "multi_layer_contrastive_learning.",
        "text_layers_indices",
        "audio_layers_indices",
        "audio.aggregator.",
        *(AUDIO_TOWER + prefix for prefix in MuQBackbone.checkpoint_ignore),
    )
    float32_parts = "log-mel and conv front end and the MuLan head"

    def __init__(self, options: MuQMuLanOptions) -> None:
        super().__init__(options)
        self.use_stats(*read_mulan_stats(options.stats, self.spec["stats"], f"backbone {self.kind}"))

    @classmethod
    def build_model(cls, spec: dict[str, Any]) -> nn.Module:
        return MuQMuLanAudio(spec)

    @classmethod
    def hidden_sizes(cls, spec: dict[str, Any]) -> list[int]:
        head = spec["mulan"]
        return [head["dim"]] * (head["tf_depth"] + 1) + [head["dim_latent"]]

    def use_stats(self, mean: float, std: float) -> None:
        if not std > 0:
            raise ParameterError(f"{self.kind}: normalisation std must be positive, got {std}")
        self.model.encoder.mean, self.model.encoder.std = mean, std

    def windows(self, signal: np.ndarray) -> list[np.ndarray]:
        return wrapped_clips(signal, round(self.clip_seconds * self.sample_rate), self.min_window_samples(self.spec))

    @property
    def pooling(self) -> str:
        return (
            f"mean over {self.clip_seconds:g}-s clips (the last completed with the track's start) of each "
            "clip's frame mean; the last layer is the mean of the clips' l2-normalised latents"
        )

    def check_weights_config(self, weights: str | os.PathLike[str]) -> None:
        """Refuse a release whose head, latent size, clip length or sample rate differs from the built model."""
        path = Path(weights) / "config.json"
        if not path.is_file():
            return
        release = json.loads(path.read_text(encoding="utf-8"))
        head = self.spec["mulan"]
        pairs = [
            (f"{section}.{key}", head[target], release[section][key])
            for (section, key), target in RELEASE_KEYS.items()
            if key in release.get(section, {})
        ]
        mulan = release.get("mulan", {})
        pairs += [("mulan.sr", self.sample_rate, mulan["sr"])] if "sr" in mulan else []
        pairs += [("mulan.clip_secs", self.spec["clip_seconds"], mulan["clip_secs"])] if "clip_secs" in mulan else []
        for key, built, published in pairs:
            if built != published:
                raise ParameterError(
                    f"{self.kind} size={self.options.size!r} has {key}={built!r} ({self.spec['source']}) but "
                    f"{path} has {key}={published!r}"
                )
        audio_model = str(release.get("audio_model", {}).get("name", "muq"))
        if "muq" not in audio_model.lower():
            raise ParameterError(
                f"{path}: audio_model.name={audio_model!r} is not a MuQ model; this backbone builds MuQ-MuLan's "
                "MuQ audio tower only"
            )
