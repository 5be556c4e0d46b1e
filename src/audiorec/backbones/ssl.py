"""Self-supervised encoders trained by the workflow (``kind: ssl``), as frozen feature extractors.

The track embedding follows Choi et al. (2022): every 3-s segment of the track is encoded, and the
per-dimension mean and standard deviation over the segments are concatenated. For MelCPC the whole sequence of
segment vectors goes through the trained GRU, and its outputs are summarised the same way.

The encoder reads whole 3-s segments (it was trained on nothing else, and its poolings shrink time 160-fold,
so much less gives it no output at all). A track shorter than one segment follows the ``short_audio`` option:
``skip`` (the default) leaves it to the failures table, ``pad`` zero-pads it to one segment.

Layers (``layer: last`` is the paper's choice, the last one listed):

* ``infonce``: ``segment`` (2·D);
* ``multi``: ``level1`` … ``level5`` (2·D each) and ``concat`` (the 5·D concatenation, 10·D);
* ``cpc``: ``segment`` (the encoder's vectors, 2·D) and ``context`` (the GRU outputs, 2·C, C = ``context_dim``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from audiorec.audio.windows import split_windows
from audiorec.backbones.base import file_sha256
from audiorec.backbones.torch_base import TorchBackbone, load_strict
from audiorec.errors import ParameterError
from audiorec.ssl.config import N_BLOCKS, SSLConfig
from audiorec.ssl.features import SAMPLE_RATE, SEGMENT_SAMPLES, log_mel
from audiorec.ssl.model import SSLModel


def mean_and_std(vectors: torch.Tensor) -> torch.Tensor:
    """``(n, D)`` segment vectors → the ``(2·D,)`` concatenation of their mean and (population) std."""
    return torch.cat([vectors.mean(dim=0), vectors.std(dim=0, correction=0)])


class SSLBackbone(TorchBackbone):
    """A trained self-supervised encoder; ``load=False`` keeps a random initialisation (tests, baselines).

    Parameters
    ----------
    config
        The backbone's options; ``weights`` names the checkpoint written by training.
    load
        Load ``config.weights``; it must then be set.
    """

    kind = "ssl"
    autocast_dtype: ClassVar[torch.dtype | None] = None
    """IEEE float32 everywhere, with no ``precision`` option: no published recipe to follow, the encoders are
    small, and the GRU is not autocast-safe in bfloat16."""

    def __init__(self, config: SSLConfig, *, load: bool = True) -> None:
        super().__init__(device=config.device, max_duration_s=config.max_duration_s)
        self.config = config
        self.short_audio = config.short_audio
        self.model = SSLModel(config)
        self.sample_rate = SAMPLE_RATE
        self.clip_seconds = SEGMENT_SAMPLES / SAMPLE_RATE
        width = 2 * config.embedding_dim
        if config.loss == "multi":
            self.layer_dims = {f"level{i + 1}": width for i in range(N_BLOCKS)} | {"concat": N_BLOCKS * width}
        elif config.loss == "cpc":
            self.layer_dims = {"segment": width, "context": 2 * config.context_dim}
        else:
            self.layer_dims = {"segment": width}
        if load:
            if config.weights is None:
                raise ParameterError(
                    "backbone ssl needs option weights, the checkpoint written by rule ssl_train (the workflow sets it)"
                )
            self.load(config.weights)
        self.prepare()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SSLBackbone:
        return cls(SSLConfig.from_mapping(options))

    @property
    def pooling(self) -> str:
        source = "GRU outputs over the sequence of" if self.config.loss == "cpc" else "vectors of"
        short = "; a track shorter than one segment zero-padded to one" if self.short_audio == "pad" else ""
        return f"mean and standard deviation of the {source} the track's 3-s segments{short}"

    def load(self, path: str | Path) -> None:
        """Strictly load a checkpoint of :func:`audiorec.ssl.save_checkpoint` whose architecture matches."""
        path = Path(path)
        if not path.is_file():
            raise ParameterError(f"backbone ssl option weights: checkpoint {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "state_dict" not in state:
            raise ParameterError(f"backbone ssl option weights: {path} is not a checkpoint written by ssl training")
        if state.get("architecture") != self.config.architecture():
            raise ParameterError(
                f"backbone ssl: checkpoint {path} has architecture {state.get('architecture')}, "
                f"but the options ask for {self.config.architecture()}; train it again "
                "(snakemake --forcerun ssl_train)"
            )
        load_strict(self.model, state["state_dict"], str(path))
        self._weights_sha256 = file_sha256(path)

    def shorter_than_window(self, signal: np.ndarray) -> bool:
        return signal.shape[0] < SEGMENT_SAMPLES

    @property
    def short_audio_reason(self) -> str:
        return f"shorter than one window ({SEGMENT_SAMPLES / SAMPLE_RATE:g} s)"

    def windows(self, signal: np.ndarray) -> np.ndarray:
        """Raw log-mel inputs ``(n_segments, 188, 96)`` of the track's non-overlapping 3-s segments.

        Raises
        ------
        AudiorecError
            If the track is shorter than one segment and ``short_audio`` is ``skip``.
        """
        detail = (
            f"the track has {signal.shape[0]} samples ({signal.shape[0] / SAMPLE_RATE:.2f} s), the encoder reads "
            f"{SEGMENT_SAMPLES}-sample segments"
        )
        signal = self.fit_to_one_window(signal, SEGMENT_SAMPLES, detail)
        return log_mel(split_windows(signal, SEGMENT_SAMPLES, self.min_last_window))

    def forward_layers(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """Per-segment vectors ``(segments, 1, D)`` of every level (one level unless multi-level)."""
        return [level[:, None] for level in self.model.segment_levels(clips)]

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Mean and standard deviation over each track's segments (module docstring)."""
        inputs = [self.windows(np.asarray(w, dtype=np.float32)) for w in waveforms]
        counts = [len(x) for x in inputs]
        stacked = torch.from_numpy(np.concatenate(inputs))
        with torch.inference_mode(), self.precision_context():  # IEEE float32: TF32 off while it runs
            chunks = [
                [level[:, 0].cpu() for level in self.forward_layers(chunk.to(self.device))]
                for chunk in stacked.split(self.max_windows_per_forward)
            ]
            levels = [torch.cat(per_level).split(counts) for per_level in zip(*chunks, strict=True)]
            tracks = [[level[track] for level in levels] for track in range(len(inputs))]
            if self.config.loss == "multi":
                pooled = [[*map(mean_and_std, vectors), mean_and_std(torch.cat(vectors, dim=1))] for vectors in tracks]
            elif self.config.loss == "cpc":
                pooled = [
                    [mean_and_std(z), mean_and_std(self.model.context(z[None].to(self.device))[0].cpu())]
                    for (z,) in tracks
                ]
            else:
                pooled = [[mean_and_std(z)] for (z,) in tracks]
        return {
            name: np.stack([track[index].numpy() for track in pooled]).astype(np.float32)
            for index, name in enumerate(self.layers)
        }
