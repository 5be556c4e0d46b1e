"""MusicFM (25 Hz): a log-mel front end, two residual conv blocks and a rotary-position Conformer.

The published model builds its encoder from a config that it fetches from the hub at construction
(``facebook/wav2vec2-conformer-rope-large-960h-ft``, 12 of its 24 layers kept). Here that config is shipped
(``resources/backbones/musicfm-25hz.json``), so construction is offline. Pipeline, per 24 kHz window:

1. 128-band log-mel (n_fft 2048, hop 240: 100 frames/s; the last frame dropped), normalised with the
   training set's mean and standard deviation (``stats``: ``msd`` is shipped; the FMA checkpoint wants its
   own ``fma_stats.json``, given by path). The release names both files after their training set
   (``pretrained_{msd,fma}.pt``, ``{msd,fma}_stats.json``), and a checkpoint given statistics of the other
   set is refused: it would run, on inputs shifted and scaled unlike any it was trained on;
2. two residual 2-D conv blocks, each halving frequency and time (4× → 25 frames/s), then a linear map of
   the flattened channels × bands to 1024. Steps 1–2 run in float32 under autocast, as the release
   recommends (dB values and the 512-channel convs lose accuracy in bf16);
3. ``Wav2Vec2ConformerEncoder``; its 13 hidden layers (input + 12 blocks) are averaged over **time**. (Pooling
   over channels instead, as the first paper's code did, gives a 750-d vector per 30 s whose entries are
   time steps, not features.)

MuQ (:mod:`audiorec.backbones.muq`) shares this architecture.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audiorec.backbones.hidden_states import capture_hidden_states
from audiorec.backbones.mel import LogMelSpectrogram
from audiorec.backbones.options import MusicFMOptions
from audiorec.backbones.pretrained import PretrainedBackbone, full_precision
from audiorec.errors import ParameterError

log = logging.getLogger(__name__)

TRAINING_SETS = ("msd", "fma")
"""The training sets of MusicFM's releases, as their checkpoint and statistics file names spell them."""


class Res2dBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus a strided conv3×3 → BN shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.projects = in_channels != out_channels or stride[0] > 1
        if self.projects:
            self.conv3 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=stride)
            self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = self.bn3(self.conv3(x)) if self.projects else x
        return self.relu(shortcut + out)


