"""The tiny MusiCNN of the backbone tests: the published layer structure at a few channels, 0.384-s patches."""

from __future__ import annotations

from audiorec.backbones.musicnn_model import MusiCNNArchitecture

TINY = MusiCNNArchitecture(
    n_mels=96,
    patch_frames=24,  # 0.384 s
    timbral_filters=4,
    timbral_widths=(38, 67),
    temporal_filters=3,
    temporal_lengths=(8, 4, 2),
    midend_filters=5,
    midend_layers=3,
    backend_units=7,
    n_classes=3,
)
