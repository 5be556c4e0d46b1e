"""Any audio model that follows the HEAR 2021 API, run as a backbone without changing its code.

The HEAR benchmark (Turian et al., 2022) fixed a three-function module interface: ``load_model``,
``get_scene_embeddings`` and ``get_timestamp_embeddings``. Dozens of published models ship such a module, so
wrapping the interface once lets each of them enter the recommendation experiments by naming the module in the
config. The module decides its own front end and pooling; audiorec only decodes, resamples to the model's
``sample_rate``, crops, and keeps the one vector per track the API returns.
"""

from __future__ import annotations

import importlib
import numbers
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from audiorec.backbones.base import Backbone, ClipPolicy, file_sha256
from audiorec.backbones.options import HearOptions
from audiorec.common.config import dataclass_from_mapping
from audiorec.common.devices import describe_device, resolve_device
from audiorec.errors import ParameterError

API_FUNCTIONS = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")
"""The functions a HEAR 2021 module must define."""
MODEL_ATTRIBUTES = ("sample_rate", "scene_embedding_size", "timestamp_embedding_size")
"""The attributes a HEAR 2021 model must carry, each a positive integer."""
SIZE_ATTRIBUTE = {"scene": "scene_embedding_size", "timestamp_mean": "timestamp_embedding_size"}
"""The model attribute declaring the width of each kind of kept embedding."""


def import_hear_module(name: str) -> ModuleType:
    """Import ``name`` and check that it defines every HEAR API function, naming what is missing."""
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        raise ParameterError(f"backbone hear: cannot import module {name!r}: {error}") from error
    missing = [function for function in API_FUNCTIONS if not callable(getattr(module, function, None))]
    if missing:
        raise ParameterError(
            f"backbone hear: module {name!r} ({getattr(module, '__file__', None)}) does not follow the HEAR 2021 "
            f"API: it lacks {missing}"
        )
    return module


def model_sizes(model: Any, module_name: str) -> dict[str, int]:
    """The model's ``sample_rate`` and embedding sizes, refusing any that is missing or not a positive integer."""
    sizes = {}
    for attribute in MODEL_ATTRIBUTES:
        value = getattr(model, attribute, None)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ParameterError(
                f"backbone hear: the model of module {module_name!r} must have a positive integer {attribute} "
                f"(HEAR 2021 API), got {value!r}"
            )
        sizes[attribute] = int(value)
    return sizes


class HearBackbone(Backbone):
    """A HEAR 2021 module's model; one layer, named after the kept embedding (``scene`` or ``timestamp_mean``).

    Each track is embedded in its own call: a HEAR batch holds sounds of one length, and zero-padding a short
    track to its batch's longest would change the short track's embedding (silence is audio to these models).
    """

    kind = "hear"

    def __init__(self, options: HearOptions) -> None:
        self.options = options
        self.module = import_hear_module(options.module)
        self.device = resolve_device(options.device)
        self._weights_sha256: str | None = None
        if options.weights:
            if not Path(options.weights).is_file():
                raise ParameterError(f"backbone hear option weights: {options.weights} is not a file")
            self._weights_sha256 = file_sha256(options.weights)
            self.model = self.module.load_model(options.weights)
        else:
            self.model = self.module.load_model()
        if isinstance(self.model, nn.Module):
            self.model.to(self.device).eval().requires_grad_(False)
        sizes = model_sizes(self.model, options.module)
        self.sample_rate = sizes["sample_rate"]
        self.layer_dims = {options.embedding: sizes[SIZE_ATTRIBUTE[options.embedding]]}
        self.clip_policy = ClipPolicy(max_duration_s=options.max_duration_s)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> HearBackbone:
        return cls(dataclass_from_mapping(HearOptions, options, "backbone hear"))

    @property
    def weights_sha256(self) -> str | None:
        return self._weights_sha256

    @property
    def device_description(self) -> str:
        return describe_device(self.device)

    @property
    def pooling(self) -> str:
        if self.options.embedding == "scene":
            return f"HEAR scene embedding of {self.options.module}"
        return f"mean over HEAR timestamp embeddings of {self.options.module}"

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        embed = self._scene if self.options.embedding == "scene" else self._timestamp_mean
        vectors = []
        with torch.no_grad():
            for waveform in waveforms:
                audio = torch.from_numpy(np.asarray(waveform, dtype=np.float32)).unsqueeze(0).to(self.device)
                vectors.append(embed(audio))
        dim = self.layer_dims[self.options.embedding]
        return {self.options.embedding: np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)}

    def _scene(self, audio: torch.Tensor) -> np.ndarray:
        """The scene embedding of one sound ``(1, samples)``."""
        output = torch.as_tensor(self.module.get_scene_embeddings(audio, self.model))
        self._check_shape(output, (1, self.layer_dims["scene"]), "get_scene_embeddings", audio)
        return output[0].float().cpu().numpy()

    def _timestamp_mean(self, audio: torch.Tensor) -> np.ndarray:
        """The mean of one sound's timestamp embeddings, accumulated in float64."""
        result = self.module.get_timestamp_embeddings(audio, self.model)
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise ParameterError(
                f"backbone hear: {self.options.module}.get_timestamp_embeddings must return (embeddings, "
                f"timestamps), got {type(result).__name__}"
            )
        output = torch.as_tensor(result[0])
        self._check_shape(output, (1, None, self.layer_dims["timestamp_mean"]), "get_timestamp_embeddings", audio)
        if output.shape[1] == 0:
            raise ParameterError(
                f"backbone hear: {self.options.module}.get_timestamp_embeddings returned no timestamp for a sound "
                f"of {audio.shape[1]} samples"
            )
        return output[0].cpu().double().mean(dim=0).float().numpy()

    def _check_shape(
        self, output: torch.Tensor, expected: tuple[int | None, ...], function: str, audio: torch.Tensor
    ) -> None:
        """Refuse an output whose shape differs from the model's declared size (``None``: any length)."""
        shape = tuple(output.shape)
        if len(shape) != len(expected) or any(
            want is not None and got != want for got, want in zip(shape, expected, strict=True)
        ):
            wanted = tuple("n" if want is None else want for want in expected)
            raise ParameterError(
                f"backbone hear: {self.options.module}.{function} returned shape {shape} for a sound of "
                f"{audio.shape[1]} samples, but the model declares {wanted}"
            )
