"""The common shape of pretrained transformer backbones: a shipped architecture, local weights, all layers.

Each family (MERT, Music2Vec, MusicFM, MuQ, EncodecMAE) declares its registry ``kind``, the ``family``
prefix of its shipped configs, how to build its ``nn.Module`` from such a config, and how checkpoints name
its parameters. This base turns config options into a ready model: the architecture comes from
``resources/backbones/`` (:mod:`audiorec.backbones.shipped`), the weights from a local path loaded strictly
(:mod:`audiorec.backbones.checkpoints`), and every hidden layer becomes a time-pooled vector.

Without ``weights`` the model keeps a seeded random initialisation. That is what the tests and the GPU
benchmark use; a warning says so, and the table metadata then records no weights digest.
"""

from __future__ import annotations

import contextlib
import logging
import os
from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from audiorec.backbones.checkpoints import forbid_hub_access, load_pretrained
from audiorec.backbones.options import PretrainedOptions
from audiorec.backbones.shipped import shipped_config
from audiorec.backbones.torch_base import TorchBackbone
from audiorec.config import dataclass_from_mapping

log = logging.getLogger(__name__)

INIT_SEED = 0
"""Seed of the random initialisation, so two unloaded backbones of one config are the same function."""


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """A float32 region inside the engine's CUDA autocast, for front ends that lose accuracy in bf16.

    Elsewhere (CPU, or the meta device used to check shapes) no autocast is active and this does nothing.
    """
    return torch.autocast("cuda", enabled=False) if device.type == "cuda" else contextlib.nullcontext()


class PretrainedBackbone(TorchBackbone):
    """A :class:`TorchBackbone` built from a shipped architecture config and, optionally, local weights."""

    family: ClassVar[str]
    """Prefix of the family's configs in ``resources/backbones/``."""
    options_class: ClassVar[type[PretrainedOptions]]
    checkpoint_prefix: ClassVar[str] = ""
    """Prefix that the published checkpoint puts before the encoder's parameter names."""
    checkpoint_ignore: ClassVar[tuple[str, ...]] = ()
    """Training-only parts of the published checkpoint (heads, quantisers, decoders) that are not loaded."""

    def __init__(self, options: PretrainedOptions) -> None:
        super().__init__(device=options.device, max_duration_s=options.max_duration_s)
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

    def check_weights_config(self, weights: str | os.PathLike[str]) -> None:
        """Refuse weights whose own config disagrees with the shipped architecture (families override)."""

    def load_weights(self, path: str | os.PathLike[str], ignore: tuple[str, ...] = ()) -> None:
        """Strictly load a local checkpoint file or model directory and remember its sha256."""
        self._weights_sha256 = load_pretrained(
            self.model, path, prefix=self.checkpoint_prefix, ignore=(*self.checkpoint_ignore, *ignore)
        )
