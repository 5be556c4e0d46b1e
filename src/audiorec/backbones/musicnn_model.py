"""A PyTorch port of musicnn (Pons & Serra, 2019) that loads the published TensorFlow checkpoints.

The network reads log-mel patches ``(batch, frames, mels)``:

- **front end** — batch norm on the input; "timbral" convolutions spanning 7 frames and a share of the mel
  axis (38 and 67 of 96 bands, time zero-padded by 3) and "temporal" convolutions spanning 128, 64 and 32
  frames of one band (TensorFlow's ``same`` padding); each conv → ReLU → batch norm → max over frequency;
  concatenated to 561 channels per frame;
- **mid end** — three ``Conv1d(kernel 7)`` layers of 64 channels, the 2nd and 3rd with residual sums, densely
  concatenated with the front end to 753 channels;
- **back end** — max and mean over time *interleaved per channel* (TensorFlow concatenates them on a trailing
  axis before flattening) to 1506, batch norm → dense 200 + ReLU → batch norm: the 200-d "penultimate" vector
  the first paper uses as the track embedding, then dense 50 = tag logits.

Every batch norm uses TensorFlow's epsilon, 1e-3. Reference: https://github.com/jordipons/musicnn
(``musicnn/models.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.backbones.tf_checkpoint import TFCheckpoint
from audiorec.errors import ParameterError

BN_EPS = 1e-3
"""Epsilon of ``tf.compat.v1.layers.batch_normalization``; torch's default (1e-5) would shift every output."""
TIMBRAL_FRAMES = 7
"""Time extent of the timbral kernels (time is zero-padded by 3 on each side, so frames are kept)."""
MIDEND_KERNEL = 7
OPTIMIZER_STATE = re.compile(r"(/Adam(_\d+)?$)|(^beta[12]_power$)")
"""Adam's slots and power accumulators: training state that the checkpoint carries and inference ignores."""


@dataclass(frozen=True)
class MusiCNNArchitecture:
    """Every size of the network; the defaults are the published ``MSD_musicnn`` and ``MTT_musicnn`` models.

    The published models derive their sizes from ``num_filt=1.6`` and 96 mel bands: 204 = int(1.6·128)
    timbral filters of widths 38 = int(0.4·96) and 67 = int(0.7·96), 51 = int(1.6·32) temporal filters.
    Tests build tiny networks of the same class by shrinking these.
    """

    n_mels: int = 96
    patch_frames: int = 187
    timbral_filters: int = 204
    timbral_widths: tuple[int, ...] = (38, 67)
    temporal_filters: int = 51
    temporal_lengths: tuple[int, ...] = (128, 64, 32)
    midend_filters: int = 64
    midend_layers: int = 3
    backend_units: int = 200
    n_classes: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "timbral_widths", tuple(self.timbral_widths))
        object.__setattr__(self, "temporal_lengths", tuple(self.temporal_lengths))
        for name in ("n_mels", "patch_frames", "timbral_filters", "temporal_filters", "midend_filters"):
            if getattr(self, name) <= 0:
                raise ParameterError(f"musicnn architecture {name} must be positive, got {getattr(self, name)}")
        for name in ("midend_layers", "backend_units", "n_classes"):
            if getattr(self, name) <= 0:
                raise ParameterError(f"musicnn architecture {name} must be positive, got {getattr(self, name)}")
        if not self.timbral_widths or not all(0 < w <= self.n_mels for w in self.timbral_widths):
            raise ParameterError(
                f"musicnn architecture timbral_widths must lie in 1..n_mels={self.n_mels}, got {self.timbral_widths}"
            )
        if not self.temporal_lengths or not all(length > 0 for length in self.temporal_lengths):
            raise ParameterError(f"musicnn architecture temporal_lengths must be positive, got {self.temporal_lengths}")

    @property
    def frontend_channels(self) -> int:
        """Channels per frame after the front end (561 in the published models)."""
        return self.timbral_filters * len(self.timbral_widths) + self.temporal_filters * len(self.temporal_lengths)

    @property
    def midend_channels(self) -> int:
        """Channels per frame after the dense mid end (753 in the published models)."""
        return self.frontend_channels + self.midend_filters * self.midend_layers


