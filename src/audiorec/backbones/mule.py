"""MULE (McCallum et al. 2022, "Supervised and Unsupervised Learning of Audio Representations for Music
Understanding"): Pandora's SF-NFNet-F0, its 1728-d embedding averaged over a track, without TensorFlow.

It reproduces ``supporting_data/configs/mule_embedding_average.yml`` of
https://github.com/PandoraMedia/music-audio-representations, the pipeline the journal version of the first paper
ran (``analysis.analyze(path)``):

- **log-mel** (``MelSpectrogram``): 16 kHz, librosa's power mel spectrogram with a 400-sample Hann window in a
  2048-point FFT, hop 160 (10 ms), centred with reflect padding, 96 HTK bands from 0 to 8 kHz, each filter
  scaled to unit L2 norm (``norm=2.0``), float32, then ``log10(10000·x + 1)``;
- **slices** (``SliceExtractor``): 300 frames (3 s) centred on every 200th frame (2 s) — centres closer than 150
  frames to an end are moved inwards — each standardised to zero mean and unit standard deviation (floor 0.01).
  The original cuts the log-mel in chunks of 8000 frames and starts each chunk's centres after its first
  frame, so frames 0, 8000, 16000, … (every 80 s) are never centres; that is reproduced;
- **network** (:mod:`audiorec.backbones.mule_model`) on every slice, and the **track vector** is the mean of the
  slices' embeddings (``TimelineAverage.data``).

Layers: ``embedding`` (1728-d) and, cheap by-products of the same pass, every stage's output of the slow and the
fast path averaged over frequency and time (``slow_stage_1`` … ``fast_stage_4``), each averaged over slices as
the embedding is.

The released weights (``supporting_data/model/model.keras``, CC BY-NC 4.0, git LFS) are read by
:mod:`audiorec.backbones.mule_keras` (``h5py``, no TensorFlow). ``tests/fixtures/mule`` holds the original code's
outputs for a small network of the same classes, which the port matches.

Departures and caveats, each deliberate:

- ``pooling: sum`` returns the sum over slices instead of the mean: the journal's extraction script stored
  ``TimelineAverage._data``, the running sum, rather than ``.data``, the mean;
- the original decodes files with ffmpeg at 44.1 kHz, divides 16-bit samples by 2^16 and *sums* the channels,
  then resamples with librosa; for a stereo file that equals the mean of the channels in [-1, 1], which is what
  the workflow's decoding gives, but a mono file reaches the original's network at half amplitude. Resampling is
  the workflow's (soxr), not resampy's;
- a track whose log-mel is shorter than one slice (under 2.99 s) follows the ``short_audio`` option: ``skip``, the
  default, makes it a failures row ("shorter than one slice (3 s)"), for the original cuts no slice below 2 s,
  and between 2 and 3 s a slice of fewer frames from a wrapped-around index; ``pad`` appends silence up to the
  shortest signal that gives one whole slice (2.99 s) and embeds that slice;
- ``max_duration_s`` (30 s by default, as the first paper's clips) crops tracks; the original reads up to 30 min.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import librosa
import numpy as np
import torch

from audiorec.backbones.base import file_sha256
from audiorec.backbones.mule_keras import KerasFile, state_dict_from_keras
from audiorec.backbones.mule_model import MuleArchitecture, SFNFNet
from audiorec.backbones.options import MuleOptions
from audiorec.backbones.shipped import shipped_config
from audiorec.backbones.torch_base import TorchBackbone, load_strict
from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import AudiorecError, ParameterError

log = logging.getLogger(__name__)

INIT_SEED = 0
"""Seed of the random initialisation used without weights (tests, benchmarks)."""
STD_FLOOR = 0.01
"""Smallest standard deviation a slice is divided by, as the original's ``SliceExtractor``."""


