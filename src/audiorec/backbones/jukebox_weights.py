"""Jukebox's published checkpoints: read them safely, check them strictly, convert them once to safetensors.

OpenAI published the 5B model as pickled training checkpoints, a dict whose ``"model"`` entry is the state
dict (keys possibly behind a ``module.`` prefix of a distributed wrapper): ``vqvae.pth.tar`` (all three
VQ-VAE levels, encoders and decoders) and ``prior_level_2.pth.tar`` (the top-level prior, 72 blocks, ~10 GB).
The representation needs a fraction of that: the top level's encoder and codebook, the prior's embeddings,
its label conditioner and its first ``kept_blocks`` blocks. The first load reads both pickles (as tensors
only: ``weights_only``), checks them against the model and writes exactly the needed tensors to one
safetensors file, which every later load reads instead.

Strict means: every key the model needs is present with its exact shape, and a key the model does not use is
allowed only when it belongs to a part that is knowingly left out (:func:`unused_prefixes`); anything else
is an error that names the key, so a checkpoint of another architecture never loads silently.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audiorec.backbones.base import file_sha256
from audiorec.errors import ParameterError
from audiorec.storage.atomic import atomic_path

log = logging.getLogger(__name__)

PUBLISHED_FILES = ("vqvae.pth.tar", "prior_level_2.pth.tar")
"""The release's file names (``jukebox/models/5b/`` of OpenAI's model store)."""

WRAPPER_PREFIX = "module."
"""Prefix of a state dict saved from a distributed-data-parallel wrapper."""


def converted_name(spec: dict[str, Any]) -> str:
    """File name of the conversion, which says how many prior blocks it holds."""
    return f"jukebox-top-{spec['prior']['kept_blocks']}-blocks.safetensors"


def unused_prefixes(spec: dict[str, Any]) -> tuple[str, ...]:
    """Key prefixes of the published checkpoints that the representation knowingly does not load.

    The prior's blocks past ``kept_blocks`` and its output layer ``x_out``; the VQ-VAE's lower levels and
    all its decoders.
    """
    top = len(spec["vqvae"]["downs_t"]) - 1
    prior = spec["prior"]
    blocks = tuple(f"prior.transformer._attn_mods.{i}." for i in range(prior["kept_blocks"], prior["depth"]))
    lower = tuple(f"{part}.{level}." for level in range(top) for part in ("encoders", "bottleneck.level_blocks"))
    return (*blocks, "prior.x_out.", *lower, "decoders.")


def read_published(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of one published checkpoint, read as tensors only, without a ``module.`` prefix."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ParameterError(
            f"{path} pickles Python objects besides tensors, which are not loaded (they could run code). Re-save "
            f"its state dict once where you trust the file: torch.save({{'model': torch.load('{path}', "
            f"weights_only=False)['model']}}, '{path.name}')"
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ParameterError(f"{path} is not a Jukebox checkpoint: it has no 'model' state dict")
    return {key.removeprefix(WRAPPER_PREFIX): value for key, value in checkpoint["model"].items()}


def check_state(model: nn.Module, state: dict[str, torch.Tensor], source: str, unused: tuple[str, ...]) -> None:
    """Raise, naming the keys, unless ``state`` has every key of ``model`` with its shape and nothing unknown."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unknown = sorted(key for key in state if key not in expected and not key.startswith(unused))
    misshaped = sorted(
        f"{key} {tuple(state[key].shape)} (model: {tuple(value.shape)})"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    )
    problems = [
        f"{label} {keys[:10]} ({len(keys)} in all)"
        for label, keys in (("missing keys", missing), ("unknown keys", unknown), ("misshaped keys", misshaped))
        if keys
    ]
    if problems:
        raise ParameterError(f"weights {source} do not match the Jukebox model: " + "; ".join(problems))


def convert_published(model: nn.Module, folder: Path, target: Path, spec: dict[str, Any]) -> None:
    """Check the published checkpoints in ``folder`` against ``model`` and write the tensors it needs to ``target``.

    The tensors keep their stored precision (the release keeps the prior's dense weights in float16).
    """
    from safetensors.torch import save_file

    state: dict[str, torch.Tensor] = {}
    for name in PUBLISHED_FILES:
        log.info("reading %s", folder / name)
        state.update(read_published(folder / name))
    check_state(model, state, str(folder), unused_prefixes(spec))
    needed = {key: state[key].contiguous() for key in model.state_dict()}
    try:
        with atomic_path(target) as temporary:
            save_file(needed, str(temporary), metadata={"source": ", ".join(PUBLISHED_FILES)})
    except OSError as error:
        raise ParameterError(
            f"cannot write the converted Jukebox weights to {target} ({error}); give the backbone option "
            "'converted' a writable path"
        ) from error
    log.info("wrote %s (%d tensors)", target, len(needed))


def load_jukebox_weights(
    model: nn.Module, weights: str | os.PathLike[str], spec: dict[str, Any], converted: str | None = None
) -> str:
    """Strictly load ``weights`` into ``model`` and return the sha256 of the safetensors file read.

    ``weights`` is a converted ``.safetensors`` file, or the folder of the published checkpoints; those are
    converted to ``converted`` (default: :func:`converted_name` in that folder) unless that file exists.
    """
    from safetensors.torch import load_file

    path = Path(weights)
    if path.is_dir():
        missing = [name for name in PUBLISHED_FILES if not (path / name).is_file()]
        target = Path(converted) if converted else path / converted_name(spec)
        if not target.is_file():
            if missing:
                raise ParameterError(f"Jukebox weights folder {path} lacks {missing} (and holds no {target.name})")
            convert_published(model, path, target, spec)
        path = target
    elif path.suffix != ".safetensors" or not path.is_file():
        raise ParameterError(
            f"Jukebox weights {path} must be the folder holding {list(PUBLISHED_FILES)} or a converted .safetensors"
        )
    state = load_file(str(path))
    check_state(model, state, str(path), ())
    model.load_state_dict(state)
    return file_sha256(path)
