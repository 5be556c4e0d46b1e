"""The common shape of pretrained transformer backbones: a shipped architecture, local weights, all layers.

Each family (MERT, Music2Vec, MusicFM, MuQ, EncodecMAE) declares its registry ``kind``, the ``family``
prefix of its shipped configs, how to build its ``nn.Module`` from such a config, and how checkpoints name
its parameters. This base turns config options into a ready model: the architecture comes from
``resources/backbones/`` (:mod:`audiorec.backbones.shipped`), the weights from a local path loaded strictly
(:mod:`audiorec.backbones.checkpoints`), and every hidden layer becomes a time-pooled vector.

Windows follow the releases' feature extraction: full windows of the pre-training context, then the rest
of the track **unpadded** (a short track is one short window), so the mean runs over the frames that real
audio produced and a clip's vector does not depend on the window length or on the tracks it is batched
with. The forward pass runs in the ``precision`` option's arithmetic (:mod:`audiorec.backbones.precision`),
float32 by default as the first paper ran these models; under bf16 or fp16 autocast each family's front end
(``float32_parts``) stays in float32, as the releases run it, and :attr:`PretrainedBackbone.precision`
records that in the table metadata.

Without ``weights`` the model keeps a seeded random initialisation. That is what the tests and the GPU
benchmark use; a warning says so, and the table metadata then records no weights digest.
"""

from __future__ import annotations

import contextlib
import logging
import os
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from audiorec.audio.windows import unpadded_windows
from audiorec.backbones.checkpoints import forbid_hub_access, load_pretrained
from audiorec.backbones.options import PretrainedOptions
from audiorec.backbones.precision import AUTOCAST_DTYPES
from audiorec.backbones.shipped import shipped_config
from audiorec.backbones.torch_base import TorchBackbone
from audiorec.common.config import dataclass_from_mapping

log = logging.getLogger(__name__)

INIT_SEED = 0
"""Seed of the random initialisation, so two unloaded backbones of one config are the same function."""


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """A float32 region inside an autocast, for front ends that lose accuracy in bf16.

    The engine autocasts on CUDA only; the CPU is covered too so that tests can check a region on the CPU.
    On the meta device, used to check shapes, this does nothing.
    """
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def keep_float32(module: nn.Module) -> None:
    """Make ``module`` compute in float32 inside an autocast, for a library class whose forward is not ours.

    Its ``forward`` is wrapped on the instance, so parameter names, and thus checkpoint keys, are unchanged.
    """
    forward: Callable[..., Any] = module.forward

    def float32_forward(inputs: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        with full_precision(inputs.device):
            return forward(inputs.float(), *args, **kwargs)

    module.forward = float32_forward


class PretrainedBackbone(TorchBackbone):
    """A :class:`TorchBackbone` built from a shipped architecture config and, optionally, local weights."""

    family: ClassVar[str]
    """Prefix of the family's configs in ``resources/backbones/``."""
    options_class: ClassVar[type[PretrainedOptions]]
    checkpoint_prefix: ClassVar[str] = ""
    """Prefix that the published checkpoint puts before the encoder's parameter names."""
    checkpoint_ignore: ClassVar[tuple[str, ...]] = ()
    """Training-only parts of the published checkpoint (heads, quantisers, decoders) that are not loaded."""
    float32_parts: ClassVar[str]
    """The front end that runs in float32 under autocast, named in :attr:`precision`."""

    def __init__(self, options: PretrainedOptions) -> None:
        super().__init__(device=options.device, max_duration_s=options.max_duration_s, precision=options.precision)
        forbid_hub_access()
        self.options = options
        self.spec = shipped_config(self.family, options.size)
        self.sample_rate = int(self.spec["sample_rate"])
        self.clip_seconds = float(options.clip_seconds or self.spec["clip_seconds"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            self.model = self.build_model(self.spec)
        self.layer_dims = {f"layer_{index}": dim for index, dim in enumerate(self.hidden_sizes(self.spec))}
        if options.weights is None:
            log.warning("%s: no weights given; the model keeps its random initialisation", self.kind)
        else:
            self.check_weights_config(options.weights)
            self.load_weights(options.weights)
        self.prepare()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> PretrainedBackbone:
        return cls(dataclass_from_mapping(cls.options_class, options, f"backbone {cls.kind}"))

    @classmethod
    @abstractmethod
    def build_model(cls, spec: dict[str, Any]) -> nn.Module:
        """The family's encoder for a shipped config (also used on the meta device to count parameters)."""

    @classmethod
    @abstractmethod
    def hidden_sizes(cls, spec: dict[str, Any]) -> list[int]:
        """Vector size of each hidden layer, shallowest first."""

    @classmethod
    def hidden_states(cls, model: nn.Module, clips: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden layer ``(windows, frames, dim)`` of ``model`` for ``clips`` (also on the meta device)."""
        return model(clips)

    def forward_layers(self, clips: torch.Tensor) -> list[torch.Tensor]:
        return self.hidden_states(self.model, clips)

    @classmethod
    @abstractmethod
    def min_window_samples(cls, spec: dict[str, Any]) -> int:
        """The shortest input the model makes a frame of: a shorter remainder of a track is dropped."""

    def windows(self, signal: np.ndarray) -> list[np.ndarray]:
        """Full windows of ``clip_seconds``, then the remainder unpadded (see module docstring)."""
        size = round(self.clip_seconds * self.sample_rate)
        return unpadded_windows(signal, size, self.min_window_samples(self.spec))

    @property
    def precision(self) -> str:
        if self.precision_used not in AUTOCAST_DTYPES:
            return super().precision
        return f"{super().precision}, {self.float32_parts} in float32"

    @property
    def pooling(self) -> str:
        return f"mean over the frames of {self.clip_seconds:g}-s windows, the last one unpadded"

    def check_weights_config(self, weights: str | os.PathLike[str]) -> None:
        """Refuse weights whose own config disagrees with the shipped architecture (families override)."""

    def load_weights(self, path: str | os.PathLike[str], ignore: tuple[str, ...] = ()) -> None:
        """Strictly load a local checkpoint file or model directory and remember its sha256."""
        self._weights_sha256 = load_pretrained(
            self.model, path, prefix=self.checkpoint_prefix, ignore=(*self.checkpoint_ignore, *ignore)
        )
