"""Local pretrained weights: find the files, read them, adapt their key spelling, load strictly, digest.

A ``weights`` option is either one checkpoint file (``.safetensors``, ``.pt``, ``.bin``, ``.ckpt``) or a
Hugging Face-format directory (``model.safetensors``, ``pytorch_model.bin`` or their sharded ``*.index.json``
forms). Only local files are read: no hub client is involved, so loading cannot touch the network.

Published checkpoints were saved by older libraries. Their weight-normalised convolutions
(``weight_g``/``weight_v``) load into torch's parametrized ones through torch's own compatibility hook;
rotary-frequency buffers (``inv_freq``), constants derived from the config that some versions do not save,
are filled in from the module. Everything else must match exactly (see
:func:`audiorec.backbones.torch_base.load_strict`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from audiorec.backbones.base import file_sha256
from audiorec.backbones.torch_base import load_state_dict_file, load_strict
from audiorec.errors import ParameterError

WEIGHT_FILE_NAMES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""Weight files of a Hugging Face-format directory, in order of preference."""

DERIVED_BUFFERS = ("inv_freq",)
"""Buffer names that are computed from the config, so a checkpoint may omit them."""


def forbid_hub_access() -> None:
    """Put the Hugging Face hub client in offline mode for this process, as ``HF_HUB_OFFLINE=1`` does.

    Weights are only ever read from local paths; this turns any hub request that a library code path might
    still attempt into an immediate error instead of a download.
    """
    import huggingface_hub.constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    huggingface_hub.constants.HF_HUB_OFFLINE = True


def weight_files(path: str | os.PathLike[str]) -> list[Path]:
    """The checkpoint file(s) that ``path`` (a file or a Hugging Face-format directory) stands for."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ParameterError(f"weights {path} does not exist (give a checkpoint file or a model directory)")
    for name in WEIGHT_FILE_NAMES:
        candidate = path / name
        if not candidate.is_file():
            continue
        if name.endswith(".index.json"):
            weight_map = json.loads(candidate.read_text(encoding="utf-8")).get("weight_map", {})
            return [path / shard for shard in dict.fromkeys(weight_map.values())]
        return [candidate]
    raise ParameterError(f"weights directory {path} holds none of {list(WEIGHT_FILE_NAMES)}")


def weights_digest(files: Sequence[Path]) -> str:
    """sha256 of one weights file, or of the per-shard digests of a sharded checkpoint."""
    if len(files) == 1:
        return file_sha256(files[0])
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def read_checkpoint(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Merge the state dicts of ``files``; a pickle that is not plain tensors is refused, with a way out."""
    state: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            state.update(load_state_dict_file(path))
        except pickle.UnpicklingError as error:
            raise ParameterError(
                f"weights {path} pickle Python objects besides tensors, which are not loaded (they could run "
                "code). Re-save its state dict once where you trust the file: "
                f"torch.save(torch.load('{path}', weights_only=False)['state_dict'], 'weights.pt')"
            ) from error
    return state


def adapt_keys(state: dict[str, torch.Tensor], module: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """Strip ``prefix`` from every key and fill in the derived buffers that the checkpoint omits."""
    adapted = {key.removeprefix(prefix): value for key, value in state.items()}
    for key, value in module.state_dict().items():
        if key.rsplit(".", 1)[-1] in DERIVED_BUFFERS and key not in adapted:
            adapted[key] = value
    return adapted


def load_pretrained(
    module: nn.Module, path: str | os.PathLike[str], prefix: str = "", ignore: Sequence[str] = ()
) -> str:
    """Strictly load local weights into ``module`` and return their sha256.

    ``prefix`` is stripped from every key (e.g. ``model.`` of a Lightning wrapper); ``ignore`` lists key
    prefixes (after stripping) of training-only parts that the checkpoint holds and the encoder does not
    (prediction heads, quantisers, decoders).
    """
    files = weight_files(path)
    state = adapt_keys(read_checkpoint(files), module, prefix)
    load_strict(module, state, str(path), ignore)
    return weights_digest(files)
