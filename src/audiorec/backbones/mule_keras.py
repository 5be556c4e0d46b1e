"""Read MULE's released ``model.keras`` into :class:`~audiorec.backbones.mule_model.SFNFNet`, without TensorFlow.

The release (``supporting_data/model/model.keras``, written by tf.keras 2.13) is a zip of ``config.json`` (the
functional graph) and ``model.weights.h5``. In the h5 every layer with weights sits under
``_layer_checkpoint_dependencies/<class>_<n>/vars/<i>``, where ``<class>_<n>`` counts the layers of one class
in the graph's layer order, each layer with weights counted twice (Keras walks a mapping that lists it under
two keys, and the second visit only advances the counter). A ``WeightStandardization`` holds the raw kernel
(height, width, in, out) and the gain, its wrapped ``Conv2D`` the bias (``.../layer/vars/0``); a ``Dense`` its
kernel (in, out) and bias; a learnable ``ScalarMultiply`` its scalar.

Which convolution or dense layer is which comes from the names the original gave them in creation order
(``weight_standardization_<k>``, ``dense_<k>``), matched to :meth:`SFNFNet.creation_order`. A skip gain's
``ScalarMultiply`` has no such name (its config drops it), so its block is found through the graph: the
nearest weight-standardised convolution upstream of it is the block's last residual convolution. Every
tensor's shape is checked, and the output layer says whether the embedding is taken after the scaled
activation (the original's ``Activation`` after ``Concatenate``) or before it.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiorec.backbones.mule_model import SFNFNet
from audiorec.errors import ParameterError

PREFIXES = ("_layer_checkpoint_dependencies", "layers")
WEIGHTED = {"WeightStandardization", "Dense"}
ACTIVATIONS = {"_scaled_gelu_activation": "gelu", "_scaled_relu_activation": "relu"}


def _snake(name: str) -> str:
    """Keras's ``to_snake_case`` of a class name (``WeightStandardization`` → ``weight_standardization``)."""
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)).lower()


def _suffix(name: str) -> int:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def _layer_name(layer: dict[str, Any]) -> str:
    return str(layer.get("name") or layer["config"]["name"])


def _inbound(layer: dict[str, Any]) -> list[str]:
    """Every layer name an inbound node refers to, kwargs included (a TF op's second operand sits there)."""
    names: list[str] = []

    def scan(item: Any) -> None:
        if isinstance(item, list) and len(item) >= 3 and isinstance(item[0], str) and isinstance(item[1], int):
            names.append(item[0])
            if len(item) > 3:
                scan(item[3])
        elif isinstance(item, list):
            for sub in item:
                scan(sub)
        elif isinstance(item, dict):
            for sub in item.values():
                scan(sub)

    scan(layer.get("inbound_nodes", []))
    return names


def _has_weights(layer: dict[str, Any]) -> bool:
    if layer["class_name"] in WEIGHTED:
        return True
    return layer["class_name"] == "ScalarMultiply" and bool(layer["config"].get("learnable"))


class KerasFile:
    """The graph and weights of a ``.keras`` file (``path``: the zip, or a folder holding its two members)."""

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        try:
            if self.path.is_dir():
                config = (self.path / "config.json").read_bytes()
                weights: Any = self.path / "model.weights.h5"
            else:
                # The member in memory: h5py seeks back and forth, which a zip member stream does by re-reading.
                with zipfile.ZipFile(self.path) as archive:
                    config = archive.read("config.json")
                    weights = io.BytesIO(archive.read("model.weights.h5"))
            with h5py.File(weights, "r") as h5:
                self.weights = self._read(h5)
            self.config = json.loads(config)
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
            raise ParameterError(f"mule weights {self.path}: not a readable .keras model ({error})") from error

    @staticmethod
    def _read(h5: Any) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}

        def visit(name: str, obj: Any) -> None:
            if hasattr(obj, "shape"):
                out[name] = np.asarray(obj[()], dtype=np.float32)

        h5.visititems(visit)
        return out

    @property
    def layers(self) -> list[dict[str, Any]]:
        return self.config["config"]["layers"]

    def group_names(self) -> dict[str, str]:
        """Layer name → its group in the h5, by Keras's counting (module docstring)."""
        counters: dict[str, int] = {}
        groups = {}
        for layer in self.layers:
            base = _snake(layer["class_name"])
            index = counters.get(base, -1) + 1
            counters[base] = index + (1 if _has_weights(layer) else 0)
            groups[_layer_name(layer)] = base if index == 0 else f"{base}_{index}"
        return groups

    def activation(self) -> tuple[str, bool]:
        """The scaled activation the graph uses and whether the output layer applies it to the embedding."""
        names = {
            layer["config"]["activation"]["config"]
            if isinstance(layer["config"]["activation"], dict)
            else layer["config"]["activation"]
            for layer in self.layers
            if layer["class_name"] == "Activation"
        }
        kinds = {ACTIVATIONS.get(str(name)) for name in names}
        if len(kinds) != 1 or None in kinds:
            raise ParameterError(f"mule weights {self.path}: unexpected activations {sorted(map(str, names))}")
        output = self.config["config"]["output_layers"][0][0]
        by_name = {_layer_name(layer): layer for layer in self.layers}
        output_class = by_name[output]["class_name"]
        if output_class not in ("Activation", "Concatenate"):
            raise ParameterError(
                f"mule weights {self.path}: the model's output is a {output_class} layer, not the embedding "
                "(Concatenate of the pooled paths, or the Activation after it)"
            )
        return kinds.pop(), output_class == "Activation"


