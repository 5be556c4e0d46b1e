"""Shared machinery of neural backbones: windows, batched forward, pooling over real frames, strict loading.

A track is cut into non-overlapping windows of the model's clip length. How the last, shorter piece is
treated is the backbone's :meth:`TorchBackbone.windows`: fixed-input models (MusiCNN's patches) pad it with
silence when it holds at least ``min_last_window`` of a window (:func:`~audiorec.audio.windows.split_windows`); the
pretrained transformers keep it as it is (:func:`~audiorec.audio.windows.unpadded_windows`), so no frame of theirs
comes from padding.

Windows of one shape go through the model together, whatever tracks they come from, in the arithmetic of the
backbone's ``precision`` (:mod:`audiorec.backbones.precision`; IEEE float32 unless a subclass declares
otherwise). Each layer's frames are summed per track and divided by the track's frame count: the track vector
is the mean over every frame its audio produced, and windows of unequal length weigh by their frames.
"""

from __future__ import annotations

import contextlib
import os
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from audiorec.audio.windows import split_windows
from audiorec.backbones.base import Backbone, ClipPolicy, file_sha256
from audiorec.backbones.precision import DESCRIPTIONS, effective_precision, note_cpu_precision, precision_scope
from audiorec.common.devices import describe_device, resolve_device
from audiorec.errors import ParameterError


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors``, or a torch checkpoint (``.pt``, ``.bin``, ``.ckpt``).

    Checkpoints are read with ``weights_only=True``, so a file cannot execute code when loaded. A checkpoint
    that wraps its weights under ``state_dict`` or ``model`` is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ParameterError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str, ignore: Sequence[str] = ()) -> None:
    """Load ``state`` into ``module`` and fail, naming the keys, on anything missing or unexpected.

    ``ignore`` lists key prefixes that a checkpoint may carry without the module needing them (optimizer
    slots, training-only heads); everything else must match exactly, so a wrong config never loads silently.
    """
    state = {k: v for k, v in state.items() if not any(k.startswith(prefix) for prefix in ignore)}
    result = module.load_state_dict(state, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f"missing keys {sorted(result.missing_keys)[:10]} ({len(result.missing_keys)} in all)")
    if result.unexpected_keys:
        problems.append(f"unexpected keys {sorted(result.unexpected_keys)[:10]} ({len(result.unexpected_keys)} in all)")
    if problems:
        raise ParameterError(f"weights {source} do not match {type(module).__name__}: " + "; ".join(problems))


