"""Backbone registry: config ``kind`` → traits, options and implementation, imported only when chosen.

Neural backbones pull in heavy dependencies (torch, transformers); the registry names them as strings so that
the MFCC path and the workflow's DAG construction import none of them (see :mod:`audiorec.common.registry`).
Adding a backbone is one module, its options dataclass in :mod:`audiorec.backbones.options` and one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from audiorec.backbones.base import Backbone, ClipPolicy, file_sha256, select_layer
from audiorec.common.registry import PluginHooks, Registered, Registry
from audiorec.errors import ParameterError


@dataclass(frozen=True)
class BackboneTraits:
    """What the workflow needs to know of a backbone kind to schedule it.

    Attributes
    ----------
    uses_gpu
        Extraction benefits from a GPU (the workflow asks the scheduler for one).
    trained_by_workflow
        The workflow trains the backbone's weights itself (rule ``ssl_train``) before extracting with them.
    precomputed
        The vectors are read from a file, not computed from audio: a feature the dataset ships (option
        ``feature``) or the user's own vectors (option ``path``).
    """

    uses_gpu: bool = False
    trained_by_workflow: bool = False
    precomputed: bool = False


_OPTIONS = "audiorec.backbones.options"
_PRETRAINED = BackboneTraits(uses_gpu=True)


def _plugin_traits(cls: type) -> BackboneTraits:
    """The traits a plugin backbone class declares: ``uses_gpu`` (a class attribute, False when absent)."""
    return BackboneTraits(uses_gpu=bool(getattr(cls, "uses_gpu", False)))


def _prepare_plugin(cls: type, kind: str, traits: BackboneTraits) -> None:
    """Refuse a plugin class that is no :class:`Backbone`; name it by its config ``kind`` if it names no kind."""
    if not (isinstance(cls, type) and issubclass(cls, Backbone)):
        raise ParameterError(f"backbone kind {kind!r}: {cls!r} is not a subclass of audiorec.backbones.Backbone")
    if "kind" not in vars(cls):  # its own name, not one inherited from the class it extends
        cls.kind = kind


BACKBONES: Registry[BackboneTraits] = Registry(
    "backbone",
    {
        "mfcc": Registered("audiorec.backbones.mfcc:MFCCBackbone", f"{_OPTIONS}:MFCCConfig", BackboneTraits()),
        "musicnn": Registered("audiorec.backbones.musicnn:MusiCNNBackbone", f"{_OPTIONS}:MusiCNNConfig", _PRETRAINED),
        "mert": Registered("audiorec.backbones.hf:MERTBackbone", f"{_OPTIONS}:WaveformTransformerOptions", _PRETRAINED),
        "music2vec": Registered(
            "audiorec.backbones.hf:Music2VecBackbone", f"{_OPTIONS}:WaveformTransformerOptions", _PRETRAINED
        ),
        "musicfm": Registered("audiorec.backbones.musicfm:MusicFMBackbone", f"{_OPTIONS}:MusicFMOptions", _PRETRAINED),
        "muq": Registered("audiorec.backbones.muq:MuQBackbone", f"{_OPTIONS}:MuQOptions", _PRETRAINED),
        "muq_mulan": Registered(
            "audiorec.backbones.muq_mulan:MuQMuLanBackbone", f"{_OPTIONS}:MuQMuLanOptions", _PRETRAINED
        ),
        "encodecmae": Registered(
            "audiorec.backbones.encodecmae:EncodecMAEBackbone", f"{_OPTIONS}:PretrainedOptions", _PRETRAINED
        ),
        "jukebox": Registered("audiorec.backbones.jukebox:JukeboxBackbone", f"{_OPTIONS}:JukeboxOptions", _PRETRAINED),
        "mule": Registered("audiorec.backbones.mule:MuleBackbone", f"{_OPTIONS}:MuleOptions", _PRETRAINED),
        "ssl": Registered(
            "audiorec.backbones.ssl:SSLBackbone",
            "audiorec.ssl.config:SSLConfig",
            BackboneTraits(uses_gpu=True, trained_by_workflow=True),
        ),
        "hear": Registered("audiorec.backbones.hear:HearBackbone", f"{_OPTIONS}:HearOptions", _PRETRAINED),
        "precomputed": Registered(
            "audiorec.backbones.precomputed:PrecomputedBackbone",
            f"{_OPTIONS}:PrecomputedOptions",
            BackboneTraits(precomputed=True),
        ),
    },
    plugins=PluginHooks("audiorec.backbones", _plugin_traits, _prepare_plugin),
)
"""Every built-in backbone kind; a config's ``kind`` is one of these or a plugin (:mod:`audiorec.common.plugins`)."""


def backbone_class(kind: str) -> type[Backbone]:
    """Import and return the class registered for ``kind``."""
    return BACKBONES.load(kind)


def build_backbone(kind: str, options: dict[str, Any] | None = None) -> Backbone:
    """Instantiate the backbone ``kind`` from its config options."""
    return backbone_class(kind).from_options(dict(options or {}))


__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneTraits",
    "ClipPolicy",
    "backbone_class",
    "build_backbone",
    "file_sha256",
    "select_layer",
]