def state_dict_from_keras(keras: KerasFile, model: SFNFNet) -> dict[str, torch.Tensor]:
    """The port's state dict from a released (or original-code) ``.keras`` file; see the module docstring.

    Raises
    ------
    ParameterError
        Naming the file and the problem: another number of convolutions, dense layers or skip gains than the
        architecture has, a tensor of another shape, a layer the weights file lacks.
    """
    where = f"mule weights {keras.path}"
    groups = keras.group_names()
    prefix = next((p for p in PREFIXES if any(k.startswith(p + "/") for k in keras.weights)), None)
    if prefix is None:
        raise ParameterError(f"{where}: no layer weights under {list(PREFIXES)} in model.weights.h5")

    def tensor(layer: str, path: str) -> np.ndarray:
        key = f"{prefix}/{groups[layer]}/{path}"
        if key not in keras.weights:
            raise ParameterError(f"{where}: model.weights.h5 lacks {key} (layer {layer})")
        return keras.weights[key]

    by_class: dict[str, list[str]] = {}
    for layer in keras.layers:
        by_class.setdefault(layer["class_name"], []).append(_layer_name(layer))
    convs, dense, blocks = model.creation_order()
    conv_names = sorted(by_class.get("WeightStandardization", []), key=_suffix)
    dense_names = sorted(by_class.get("Dense", []), key=_suffix)
    if len(conv_names) != len(convs) or len(dense_names) != len(dense):
        raise ParameterError(
            f"{where}: {len(conv_names)} convolutions and {len(dense_names)} dense layers, but the architecture has "
            f"{len(convs)} and {len(dense)} (another size of the network?)"
        )
    names = {id(module): name for name, module in model.named_modules() if name}
    state: dict[str, np.ndarray] = {}
    for module, layer in zip(convs, conv_names, strict=True):
        state[f"{names[id(module)]}.weight"] = tensor(layer, "vars/0").transpose(3, 2, 0, 1)
        state[f"{names[id(module)]}.gain"] = tensor(layer, "vars/1")
        state[f"{names[id(module)]}.bias"] = tensor(layer, "layer/vars/0")
    for module, layer in zip(dense, dense_names, strict=True):
        state[f"{names[id(module)]}.weight"] = tensor(layer, "vars/0").T
        state[f"{names[id(module)]}.bias"] = tensor(layer, "vars/1")
    last_conv = {conv_names[convs.index(block.conv3)]: block for block in blocks}
    by_name = {_layer_name(layer): layer for layer in keras.layers}
    gains = [layer for layer in keras.layers if layer["class_name"] == "ScalarMultiply" and _has_weights(layer)]
    found = set()
    for layer in gains:
        block = last_conv.get(_upstream_conv(_layer_name(layer), by_name))
        if block is None or id(block) in found:
            raise ParameterError(f"{where}: cannot place skip gain {_layer_name(layer)} in a block of the network")
        found.add(id(block))
        state[f"{names[id(block)]}.skip_gain"] = tensor(_layer_name(layer), "vars/0").reshape(())
    if len(found) != len(blocks):
        raise ParameterError(f"{where}: {len(found)} skip gains for {len(blocks)} blocks")
    expected = model.state_dict()
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ParameterError(
                f"{where}: {key} has shape {tuple(value.shape)}, the architecture {tuple(expected[key].shape)}"
            )
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()}


def _upstream_conv(start: str, by_name: dict[str, dict[str, Any]]) -> str | None:
    """The nearest ``WeightStandardization`` layer upstream of ``start`` in the graph (breadth first)."""
    queue, seen = deque(_inbound(by_name[start])), {start}
    while queue:
        name = queue.popleft()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        if by_name[name]["class_name"] == "WeightStandardization":
            return name
        queue.extend(_inbound(by_name[name]))
    return None