def log_mel(signal: np.ndarray, sample_rate: int, mel: dict[str, Any]) -> np.ndarray:
    """``(n_mels, frames)`` float32 log-mel of a whole signal, as the original ``MelSpectrogram`` feature."""
    power = librosa.feature.melspectrogram(
        y=np.asarray(signal, dtype=np.float32),
        sr=sample_rate,
        n_fft=mel["n_fft"],
        hop_length=mel["hop_length"],
        win_length=mel["win_length"],
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=mel["n_mels"],
        fmin=mel["fmin"],
        fmax=mel["fmax"],
        norm=2.0,
        htk=True,
        dtype=np.float32,
    )
    smallest = -9999999999.0
    return np.nan_to_num(np.log10(10000.0 * power + 1.0), nan=smallest, posinf=smallest, neginf=smallest)


def slice_starts(frames: int, slices: dict[str, int]) -> list[int]:
    """First frame of every slice the original cuts from a log-mel of ``frames`` frames (module docstring).

    Raises
    ------
    AudiorecError
        If the log-mel is shorter than one slice.
    """
    back, forward, hop, chunk = slices["look_backward"], slices["look_forward"], slices["hop"], slices["chunk"]
    if frames < back + forward:
        raise AudiorecError(
            f"the track's log-mel has {frames} frames, fewer than one {back + forward}-frame MULE slice (3 s)"
        )
    bounds = [*range(0, frames, chunk), frames]
    starts = []
    for start, end in itertools.pairwise(bounds):
        for centre in range(0, end, hop):
            if centre > start:
                starts.append(min(max(centre, back), frames - forward) - back)
    return starts


def standardised_slices(log_mels: np.ndarray, starts: Sequence[int], length: int) -> np.ndarray:
    """``(n, n_mels, length)`` slices, each shifted to zero mean and divided by its standard deviation."""
    cut = np.stack([log_mels[:, start : start + length] for start in starts]).astype(np.float32)
    cut -= np.mean(cut, axis=(1, 2), keepdims=True)
    std = np.nan_to_num(np.std(cut, axis=(1, 2), keepdims=True), nan=1.0, posinf=1.0, neginf=1.0)
    cut /= np.maximum(std, STD_FLOOR)
    return cut