@dataclass
class MusiCNNOutput:
    """Activations of one forward pass over ``B`` patches of ``T`` frames.

    Attributes
    ----------
    timbral : (B, T, timbral_filters · n_widths) tensor
    temporal : (B, T, temporal_filters · n_lengths) tensor
    midend : list of (B, T, midend_filters) tensors
        Outputs of the mid-end layers after their residual sums (musicnn's ``cnn1``, ``cnn2``, ``cnn3``).
    mean_pool, max_pool : (B, midend_channels) tensors
        Mean and max over time of the densely concatenated front- and mid-end features.
    penultimate : (B, backend_units) tensor
        The embedding: batch-normalised ReLU of the first dense layer.
    logits : (B, n_classes) tensor
        Tag logits (the taggram is their sigmoid).
    """

    timbral: torch.Tensor
    temporal: torch.Tensor
    midend: list[torch.Tensor]
    mean_pool: torch.Tensor
    max_pool: torch.Tensor
    penultimate: torch.Tensor
    logits: torch.Tensor


class FrontEndBlock(nn.Module):
    """Conv2d over (time, mel) → ReLU → batch norm → max over the mel axis, giving ``(B, filters, T)``.

    In inference the pooling runs first: ReLU and an inference-mode batch norm are monotonic per channel
    (increasing where the norm's scale is positive, decreasing where it is negative), so the max over
    frequency of their output is the norm of the ReLU of the conv's max, or of its min, per channel. This is
    exact in floating point and spares two passes over the largest tensors of the network (~25 % of its CPU
    time).
    """

    def __init__(self, filters: int, kernel: tuple[int, int], time_padding: tuple[int, int]) -> None:
        super().__init__()
        self.time_padding = time_padding
        self.conv = nn.Conv2d(1, filters, kernel)
        self.norm = nn.BatchNorm2d(filters, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(F.pad(x, (0, 0, *self.time_padding)))
        if self.training:  # batch statistics need the full tensor
            return self.norm(torch.relu(z)).amax(dim=3)
        increasing = (self.norm.weight >= 0)[None, :, None]
        pooled = torch.where(increasing, z.amax(dim=3), z.amin(dim=3))
        return F.batch_norm(
            torch.relu(pooled),
            self.norm.running_mean,
            self.norm.running_var,
            self.norm.weight,
            self.norm.bias,
            training=False,
            eps=self.norm.eps,
        )


class MidEndBlock(nn.Module):
    """Conv1d over time (zero-padded to keep the length) → ReLU → batch norm."""

    def __init__(self, in_channels: int, filters: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, MIDEND_KERNEL, padding=MIDEND_KERNEL // 2)
        self.norm = nn.BatchNorm1d(filters, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.conv(x)))


def tf_same_padding(kernel: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding for stride 1: the extra frame of an even kernel goes after, not before."""
    before = (kernel - 1) // 2
    return before, kernel - 1 - before


class MusiCNN(nn.Module):
    """The musicnn network; its only argument is its :class:`MusiCNNArchitecture`."""

    def __init__(self, architecture: MusiCNNArchitecture) -> None:
        super().__init__()
        a = self.architecture = architecture
        self.input_norm = nn.BatchNorm2d(1, eps=BN_EPS)
        pad = TIMBRAL_FRAMES // 2
        self.timbral = nn.ModuleList(
            FrontEndBlock(a.timbral_filters, (TIMBRAL_FRAMES, width), (pad, pad)) for width in a.timbral_widths
        )
        self.temporal = nn.ModuleList(
            FrontEndBlock(a.temporal_filters, (length, 1), tf_same_padding(length)) for length in a.temporal_lengths
        )
        channels = [a.frontend_channels] + [a.midend_filters] * (a.midend_layers - 1)
        self.midend = nn.ModuleList(MidEndBlock(c, a.midend_filters) for c in channels)
        self.pool_norm = nn.BatchNorm1d(2 * a.midend_channels, eps=BN_EPS)
        self.dense = nn.Linear(2 * a.midend_channels, a.backend_units)
        self.dense_norm = nn.BatchNorm1d(a.backend_units, eps=BN_EPS)
        self.classifier = nn.Linear(a.backend_units, a.n_classes)

    def forward(self, log_mel: torch.Tensor) -> MusiCNNOutput:
        """Run the network on log-mel patches ``(B, frames, n_mels)``."""
        x = self.input_norm(log_mel.unsqueeze(1))
        timbral = torch.cat([block(x) for block in self.timbral], dim=1)
        temporal = torch.cat([block(x) for block in self.temporal], dim=1)
        features = [torch.cat([timbral, temporal], dim=1)]
        midend = []
        for index, block in enumerate(self.midend):
            out = block(features[-1] if index == 0 else midend[-1])
            midend.append(out if index == 0 else out + midend[-1])
        dense = torch.cat(features + midend, dim=1)
        max_pool, mean_pool = dense.amax(dim=2), dense.mean(dim=2)
        interleaved = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        penultimate = self.dense_norm(torch.relu(self.dense(self.pool_norm(interleaved))))
        return MusiCNNOutput(
            timbral=timbral.transpose(1, 2),
            temporal=temporal.transpose(1, 2),
            midend=[m.transpose(1, 2) for m in midend],
            mean_pool=mean_pool,
            max_pool=max_pool,
            penultimate=penultimate,
            logits=self.classifier(penultimate),
        )


def tf_variable_map(architecture: MusiCNNArchitecture) -> list[tuple[str, str, str]]:
    """``(TensorFlow layer name, torch module name, layer type)`` of every layer, in graph-construction order.

    ``tf.compat.v1.layers`` names unnamed layers by type and creation order (``conv2d``, ``conv2d_1``, …),
    so the names follow from the order in which ``musicnn/models.py`` builds the graph.
    """
    layers: list[tuple[str, str]] = [("input_norm", "bn")]
    for kind, count in (
        ("timbral", len(architecture.timbral_widths)),
        ("temporal", len(architecture.temporal_lengths)),
    ):
        for index in range(count):
            layers += [(f"{kind}.{index}.conv", "conv2d"), (f"{kind}.{index}.norm", "bn")]
    for index in range(architecture.midend_layers):
        layers += [(f"midend.{index}.conv", "conv1d"), (f"midend.{index}.norm", "bn")]
    layers += [("pool_norm", "bn"), ("dense", "dense"), ("dense_norm", "bn"), ("classifier", "dense")]
    tf_prefix = {"bn": "batch_normalization", "conv2d": "conv2d", "conv1d": "conv2d", "dense": "dense"}
    counters: dict[str, int] = {}
    named = []
    for module, layer_type in layers:
        prefix = tf_prefix[layer_type]
        count = counters.get(prefix, 0)
        counters[prefix] = count + 1
        named.append((prefix if count == 0 else f"{prefix}_{count}", module, layer_type))
    return named


def _convert(layer_type: str, variable: str, value: np.ndarray) -> tuple[str, np.ndarray]:
    """Map one TensorFlow variable to its torch parameter name and layout."""
    if layer_type == "bn":
        name = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
        return name[variable], value
    if variable == "bias":
        return "bias", value
    if layer_type == "conv2d":  # (height, width, in, out) → (out, in, height, width)
        return "weight", value.transpose(3, 2, 0, 1)
    if layer_type == "conv1d":  # a (k, in_channels, 1, out) conv over a trailing unit axis is a Conv1d
        return "weight", value[:, :, 0, :].transpose(2, 1, 0)
    return "weight", value.T  # dense: (in, out) → (out, in)


TF_VARIABLES = {
    "bn": ("gamma", "beta", "moving_mean", "moving_variance"),
    "conv2d": ("kernel", "bias"),
    "conv1d": ("kernel", "bias"),
    "dense": ("kernel", "bias"),
}


def state_dict_from_tf(checkpoint: TFCheckpoint, model: MusiCNN) -> dict[str, torch.Tensor]:
    """Convert a musicnn TensorFlow checkpoint into a state dict for ``model``, strictly.

    Every variable of the network must be present with the shape ``model`` expects, and every tensor of
    the checkpoint must be used, except Adam's optimizer state.

    Raises
    ------
    ParameterError
        Naming the missing, unexpected or mis-shaped tensors.
    """
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    misshaped: list[str] = []
    for tf_name, module, layer_type in tf_variable_map(model.architecture):
        for variable in TF_VARIABLES[layer_type]:
            key = f"{tf_name}/{variable}"
            if key not in checkpoint.entries:
                missing.append(key)
                continue
            used.add(key)
            name, value = _convert(layer_type, variable, checkpoint.tensor(key))
            target = f"{module}.{name}"
            if tuple(value.shape) != tuple(expected[target].shape):
                misshaped.append(f"{key} {tuple(value.shape)} for {target} {tuple(expected[target].shape)}")
                continue
            state[target] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if layer_type == "bn":
            state[f"{module}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    unexpected = sorted(name for name in checkpoint.entries if name not in used and not OPTIMIZER_STATE.search(name))
    problems = []
    if missing:
        problems.append(f"missing tensors {missing[:10]} ({len(missing)} in all)")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:10]} ({len(unexpected)} in all)")
    if misshaped:
        problems.append(f"mis-shaped tensors {misshaped[:5]} ({len(misshaped)} in all)")
    if problems:
        raise ParameterError(
            f"TensorFlow checkpoint {checkpoint.prefix} does not match MusiCNN: " + "; ".join(problems)
        )
    return state
