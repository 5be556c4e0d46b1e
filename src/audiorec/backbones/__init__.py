"""Backbone registry: config ``kind`` → backbone class, imported only when chosen.

Neural backbones pull in heavy dependencies (torch, transformers); importing them lazily keeps the MFCC
path and the workflow's DAG construction fast.
"""

from __future__ import annotations

from typing import Any

from audiorec.backbones.base import Backbone, ClipPolicy, file_sha256, select_layer
from audiorec.registry import resolve

BACKBONE_CLASSES: dict[str, str] = {
    "mfcc": "audiorec.backbones.mfcc:MFCCBackbone",
    "musicnn": "audiorec.backbones.musicnn:MusiCNNBackbone",
    "mert": "audiorec.backbones.hf:MERTBackbone",
    "music2vec": "audiorec.backbones.hf:Music2VecBackbone",
    "musicfm": "audiorec.backbones.musicfm:MusicFMBackbone",
    "muq": "audiorec.backbones.muq:MuQBackbone",
    "encodecmae": "audiorec.backbones.encodecmae:EncodecMAEBackbone",
    "ssl": "audiorec.backbones.ssl:SSLBackbone",
}
"""Registry of backbone kinds; adding a backbone is one module plus one line here.

Neural backbones derive from :class:`audiorec.backbones.torch_base.TorchBackbone` (imported lazily: torch).
"""


def backbone_class(kind: str) -> type[Backbone]:
    """Import and return the class registered for ``kind``."""
    return resolve(BACKBONE_CLASSES, kind, "backbone kind")


def build_backbone(kind: str, options: dict[str, Any] | None = None) -> Backbone:
    """Instantiate the backbone ``kind`` from its config options."""
    return backbone_class(kind).from_options(dict(options or {}))


__all__ = [
    "BACKBONE_CLASSES",
    "Backbone",
    "ClipPolicy",
    "backbone_class",
    "build_backbone",
    "file_sha256",
    "select_layer",
]
