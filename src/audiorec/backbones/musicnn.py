"""MusiCNN (``MSD_musicnn``, ``MTT_musicnn``): the first paper's best backbone for recommendation, offline.

The published weights are TensorFlow 1 checkpoints shipped inside the ``musicnn`` wheel; they are read with
:mod:`audiorec.backbones.tf_checkpoint` (numpy only) into the PyTorch port of
:mod:`audiorec.backbones.musicnn_model`, so neither TensorFlow nor the wheel's ancient pins are needed:
``python -m pip install --no-deps musicnn==0.1.0``.

Input, as in ``musicnn/extractor.py``: 16 kHz mono → librosa mel power spectrogram (n_fft 512, hop 256,
96 bands) → float16 quantisation → ``log10(10000·x + 1)`` → non-overlapping patches of 187 frames (3 s).
The track embedding is the mean over patches of each layer's per-patch vector; ``last`` is the 200-d
penultimate layer.

Like the original extractor, only whole patches count by default: the frames after the last whole patch are
dropped (``MusiCNNConfig.pad_last_patch`` instead zero-pads a last partial patch holding at least
``min_last_window`` of a patch). A track shorter than one patch follows the ``short_audio`` option: ``skip``, the
default, gives it no embedding, as the extractor fails on it (a failures row, "shorter than one patch (3 s)");
``pad`` appends silence to the waveform up to one patch's samples, so it has exactly one patch.

Each patch's penultimate vector is its own. The extractor as shipped (one patch per TensorFlow run) returns
the first patch's penultimate vector for every later patch, because its loop over later runs appends a stale
variable; with all patches in one run it returns each patch's own, which is what the port reproduces
(``tests/fixtures/musicnn/track_reference.npz`` holds both).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import librosa
import numpy as np
import torch

from audiorec.audio.windows import split_windows
from audiorec.backbones.musicnn_model import MusiCNN, MusiCNNArchitecture, state_dict_from_tf
from audiorec.backbones.options import MusiCNNConfig
from audiorec.backbones.tf_checkpoint import TFCheckpoint
from audiorec.backbones.torch_base import TorchBackbone, load_strict
from audiorec.common.config import dataclass_from_mapping
from audiorec.errors import ParameterError

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
FLOAT16_MAX = float(np.finfo(np.float16).max)


def packaged_checkpoint(model: str) -> Path:
    """The checkpoint folder of ``model`` inside the installed ``musicnn`` package (found without importing it).

    Importing ``musicnn`` would import TensorFlow; locating its files does not.

    Raises
    ------
    ParameterError
        If the package is not installed or lacks the checkpoint.
    """
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise ParameterError(
            f"backbone musicnn model {model} needs the musicnn package's checkpoints, and musicnn is not installed: "
            "run `python -m pip install --no-deps musicnn==0.1.0` or set the backbone's `weights` option"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / model
    if not (folder / ".index").is_file():
        raise ParameterError(f"backbone musicnn: the musicnn package has no checkpoint {folder / '.index'}")
    return folder


def checkpoint_sha256(checkpoint: TFCheckpoint) -> str:
    """sha256 over the checkpoint's data files in shard order: the bytes every weight is read from."""
    digest = hashlib.sha256()
    for shard in range(checkpoint.num_shards):
        with open(checkpoint.data_path(shard), "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


class MusiCNNBackbone(TorchBackbone):
    """MusiCNN embeddings: per-patch mean pool, max pool and penultimate vectors averaged over the track's patches.

    Parameters
    ----------
    config
        The backbone's options.
    architecture
        Sizes of the network; the default is the published one. Tests pass tiny ones with ``load=False``.
    load
        Load ``config.weights`` (or the packaged checkpoint); False keeps the random initialisation.
    """

    kind = "musicnn"
    autocast_dtype: ClassVar[torch.dtype | None] = None
    """float32 by default (option ``precision``): the port's value is parity with the published model."""
    max_windows_per_forward = 16
    """A 3-s patch holds ~25 MB of front-end activations; 16 keep a forward near 400 MB."""

    def __init__(
        self, config: MusiCNNConfig, architecture: MusiCNNArchitecture | None = None, *, load: bool = True
    ) -> None:
        super().__init__(device=config.device, max_duration_s=config.max_duration_s, precision=config.precision)
        self.config = config
        self.short_audio = config.short_audio
        self.architecture = architecture or MusiCNNArchitecture()
        self.model = MusiCNN(self.architecture)
        self.sample_rate = SAMPLE_RATE
        self.clip_seconds = self.architecture.patch_frames * HOP_LENGTH / SAMPLE_RATE
        self.layer_dims = {
            "mean_pool": self.architecture.midend_channels,
            "max_pool": self.architecture.midend_channels,
            "penultimate": self.architecture.backend_units,
        }
        if load:
            self.load(config.weights or packaged_checkpoint(config.model))
        self.prepare()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> MusiCNNBackbone:
        return cls(dataclass_from_mapping(MusiCNNConfig, options, "backbone musicnn"))

    @property
    def pooling(self) -> str:
        patches = "whole and padded last patches" if self.config.pad_last_patch else "whole patches"
        short = "; a track shorter than one patch zero-padded to one" if self.short_audio == "pad" else ""
        return f"per 3-s patch (mean/max over time for the pools), then mean over {patches}{short}"

    def load(self, path: str | Path) -> None:
        """Strictly load a TensorFlow checkpoint or a torch state dict of the port, and record its sha256."""
        path = Path(path)
        if not (path.is_dir() or Path(f"{path}.index").is_file()):
            self.load_weights(path)
            return
        checkpoint = TFCheckpoint(path)
        load_strict(self.model, state_dict_from_tf(checkpoint, self.model), str(path))
        self._weights_sha256 = checkpoint_sha256(checkpoint)

    def log_mel(self, signal: np.ndarray) -> np.ndarray:
        """The network's input for a whole 16 kHz signal: ``(frames, n_mels)`` float32, as musicnn computes it.

        The float16 quantisation of the original is kept (the weights were trained on it); values beyond
        float16's range saturate instead of becoming infinite, and the log is taken in float32, where the
        original's float16 arithmetic overflows under numpy 2.
        """
        mel = librosa.feature.melspectrogram(
            y=np.asarray(signal, dtype=np.float32),
            sr=SAMPLE_RATE,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            n_mels=self.architecture.n_mels,
        ).T
        quantised = np.minimum(mel, FLOAT16_MAX).astype(np.float16).astype(np.float32)
        return np.log10(10000.0 * quantised + 1.0)

    def shorter_than_window(self, signal: np.ndarray) -> bool:
        """Whether the track's log-mel holds no whole patch (librosa's centred frames: 1 + samples // hop)."""
        return 1 + signal.shape[0] // HOP_LENGTH < self.architecture.patch_frames

    @property
    def short_audio_reason(self) -> str:
        return f"shorter than one patch ({round(self.clip_seconds, 1):g} s)"

    def windows(self, signal: np.ndarray) -> np.ndarray:
        """Non-overlapping log-mel patches ``(n_patches, patch_frames, n_mels)`` of a track.

        By default only whole patches, as ``musicnn``'s extractor cuts them (see module docstring); a
        padded last patch, averaged in with the same weight as a whole one, moves the track vector away
        from the original's.

        Raises
        ------
        AudiorecError
            If the track holds no whole patch and ``short_audio`` is ``skip``.
        """
        size = self.architecture.patch_frames
        detail = (
            f"the track's {1 + signal.shape[0] // HOP_LENGTH} mel frames ({signal.shape[0] / SAMPLE_RATE:.2f} s) "
            f"hold no whole {size}-frame patch, and musicnn embeds whole patches only"
        )
        signal = self.fit_to_one_window(signal, size * HOP_LENGTH, detail)
        mel = self.log_mel(signal)
        if self.config.pad_last_patch:
            return split_windows(mel, size, self.min_last_window)
        whole = mel.shape[0] // size
        return split_windows(mel[: whole * size], size, self.min_last_window)

    def forward_layers(self, clips: torch.Tensor) -> list[torch.Tensor]:
        out = self.model(clips)
        return [out.mean_pool[:, None], out.max_pool[:, None], out.penultimate[:, None]]
