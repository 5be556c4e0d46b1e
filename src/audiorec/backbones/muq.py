"""MuQ: MusicFM's architecture trained with Mel-RVQ targets, loaded without the ``muq`` package.

``muq`` 0.1.0 does not import under transformers 5, but its encoder is exactly
:class:`audiorec.backbones.musicfm.MelConformer`: 128-band log-mel, two residual conv blocks, a 12-layer
rotary Conformer whose config the release embeds (``w2v2_config``). A release directory (``config.json``
and ``model.safetensors``, as on the hub) carries its own normalisation statistics (``stat``), which are
used unless ``stats`` says otherwise; the shipped config's architecture is checked against it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
        """Refuse a release whose width, depth or Conformer shape differs from the shipped config."""
        release = self.release_config(weights)
        conformer = self.spec["conformer"]
        w2v2 = release.get("w2v2_config", {})
        pairs = [(key, conformer[target], release[key]) for key, target in RELEASE_KEYS.items() if key in release]
        pairs += [(key, conformer[key], w2v2[key]) for key in CONFORMER_SHAPE_KEYS if key in w2v2 and key in conformer]
        for key, shipped, published in pairs:
            if shipped != published:
                raise ParameterError(
                    f"{self.kind} size={self.options.size!r} has {key}={shipped!r} ({self.spec['source']}) but "
                    f"{Path(weights) / 'config.json'} has {key}={published!r}"
                )