class TorchBackbone(Backbone):
    """Base class of neural backbones.

    Subclasses build ``self.model`` (an ``nn.Module``), set ``sample_rate``, ``clip_seconds`` and
    ``layer_dims``, and implement :meth:`forward_layers`.
    """

    autocast_dtype: ClassVar[torch.dtype | None] = None
    """The autocast dtype a subclass declares as its default precision (None: float32). Backbones with a
    ``precision`` option take it from there; this keeps subclasses written before the option working."""
    reduced_precision_on_cpu: bool = False
    """Run bf16 and fp16 on the CPU too (:func:`~audiorec.backbones.precision.effective_precision`): for tests and
    drift measurements without a GPU; extraction leaves it off, as the CPU has no fast half arithmetic."""

    model: nn.Module
    clip_seconds: float
    min_last_window: float = 0.5
    """Fraction of a window the last piece needs to be kept by :func:`split_windows` (padded windowing only)."""
    max_windows_per_forward: int = 64

    def __init__(
        self, device: str | None = None, max_duration_s: float | None = None, precision: str | None = None
    ) -> None:
        """``max_duration_s`` crops tracks before windowing (the first paper used 30 s clips); ``precision``
        (:mod:`audiorec.backbones.precision`) None takes the class's :meth:`declared_precision`."""
        self.device = resolve_device(device)
        self.clip_policy = ClipPolicy(max_duration_s=max_duration_s)
        self._weights_sha256: str | None = None
        self.requested_precision = precision or self.declared_precision()
        note_cpu_precision(getattr(self, "kind", type(self).__name__), self.requested_precision, self.precision_used)

    @classmethod
    def declared_precision(cls) -> str:
        """The class's default precision: float32, or the reduced one its ``autocast_dtype`` declares."""
        names = {None: "float32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        if cls.autocast_dtype not in names:
            raise ParameterError(f"{cls.__name__}.autocast_dtype must be None, bfloat16 or float16")
        return names[cls.autocast_dtype]

    @property
    def precision_used(self) -> str:
        """The precision the forward pass computes in on this device (float32 on a CPU, see the precision module)."""
        return effective_precision(self.requested_precision, self.device, allow_cpu=self.reduced_precision_on_cpu)

    def precision_context(self) -> contextlib.AbstractContextManager:
        """The arithmetic of :attr:`precision_used` around a forward pass (backbones with a recipe override it)."""
        return precision_scope(self.precision_used, self.device)

    @property
    def weights_sha256(self) -> str | None:
        return self._weights_sha256

    @property
    def precision(self) -> str:
        """The arithmetic actually used, recorded in the embeddings' metadata (the request is recorded beside it)."""
        return DESCRIPTIONS[self.precision_used]

    @property
    def device_description(self) -> str:
        return describe_device(self.device)

    def load_weights(self, path: str | os.PathLike[str], ignore: Sequence[str] = ()) -> None:
        """Strictly load a local weights file and remember its sha256."""
        load_strict(self.model, load_state_dict_file(path), str(path), ignore)
        self._weights_sha256 = file_sha256(path)

    def prepare(self) -> None:
        """Move the model to its device in inference mode; called once after construction and loading."""
        self.model.to(self.device).eval().requires_grad_(False)

    @abstractmethod
    def forward_layers(self, clips: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer frame features ``(windows, frames, dim)`` for a batch of clips ``(windows, samples)``."""

    def windows(self, signal: np.ndarray) -> Sequence[np.ndarray]:
        """Cut a signal into non-overlapping model inputs, padding the last (see module docstring).

        Backbones whose model reads features (e.g. log-mel patches) override this to return
        ``(n_windows, *input_shape)``; backbones that run the last piece unpadded return windows of two
        lengths. Everything after it takes any sequence of arrays.
        """
        return split_windows(signal, round(self.clip_seconds * self.sample_rate), self.min_last_window)

    def embed_batch(self, waveforms: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        by_shape: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for owner, waveform in enumerate(waveforms):
            for window in self.windows(np.asarray(waveform, dtype=np.float32)):
                by_shape.setdefault(window.shape, []).append((owner, window))
        sums = [torch.zeros(len(waveforms), dim, dtype=torch.float64) for dim in self.layer_dims.values()]
        frames = torch.zeros(len(waveforms), dtype=torch.float64)
        with torch.inference_mode(), self.precision_context():
            for members in by_shape.values():
                owners = torch.tensor([owner for owner, _ in members])
                stacked = torch.from_numpy(np.stack([window for _, window in members]))
                for start in range(0, len(members), self.max_windows_per_forward):
                    chunk = stacked[start : start + self.max_windows_per_forward]
                    chunk = chunk.pin_memory() if self.device.type == "cuda" else chunk
                    layers = self.forward_layers(chunk.to(self.device, non_blocking=True))
                    if len(layers) != len(self.layers):
                        name = type(self).__name__
                        raise RuntimeError(f"{name} returned {len(layers)} layers but declares {len(self.layers)}")
                    chunk_owners = owners[start : start + len(chunk)]
                    for total, layer in zip(sums, layers, strict=True):
                        total.index_add_(0, chunk_owners, layer.float().sum(dim=1).double().cpu())
                    frames.index_add_(
                        0, chunk_owners, torch.full((len(chunk),), layers[0].shape[1], dtype=torch.float64)
                    )
        means = [(total / frames.clamp(min=1).unsqueeze(1)).float().numpy() for total in sums]
        return dict(zip(self.layers, means, strict=True))
