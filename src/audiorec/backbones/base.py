"""The interface every audio backbone implements.

A backbone turns a batch of mono waveforms at its own sample rate into one time-pooled vector per track
for *each* of its hidden layers. Extraction stores all layers, so choosing another layer later is a cheap
table selection, never a second forward pass.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from audiorec.audio.windows import pad_to_window
from audiorec.errors import AudiorecError, ParameterError


@dataclass(frozen=True)
class ClipPolicy:
    """How much of each track a backbone reads.

    ``max_duration_s`` crops every track from its start (None reads it whole); ``min_duration_s`` pads
    shorter tracks with silence, so a model with a fixed receptive field still sees a full window.
    """

    max_duration_s: float | None = None
    min_duration_s: float = 0.0

    def apply(self, signal: np.ndarray, sample_rate: int) -> np.ndarray:
        """Crop and pad ``signal`` according to the policy."""
        if self.max_duration_s is not None:
            signal = signal[: round(self.max_duration_s * sample_rate)]
        minimum = round(self.min_duration_s * sample_rate)
        if signal.shape[0] < minimum:
            signal = np.pad(signal, (0, minimum - signal.shape[0]))
        return signal


class Backbone(ABC):
    """Base class of audio backbones.

    Subclasses declare ``kind`` (the registry key), and set ``sample_rate``, ``clip_policy`` and
    ``layer_dims`` (an ordered mapping from hidden-layer name to vector size) in ``__init__``.
    """

    kind: ClassVar[str]
    sample_rate: int
    clip_policy: ClipPolicy
    layer_dims: dict[str, int]

    @classmethod
    @abstractmethod
    def from_options(cls, options: dict[str, Any]) -> Backbone:
        """Build the backbone from its config block's ``options`` (unknown keys are an error)."""

    @property
    def layers(self) -> tuple[str, ...]:
        """Hidden-layer names, shallowest first."""
        return tuple(self.layer_dims)

    short_audio: str | None = None
    """The ``short_audio`` policy (``skip`` or ``pad``) of a windowed backbone, whose model reads fixed windows and
    cannot run on less than one; None for a backbone that embeds a track of any length."""

    def shorter_than_window(self, signal: np.ndarray) -> bool:
        """Whether ``signal`` (mono, at :attr:`sample_rate`) is too short for one window; never, by default."""
        return False

    @property
    def short_audio_reason(self) -> str:
        """The failures row's error for a track skipped as too short (windowed backbones name their window)."""
        return "shorter than one window"

    def fit_to_one_window(self, signal: np.ndarray, window_samples: int, detail: str) -> np.ndarray:
        """``signal`` as a windowed backbone cuts it: unchanged if it holds one window, zero-padded to
        ``window_samples`` under ``short_audio: pad``, refused under ``skip``.

        The driver refuses a short track before embedding (:meth:`short_audio_refusal`); this keeps a direct
        call from embedding it anyway. ``detail`` says, in the backbone's terms, why the track holds no window.

        Raises
        ------
        AudiorecError
            If the track is shorter than one window and ``short_audio`` is ``skip``.
        """
        if not self.shorter_than_window(signal):
            return signal
        if self.short_audio == "skip":
            raise AudiorecError(f"{self.short_audio_reason}: {detail} (short_audio: pad pads it instead)")
        return pad_to_window(signal, window_samples)

    def short_audio_refusal(self, signal: np.ndarray) -> str | None:
        """Why this backbone skips ``signal`` (policy ``skip`` and shorter than one window), or None if it embeds it.

        The extraction driver asks before embedding, so a short track becomes a failures row with exactly this
        reason and never costs its batch a retry.
        """
        if self.short_audio == "skip" and self.shorter_than_window(signal):
            return self.short_audio_reason
        return None

    @property
    def weights_sha256(self) -> str | None:
        """Digest of the weights file this backbone loaded (None for parameter-free features)."""
        return None

    @property
    def precision(self) -> str:
        """Arithmetic of the forward pass (recorded in table metadata; neural backbones may use bf16 on GPU)."""
        return "float32"

    @property
    def device_description(self) -> str:
        """Where the forward pass runs (recorded in table metadata); parameter-free features run on the CPU."""
        return "cpu"

    @property
    def pooling(self) -> str:
        """How frame-level features become one vector per track (recorded in table metadata)."""
        return "mean over time"

    @abstractmethod
    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Embed a batch of mono float32 waveforms at ``self.sample_rate``.

        Returns
        -------
        dict
            For every name in :attr:`layers`, a float32 array of shape ``(len(waveforms), layer_dims[name])``.
        """


def select_layer(per_layer: dict[str, np.ndarray], selection: str | int) -> np.ndarray:
    """Pick the configured layer from per-layer vectors: ``"last"``, ``"mean"`` (of all layers) or an index.

    Negative indices count from the last layer, as in Python.
    """
    names = list(per_layer)
    if selection == "last":
        return per_layer[names[-1]]
    if selection == "mean":
        dims = {per_layer[name].shape[1] for name in names}
        if len(dims) != 1:
            raise ParameterError(f"layer 'mean' needs layers of one size; this backbone has sizes {sorted(dims)}")
        return np.mean(np.stack([per_layer[name] for name in names]), axis=0, dtype=np.float64).astype(np.float32)
    if isinstance(selection, int) and not isinstance(selection, bool):
        if not -len(names) <= selection < len(names):
            raise ParameterError(f"layer index {selection} is out of range for layers {names}")
        return per_layer[names[selection]]
    if isinstance(selection, str) and selection in per_layer:
        return per_layer[selection]
    raise ParameterError(f"layer must be 'last', 'mean', an index or one of {names}; got {selection!r}")


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB checkpoints do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
