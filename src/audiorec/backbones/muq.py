"""MuQ: MusicFM's architecture trained with Mel-RVQ targets, loaded without the ``muq`` package.

``muq`` 0.1.0 does not import under transformers 5, but its encoder is exactly
:class:`audiorec.backbones.musicfm.MelConformer`: 128-band log-mel, two residual conv blocks, a 12-layer
rotary Conformer whose config the release embeds (``w2v2_config``). A release directory (``config.json``
and ``model.safetensors``, as on the hub) carries its own normalisation statistics (``stat``), which are
used unless ``stats`` says otherwise; the shipped config's architecture is checked against it, and so are
the front end's ``hop_length`` and ``n_mels`` and the ``label_rate`` (25 Hz), from which the release derives
its conv blocks' time strides (``n_fold = 100 // label_rate``: 4 → strides 2, 2; 2 → strides 2, 1).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from audiorec.backbones.musicfm import MelConformerBackbone, read_stats, stats_from_mapping
from audiorec.backbones.options import MuQOptions
from audiorec.errors import ParameterError

RELEASE_KEYS = {"encoder_dim": "hidden_size", "encoder_depth": "num_hidden_layers"}
"""Release config keys and the Conformer config keys they must equal (the release sets these two after
reading ``w2v2_config``, so that block's own width and depth are not compared)."""
CONFORMER_SHAPE_KEYS = (
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "position_embeddings_type",
    "rotary_embedding_base",
    "conv_depthwise_kernel_size",
    "layer_norm_eps",
)
STRIDES_BY_FOLD = {4: [2, 2], 2: [2, 1]}
"""The release's time strides of its two conv blocks for each number of mel frames per label."""
MEL_FRAMES_PER_SECOND = 100
"""The release's ``n_fold`` divides this (24 kHz / hop 240), whatever its own ``hop_length``."""


class MuQBackbone(MelConformerBackbone):
    """MuQ (``size``: ``large``, e.g. the MuQ-large-msd-iter release), 24 kHz, 30 s windows."""

    kind = "muq"
    family = "muq"
    options_class = MuQOptions
    checkpoint_prefix = "model."
    checkpoint_ignore = ("quantizer_", "preprocessor_", "linear.", "cls_token", "rvq.", "recon_proj.")

    def __init__(self, options: MuQOptions) -> None:
        super().__init__(options)
        release = self.release_config(options.weights)
        if options.stats is None and "stat" in release:
            self.use_stats(*stats_from_mapping(release["stat"], f"backbone {self.kind}: {options.weights}"))
        else:
            self.use_stats(*read_stats(options.stats or "msd", self.spec["stats"], f"backbone {self.kind}"))

    @staticmethod
    def release_config(weights: str | os.PathLike[str] | None) -> dict:
        """The release's ``config.json`` beside the weights, or ``{}`` when there is none."""
        if weights is None or not (Path(weights) / "config.json").is_file():
            return {}
        return json.loads((Path(weights) / "config.json").read_text(encoding="utf-8"))

    def check_weights_config(self, weights: str | os.PathLike[str]) -> None:
        """Refuse a release whose width, depth, Conformer shape or front end differs from the built model."""
        release = self.release_config(weights)
        conformer = self.spec["conformer"]
        w2v2 = release.get("w2v2_config", {})
        pairs = [(key, conformer[target], release[key]) for key, target in RELEASE_KEYS.items() if key in release]
        pairs += [(key, conformer[key], w2v2[key]) for key in CONFORMER_SHAPE_KEYS if key in w2v2 and key in conformer]
        pairs += [(key, self.spec["mel"][key], release[key]) for key in ("hop_length", "n_mels") if key in release]
        pairs += [(key, self.spec[key], release[key]) for key in ("conv_dim",) if key in release]
        if "label_rate" in release:
            pairs += self.label_rate_pairs(release["label_rate"])
        for key, built, published in pairs:
            if built != published:
                raise ParameterError(
                    f"{self.kind} size={self.options.size!r} has {key}={built!r} ({self.spec['source']}) but "
                    f"{Path(weights) / 'config.json'} has {key}={published!r}"
                )

    def label_rate_pairs(self, label_rate: Any) -> list[tuple[str, Any, Any]]:
        """The built model's frame rate and conv time strides beside those the release's ``label_rate`` implies."""
        strides = [block.conv1.stride[1] for block in self.model.conv.conv]
        frame_rate = self.sample_rate / self.spec["mel"]["hop_length"] / math.prod(strides)
        published_strides = STRIDES_BY_FOLD.get(MEL_FRAMES_PER_SECOND // label_rate) if label_rate > 0 else None
        return [("label_rate", frame_rate, label_rate), ("conv time strides", strides, published_strides)]