class ConvSubsampling(nn.Module):
    """``(batch, n_mels, frames)`` → ``(batch, frames / 4, out_dim)`` with two :class:`Res2dBlock` (stride 2×2)."""

    def __init__(self, n_mels: int, channels: int, out_dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(Res2dBlock(1, channels, (2, 2)), Res2dBlock(channels, channels, (2, 2)))
        self.linear = nn.Linear(channels * (n_mels // 4), out_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv(mel.unsqueeze(1))  # (batch, channels, bands, frames)
        batch, channels, bands, frames = x.shape
        return self.linear(x.permute(0, 3, 1, 2).reshape(batch, frames, channels * bands))


class MelConformer(nn.Module):
    """Waveform → normalised log-mel → :class:`ConvSubsampling` → Conformer; returns all hidden layers.

    Module names follow the published checkpoints (``conv``, ``conformer``) so their keys load as they are.
    """

    def __init__(self, spec: dict[str, Any], mean: float = 0.0, std: float = 1.0) -> None:
        from transformers import Wav2Vec2ConformerConfig
        from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import Wav2Vec2ConformerEncoder

        super().__init__()
        mel = spec["mel"]
        # A standalone encoder gets no attention backend from a PreTrainedModel; SDPA is the fused kernel.
        conformer = Wav2Vec2ConformerConfig(**spec["conformer"], attn_implementation="sdpa")
        self.mel = LogMelSpectrogram(spec["sample_rate"], mel["n_fft"], mel["hop_length"], mel["n_mels"])
        self.conv = ConvSubsampling(mel["n_mels"], spec["conv_dim"], conformer.hidden_size)
        self.conformer = Wav2Vec2ConformerEncoder(conformer)
        self.mean = mean
        self.std = std

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``(batch, n_mels, frames)``."""
        return (self.mel(waveforms)[..., :-1] - self.mean) / self.std

    def forward(self, waveforms: torch.Tensor) -> list[torch.Tensor]:
        with full_precision(waveforms.device):
            tokens = self.conv(self.features(waveforms.float()))
        return capture_hidden_states(self.conformer.layers, lambda: self.conformer(tokens).last_hidden_state)


def stats_from_mapping(stats: dict[str, Any], where: str) -> tuple[float, float]:
    """Mean and standard deviation from a release's statistics (keys ``melspec_2048_mean``/``_std``)."""
    try:
        return float(stats["melspec_2048_mean"]), float(stats["melspec_2048_std"])
    except KeyError as error:
        raise ParameterError(f"{where} has no {error.args[0]!r}") from error


def read_stats(name_or_path: str, shipped: dict[str, dict[str, float]], where: str) -> tuple[float, float]:
    """Mean and standard deviation of the training log-mels: a shipped set by name, or a stats JSON by path.

    A stats JSON is the release's ``{msd,fma}_stats.json``.
    """
    if name_or_path in shipped:
        return float(shipped[name_or_path]["mean"]), float(shipped[name_or_path]["std"])
    path = Path(name_or_path)
    if not path.is_file():
        raise ParameterError(f"{where}: stats={name_or_path!r} is neither one of {sorted(shipped)} nor a file")
    return stats_from_mapping(json.loads(path.read_text(encoding="utf-8")), f"{where}: {path}")


class MelConformerBackbone(PretrainedBackbone):
    """A :class:`MelConformer` backbone; subclasses say where its normalisation statistics come from."""

    max_windows_per_forward = 16
    """One 30 s window through the 512-channel conv front end makes float32 activations of ~200 MB each."""
    float32_parts = "log-mel and conv front end"

    @classmethod
    def build_model(cls, spec: dict[str, Any]) -> nn.Module:
        return MelConformer(spec)

    @classmethod
    def hidden_sizes(cls, spec: dict[str, Any]) -> list[int]:
        conformer = spec["conformer"]
        return [conformer["hidden_size"]] * (conformer["num_hidden_layers"] + 1)

    @classmethod
    def min_window_samples(cls, spec: dict[str, Any]) -> int:
        """The reflect-padded STFT needs more than half a window of samples, and a frame needs a hop."""
        return max(spec["mel"]["n_fft"] // 2 + 1, spec["mel"]["hop_length"])

    def use_stats(self, mean: float, std: float) -> None:
        if not std > 0:
            raise ParameterError(f"{self.kind}: normalisation std must be positive, got {std}")
        self.model.mean, self.model.std = mean, std


class MusicFMBackbone(MelConformerBackbone):
    """MusicFM 25 Hz (``size``: ``25hz``), MSD or FMA checkpoint, 24 kHz, 30 s windows."""

    kind = "musicfm"
    family = "musicfm"
    options_class = MusicFMOptions
    checkpoint_prefix = "model."
    checkpoint_ignore = ("quantizer_", "preprocessor_", "linear.", "cls_token")

    def __init__(self, options: MusicFMOptions) -> None:
        super().__init__(options)
        self.use_stats(*read_stats(options.stats, self.spec["stats"], f"backbone {self.kind}"))
        if options.weights is not None:
            self.check_stats_match_checkpoint(options.weights, options.stats)

    def check_stats_match_checkpoint(self, weights: str, stats: str) -> None:
        """Refuse statistics of one training set with the checkpoint of the other (module docstring)."""
        checkpoint_set = named_training_set(weights)
        stats_set = stats if stats in self.spec["stats"] else named_training_set(stats)
        if checkpoint_set is None or stats_set is None:
            log.warning(
                "%s: cannot tell the training set of %s or of stats %r from their names", self.kind, weights, stats
            )
        elif checkpoint_set != stats_set:
            raise ParameterError(
                f"backbone {self.kind}: weights {weights} are the {checkpoint_set.upper()} checkpoint but "
                f"stats={stats!r} are {stats_set.upper()} statistics: set stats to the release's "
                f"{checkpoint_set}_stats.json"
            )


def named_training_set(path: str) -> str | None:
    """``msd`` or ``fma`` when exactly one of them is a word of the file name, else None."""
    words = set(re.findall(r"[a-z0-9]+", Path(path).name.lower()))
    named = [name for name in TRAINING_SETS if name in words]
    return named[0] if len(named) == 1 else None
