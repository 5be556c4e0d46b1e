"""The shared neural-backbone machinery: windowing, pooling over time, strict weight loading."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from audiorec.audio.windows import unpadded_windows
from audiorec.backbones.torch_base import TorchBackbone, load_state_dict_file, load_strict
from audiorec.errors import ParameterError
from audiorec.extraction.embed import extract


class FrameNet(nn.Module):
    """Frames of 100 samples → a linear layer → ReLU → another linear layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first = nn.Linear(100, 6)
        self.second = nn.Linear(6, 4)


class TinyBackbone(TorchBackbone):
    kind = "tiny-test"

    def __init__(self) -> None:
        super().__init__(device="cpu")
        self.model = FrameNet()
        self.sample_rate = 1000
        self.clip_seconds = 1.0
        self.layer_dims = {"first": 6, "second": 4}
        self.prepare()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TinyBackbone:
        return cls()

    def forward_layers(self, clips: torch.Tensor) -> list[torch.Tensor]:
        frames = clips.reshape(clips.shape[0], -1, 100)
        first = torch.relu(self.model.first(frames))
        return [first, self.model.second(first)]


def reference(backbone: TinyBackbone, signal: np.ndarray) -> dict[str, np.ndarray]:
    """Mean over every frame of every kept window, computed directly."""
    windows = torch.from_numpy(backbone.windows(signal))
    layers = backbone.forward_layers(windows)
    return {
        name: layer.reshape(-1, layer.shape[-1]).mean(0).detach().numpy()
        for name, layer in zip(backbone.layers, layers, strict=True)
    }


def test_windows_pad_or_drop_the_last_piece():
    backbone = TinyBackbone()
    assert backbone.windows(np.ones(2600, np.float32)).shape == (3, 1000)  # 600 ≥ half a window: padded
    assert backbone.windows(np.ones(2300, np.float32)).shape == (2, 1000)  # 300 < half a window: dropped
    short = backbone.windows(np.ones(300, np.float32))
    assert short.shape == (1, 1000) and short[0, 299] == 1 and short[0, 300] == 0  # the only window is kept


def test_pooled_vectors_equal_the_mean_over_all_frames_whatever_the_batching(rng):
    backbone = TinyBackbone()
    signals = [rng.normal(size=n).astype(np.float32) for n in (1000, 3700, 2500, 450)]
    batched = backbone.embed_batch(signals)
    backbone.max_windows_per_forward = 2  # forces windows of one track across several forward calls
    rebatched = backbone.embed_batch(signals)
    for i, signal in enumerate(signals):
        expected = reference(backbone, signal)
        for name in backbone.layers:
            np.testing.assert_allclose(batched[name][i], expected[name], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(rebatched[name][i], expected[name], rtol=1e-5, atol=1e-6)
    assert batched["first"].shape == (4, 6) and batched["second"].shape == (4, 4)


class UnpaddedTinyBackbone(TinyBackbone):
    """:class:`TinyBackbone` keeping the last piece unpadded, as the pretrained transformers do."""

    def windows(self, signal: np.ndarray) -> list[np.ndarray]:
        return unpadded_windows(signal, 1000, min_samples=100)


def test_unpadded_windows_keep_the_remainder_as_it_is():
    signal = np.arange(2300, dtype=np.float64)
    pieces = unpadded_windows(signal, 1000, min_samples=100)
    assert [len(piece) for piece in pieces] == [1000, 1000, 300] and pieces[2][-1] == 2299
    assert all(piece.dtype == np.float32 for piece in pieces)
    assert [len(piece) for piece in unpadded_windows(signal[:2050], 1000, min_samples=100)] == [1000, 1000]
    (short,) = unpadded_windows(np.ones(40), 1000, min_samples=100)  # padded only up to what the model reads
    assert len(short) == 100 and short[39] == 1 and short[40] == 0


def test_windows_of_unequal_length_weigh_by_their_frames(rng):
    backbone = UnpaddedTinyBackbone()
    signals = [rng.normal(size=n).astype(np.float32) for n in (2300, 300, 1000, 300)]
    pooled = backbone.embed_batch(signals)
    for i, signal in enumerate(signals):
        frames = backbone.forward_layers(torch.from_numpy(signal[: len(signal) // 100 * 100])[None])
        for name, layer in zip(backbone.layers, frames, strict=True):
            np.testing.assert_allclose(pooled[name][i], layer[0].mean(0).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_extraction_of_the_same_input_is_deterministic(tmp_path, rng):
    import soundfile as sf

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], rng.normal(0, 0.1, 2500).astype(np.float32), 1000)
    first = extract(["a", "b", "c"], paths, TinyBackbone(), batch_size=2, progress=False)
    second = extract(["a", "b", "c"], paths, TinyBackbone(), batch_size=3, progress=False)
    for name in ("first", "second"):
        np.testing.assert_array_equal(
            first.layer_matrices(TinyBackbone())[name], second.layer_matrices(TinyBackbone())[name]
        )


def test_strict_loading_names_missing_and_unexpected_keys(tmp_path):
    backbone = TinyBackbone()
    state = backbone.model.state_dict()
    torch.save({"state_dict": state}, tmp_path / "ok.pt")
    backbone.load_weights(tmp_path / "ok.pt")
    assert backbone.weights_sha256 is not None and len(backbone.weights_sha256) == 64

    broken = dict(state)
    broken.pop("second.bias")
    broken["third.weight"] = torch.zeros(1)
    with pytest.raises(ParameterError, match=r"missing keys \['second.bias'\].*unexpected keys \['third.weight'\]"):
        load_strict(FrameNet(), broken, "broken.pt")
    load_strict(FrameNet(), {**state, "optimizer.slot": torch.zeros(1)}, "with-slots.pt", ignore=["optimizer."])
    with pytest.raises(ParameterError, match="does not exist"):
        load_state_dict_file(tmp_path / "absent.pt")
