"""Where tensors run: detected once, overridable from config (``device: cpu`` / ``cuda`` / ``cuda:1``)."""

from __future__ import annotations

import functools

import torch

from audiorec.errors import ParameterError


@functools.cache
def default_device() -> torch.device:
    """The first CUDA device when one is visible, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(name: str | None) -> torch.device:
    """Turn a config value into a device; ``None`` or ``"auto"`` picks :func:`default_device`."""
    if name in (None, "auto"):
        return default_device()
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {name!r} requested but torch sees no CUDA device")
    return device


def describe_device(device: torch.device) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H200)``: what table metadata and logs record of where a computation ran."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
