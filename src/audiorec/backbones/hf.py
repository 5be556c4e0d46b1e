"""MERT and Music2Vec: waveform transformers loaded as stock ``transformers`` classes.

MERT v1 (95M and 330M) is a HuBERT: its parameter names are ``HubertModel``'s, so it loads without the
remote code its hub repository ships (which no longer imports under transformers ≥ 4.48). The 330M model's
``attention_relax`` rescaling subtracts a per-row constant from the attention logits, which the softmax
ignores, so ``HubertAttention`` computes the same function. Music2Vec v1 is a ``Data2VecAudioModel``.

Both read raw waveforms (MERT at 24 kHz, Music2Vec at 16 kHz) normalised to zero mean and unit variance
over the whole track before it is cut into windows, as their published ``Wav2Vec2FeatureExtractor``
(``do_normalize: true``) normalises each input it is given. The convolutional feature extractor runs in
float32 under autocast, as the releases run the whole model; the transformer may use bf16. Hidden layers
(13 for the base models, 25 for MERT-330M) are the transformer input and every block's output, the last
after MERT-330M's closing layer norm: ``output_hidden_states`` of the transformers releases these models
were published with (see :mod:`audiorec.backbones.hidden_states`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from audiorec.backbones.hidden_states import capture_hidden_states
from audiorec.backbones.options import WaveformTransformerOptions
from audiorec.backbones.pretrained import PretrainedBackbone, keep_float32
from audiorec.errors import ParameterError

ARCHITECTURE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "feat_extract_norm",
    "conv_dim",
    "conv_stride",
    "conv_kernel",
    "conv_bias",
    "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups",
    "conv_pos_kernel_size",
    "do_stable_layer_norm",
    "layer_norm_eps",
)
"""Config keys that shape the parameters; a weights directory whose config.json disagrees is refused."""

NORMALIZE_EPS = 1e-7
"""Variance floor of ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm``."""


class WaveformTransformerBackbone(PretrainedBackbone):
    """A ``transformers`` speech-style encoder (conv feature extractor + transformer) on raw waveforms."""

    options_class = WaveformTransformerOptions
    float32_parts = "conv feature extractor"
    config_class: ClassVar[str]
    """Names of the ``transformers`` classes, imported when a model is built (not when the DAG is)."""
    model_class: ClassVar[str]

    def __init__(self, options: WaveformTransformerOptions) -> None:
        super().__init__(options)
        setting = options.normalize_waveform
        self.normalize_waveform = bool(self.spec["normalize_waveform"] if setting is None else setting)

    @classmethod
    def build_model(cls, spec: dict[str, Any]) -> nn.Module:
        import transformers

        config = getattr(transformers, cls.config_class)(**spec["model"])
        model = getattr(transformers, cls.model_class)(config)
        keep_float32(model.feature_extractor)
        return model

    @classmethod
    def hidden_sizes(cls, spec: dict[str, Any]) -> list[int]:
        model = spec["model"]
        return [model["hidden_size"]] * (model["num_hidden_layers"] + 1)

    @classmethod
    def min_window_samples(cls, spec: dict[str, Any]) -> int:
        """The conv feature extractor's receptive field: 400 samples for the published models."""
        field, jump = 1, 1
        for kernel, stride in zip(spec["model"]["conv_kernel"], spec["model"]["conv_stride"], strict=True):
            field += (kernel - 1) * jump
            jump *= stride
        return field

    def check_weights_config(self, weights: str | os.PathLike[str]) -> None:
        """Compare the shape-defining keys of ``weights/config.json`` (when there is one) with the shipped config.

        Only these keys are read: published configs carry fields that current transformers reject (a path as
        ``vocab_size`` in Music2Vec's), and a remote-code ``model_type`` (MERT's) that it cannot resolve.
        """
        config_path = Path(weights) / "config.json"
        if not config_path.is_file():
            return
        published = json.loads(config_path.read_text(encoding="utf-8"))
        shipped = self.spec["model"]
        for key in ARCHITECTURE_KEYS:
            if key in published and key in shipped and published[key] != shipped[key]:
                raise ParameterError(
                    f"{self.kind} size={self.options.size!r} has {key}={shipped[key]!r} ({self.spec['source']}) "
                    f"but {config_path} has {key}={published[key]!r}: pick the size that matches the weights"
                )

    @classmethod
    def hidden_states(cls, model: nn.Module, clips: torch.Tensor) -> list[torch.Tensor]:
        return capture_hidden_states(model.encoder.layers, lambda: model(clips).last_hidden_state)

    def windows(self, signal: np.ndarray) -> list[np.ndarray]:
        """Windows of the track normalised as a whole (module docstring), in float32 like the release's."""
        if self.normalize_waveform:
            signal = np.asarray(signal, dtype=np.float64)
            signal = (signal - signal.mean()) / np.sqrt(signal.var() + NORMALIZE_EPS)
        return super().windows(signal)


class MERTBackbone(WaveformTransformerBackbone):
    """MERT v1 (``size``: ``v1-95M`` or ``v1-330M``), 24 kHz, 5 s pre-training context."""

    kind = "mert"
    family = "mert"
    config_class = "HubertConfig"
    model_class = "HubertModel"


class Music2VecBackbone(WaveformTransformerBackbone):
    """Music2Vec v1 (``size``: ``v1``), 16 kHz, 30 s pre-training context."""

    kind = "music2vec"
    family = "music2vec"
    config_class = "Data2VecAudioConfig"
    model_class = "Data2VecAudioModel"