class MuleBackbone(TorchBackbone):
    """MULE embeddings: the SF-NFNet-F0 on standardised 3-s log-mel slices, averaged over the track's slices.

    Parameters
    ----------
    options
        The backbone's options (:class:`~audiorec.backbones.options.MuleOptions`).
    """

    kind = "mule"
    family: ClassVar[str] = "mule"
    """Prefix of the shipped configs, ``resources/backbones/mule-{size}.json``."""
    options_class: ClassVar[type[MuleOptions]] = MuleOptions
    autocast_dtype: ClassVar[torch.dtype | None] = None
    """float32 by default (option ``precision``): the port's parity with the release is measured in it."""

    def __init__(self, options: MuleOptions) -> None:
        super().__init__(device=options.device, max_duration_s=options.max_duration_s, precision=options.precision)
        self.options = options
        self.short_audio = options.short_audio
        self.spec = shipped_config(self.family, options.size)
        self.sample_rate = int(self.spec["sample_rate"])
        self.clip_seconds = float(self.spec["clip_seconds"])
        self.architecture = MuleArchitecture.from_spec(self.spec, self.spec["source"])
        if self.architecture.n_mels != self.spec["mel"]["n_mels"]:
            raise ParameterError(f"mule config {self.spec['source']}: mel n_mels differs from the architecture's")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            self.model = SFNFNet(self.architecture)
        arch = self.architecture
        self.layer_dims = {f"slow_stage_{i + 1}": width for i, width in enumerate(arch.slow_stages)}
        self.layer_dims |= {f"fast_stage_{i + 1}": width for i, width in enumerate(arch.fast_stages)}
        self.layer_dims["embedding"] = arch.embedding_dim
        self.activate_embedding = True
        if options.weights is None:
            log.warning("mule: no weights given; the model keeps its random initialisation")
        else:
            self.load_weights(options.weights)
        self.prepare()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> MuleBackbone:
        return cls(dataclass_from_mapping(cls.options_class, options, "backbone mule"))

    @property
    def pooling(self) -> str:
        how = "sum" if self.options.pooling == "sum" else "mean"
        short = "; a track shorter than one slice zero-padded to one" if self.short_audio == "pad" else ""
        return f"{how} over standardised 3-s log-mel slices every 2 s (per slice: mean over frequency and time){short}"

    def load_weights(self, path: str | os.PathLike[str], ignore: Sequence[str] = ()) -> None:
        """Strictly load the released ``model.keras`` (or a folder of its two members), or a torch state dict."""
        path = Path(path)
        if path.suffix != ".keras" and not (path / "config.json").is_file():
            super().load_weights(path, ignore)
            return
        keras = KerasFile(path)
        activation, self.activate_embedding = keras.activation()
        if activation != self.architecture.activation:
            raise ParameterError(
                f"mule weights {path} use the scaled {activation}, the architecture {self.architecture.activation}"
            )
        load_strict(self.model, state_dict_from_keras(keras, self.model), str(path))
        self._weights_sha256 = _keras_sha256(path)

    @property
    def slice_frames(self) -> int:
        """Log-mel frames of one slice (300 in the released configuration)."""
        return int(self.spec["slices"]["look_backward"] + self.spec["slices"]["look_forward"])

    def frames(self, signal: np.ndarray) -> int:
        """Frames of the signal's log-mel (librosa's centred frames: 1 + samples // hop)."""
        return 1 + signal.shape[0] // int(self.spec["mel"]["hop_length"])

    def shorter_than_window(self, signal: np.ndarray) -> bool:
        """Whether the track's log-mel holds fewer frames than one slice (under 2.99 s at the release's hop)."""
        return self.frames(signal) < self.slice_frames

    @property
    def short_audio_reason(self) -> str:
        seconds = self.slice_frames * self.spec["mel"]["hop_length"] / self.sample_rate
        return f"shorter than one slice ({round(seconds, 1):g} s)"

    def readable(self, signal: np.ndarray) -> np.ndarray:
        """``signal`` as the slices are cut from it: a short one refused (``skip``) or padded to one slice (``pad``).

        Padding goes to the shortest signal whose log-mel is one slice long, so the one slice starts at the
        track's first frame and holds all of it.

        Raises
        ------
        AudiorecError
            If the track is shorter than one slice and ``short_audio`` is ``skip``.
        """
        detail = (
            f"the track's {self.frames(signal)} log-mel frames ({signal.shape[0] / self.sample_rate:.2f} s) are "
            f"fewer than one {self.slice_frames}-frame MULE slice, from which the original cuts no whole slice"
        )
        return self.fit_to_one_window(signal, (self.slice_frames - 1) * int(self.spec["mel"]["hop_length"]), detail)

    def windows(self, signal: np.ndarray) -> np.ndarray:
        """The standardised slices ``(n, n_mels, 300)`` the original feeds its network for this track."""
        signal = self.readable(signal)  # refuses before the STFT
        starts = slice_starts(self.frames(signal), self.spec["slices"])
        log_mels = log_mel(signal, self.sample_rate, self.spec["mel"])
        return standardised_slices(log_mels, starts, self.slice_frames)

    def forward_layers(self, clips: torch.Tensor) -> list[torch.Tensor]:
        slow, fast, embedding = self.model(clips.float())
        if not self.activate_embedding:
            embedding = torch.cat([slow[-1].mean(dim=(2, 3)), fast[-1].mean(dim=(2, 3))], dim=1)
        pooled = [m.mean(dim=(2, 3))[:, None] for m in (*slow, *fast)]
        return [*pooled, embedding[:, None]]

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        means = super().embed_batch(waveforms)
        if self.options.pooling == "mean":
            return means
        counts = np.array(
            [len(slice_starts(self.frames(self.readable(w)), self.spec["slices"])) for w in waveforms],
            dtype=np.float32,
        )
        return {name: (vectors * counts[:, None]).astype(np.float32) for name, vectors in means.items()}


def _keras_sha256(path: Path) -> str:
    """sha256 of the ``.keras`` file (what its git LFS pointer records), or over a folder's two members'."""
    if path.is_dir():
        digest = hashlib.sha256()
        for member in ("config.json", "model.weights.h5"):
            digest.update(file_sha256(path / member).encode())
        return digest.hexdigest()
    return file_sha256(path)
