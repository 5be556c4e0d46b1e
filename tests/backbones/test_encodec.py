"""EncodecMAE's building blocks against the release's formulation: causal convs, weight norm, ResiDual."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from audiorec.backbones.encodec import CausalConv1d, SEANetConfig, SEANetEncoder, WeightNormConv1d
from audiorec.backbones.encodecmae import ResiDualEncoder


def test_weight_norm_conv_equals_torch_weight_norm():
    ours = WeightNormConv1d(3, 4, kernel_size=5, stride=2, dilation=1)
    with torch.no_grad():
        ours.weight_g.mul_(torch.linspace(0.5, 2.0, 4).view(4, 1, 1))
    reference = nn.utils.parametrizations.weight_norm(nn.Conv1d(3, 4, 5, stride=2), name="weight", dim=0)
    reference.load_state_dict({"weight_g": ours.weight_g, "weight_v": ours.weight_v, "bias": ours.bias})
    x = torch.randn(2, 3, 40)
    torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize(("kernel", "stride", "length"), [(7, 1, 50), (16, 8, 50), (4, 2, 3), (10, 5, 101)])
def test_causal_conv_pads_left_by_reflection_and_fills_the_last_window(kernel, stride, length):
    conv = CausalConv1d(1, 1, kernel, stride=stride)
    x = torch.randn(1, 1, length)
    out = conv(x)
    assert out.shape[-1] == math.ceil(length / stride)
    padding = kernel - stride
    extra = (out.shape[-1] - 1) * stride + kernel - (length + padding)
    padded = F.pad(x, (padding, extra), mode="reflect")  # left: causal; right: just enough for a full window
    inner = conv.conv.conv
    weight = inner.weight_g * inner.weight_v / inner.weight_v.norm(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(out, F.conv1d(padded, weight, inner.bias, stride=stride))


def test_seanet_encoder_downsamples_24khz_to_75_frames_per_second():
    encoder = SEANetEncoder(SEANetConfig(n_filters=4, dimension=8, lstm_layers=1))
    assert SEANetConfig().hop_length == 320
    assert encoder(torch.randn(2, 1, 24000)).shape == (2, 8, 75)
    assert encoder(torch.randn(1, 1, 24001)).shape == (1, 8, 76)


def test_residual_encoder_carries_a_normalised_and_a_raw_stream():
    torch.manual_seed(0)
    encoder = ResiDualEncoder(model_dim=8, num_layers=3, num_heads=2, ff_dim=16)
    x = torch.randn(2, 6, 8)
    x0 = x1 = x
    expected = [x]
    for layer in encoder.encoder_layers:  # the release's TransformerLayer, norm_type='ResiDual'
        attended = layer.att_layer(x0)
        x0, x1 = layer.norm1(x0 + attended), x1 + attended
        fed = layer.ff_layer(x0)
        x0, x1 = layer.norm2(x0 + fed), x1 + fed
        expected.append(x0)
    expected[-1] = x0 + encoder.final_norm(x1)
    hidden = encoder(x)
    assert len(hidden) == 4
    for got, want in zip(hidden, expected, strict=True):
        torch.testing.assert_close(got, want)
