"""How the pretrained transformers cut, normalise and pool a track, and which parts stay in float32.

A track's vector must be the mean over the frames its own audio produced: no frame of zero padding, no
dependence on the window length when the track fits one window, nor on the tracks batched beside it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_pretrained_backbones import KINDS, tiny

from audiorec.backbones.pretrained import PretrainedBackbone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRONT_ENDS = {
    "mert": "feature_extractor",
    "music2vec": "feature_extractor",
    "musicfm": "conv",
    "muq": "conv",
    "encodecmae": "wav_encoder",
}
"""The module of each family that runs in float32 under autocast."""


def noise(n_samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, n_samples).astype(np.float32)


def frame_mean(backbone: PretrainedBackbone, windows: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Mean over every frame of every window, each window run on its own at its own length."""
    with torch.inference_mode():
        runs = [backbone.forward_layers(torch.from_numpy(window)[None]) for window in windows]
    return {
        name: torch.cat([layers[index][0] for layers in runs]).mean(0).numpy()
        for index, name in enumerate(backbone.layers)
    }


def assert_same_vectors(got: dict[str, np.ndarray], want: dict[str, np.ndarray], row: int = 0) -> None:
    """``got[layer][row]`` equals ``want[layer]``, a vector or a one-row matrix."""
    for name, vector in want.items():
        np.testing.assert_allclose(got[name][row], vector.reshape(-1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_a_short_clip_ignores_the_window_length_and_its_batch(kind):
    backbone = tiny(kind)
    longer_windows = tiny(kind, clip_seconds=3 * backbone.clip_seconds)
    window = round(backbone.clip_seconds * backbone.sample_rate)
    clip = noise(window * 3 // 5, seed=1)
    (only_window,) = backbone.windows(clip)  # normalised, for MERT and Music2Vec, but as long as the clip
    assert only_window.shape == clip.shape
    expected = frame_mean(backbone, [only_window])  # no frame of silence
    assert_same_vectors(backbone.embed_batch([clip]), expected)
    assert_same_vectors(longer_windows.embed_batch([clip]), expected)
    batch = [noise(2 * window + 777, seed=2), clip, noise(len(clip), seed=3)]  # a twin length shares a forward
    together = backbone.embed_batch(batch)
    assert_same_vectors(together, expected, row=1)
    assert not np.allclose(together["layer_2"][1], together["layer_2"][2])


@pytest.mark.parametrize("kind", KINDS)
def test_the_remainder_runs_unpadded_and_weighs_by_its_frames(kind):
    backbone = tiny(kind)
    window = round(backbone.clip_seconds * backbone.sample_rate)
    remainder = max(window // 5, backbone.min_window_samples(backbone.spec))  # under half a window
    track = noise(2 * window + remainder, seed=4)
    windows = backbone.windows(track)
    assert [len(piece) for piece in windows] == [window, window, remainder]
    assert_same_vectors(backbone.embed_batch([track]), frame_mean(backbone, windows))
    too_short = backbone.windows(track[: 2 * window + backbone.min_window_samples(backbone.spec) - 1])
    assert [len(piece) for piece in too_short] == [window, window]


@pytest.mark.parametrize("kind", ["mert", "music2vec"])
def test_waveform_models_normalise_the_whole_track_once(kind):
    normalised, raw = tiny(kind), tiny(kind, normalize_waveform=False)
    window = round(normalised.clip_seconds * normalised.sample_rate)
    track = noise(2 * window + window // 3, seed=5)
    track[window:] *= 0.05  # windows of very different loudness keep their ratio, as upstream
    whole = (track - track.mean(dtype=np.float64)) / np.sqrt(track.var(dtype=np.float64) + 1e-7)
    assert_same_vectors(normalised.embed_batch([track]), raw.embed_batch([whole.astype(np.float32)]))
    first_window = normalised.windows(track)[0]
    assert abs(first_window.std() - 1.0) > 0.1  # not normalised on its own


@pytest.mark.parametrize("kind", KINDS)
def test_front_ends_stay_float32_under_autocast_and_precision_says_so(kind):
    backbone = tiny(kind)
    front_end = getattr(backbone.model, FRONT_ENDS[kind])
    front_dtypes: list[torch.dtype] = []
    linear_dtypes: set[torch.dtype] = set()
    handles = [front_end.register_forward_hook(lambda _module, _args, output: front_dtypes.append(output.dtype))]
    handles += [
        module.register_forward_hook(lambda _module, _args, output: linear_dtypes.add(output.dtype))
        for module in backbone.model.modules()
        if isinstance(module, torch.nn.Linear)
    ]
    clips = torch.from_numpy(noise(round(backbone.clip_seconds * backbone.sample_rate), seed=6))[None]
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            backbone.forward_layers(clips)
    finally:
        for handle in handles:
            handle.remove()
    assert front_dtypes == [torch.float32]
    assert torch.bfloat16 in linear_dtypes  # the transformer itself did use bf16
    assert backbone.precision == "float32"
    backbone.device = torch.device("cuda")  # the precision only reads the device type
    assert backbone.precision == "float32"  # the default: the first paper ran these models in float32
    backbone.requested_precision = "bf16"
    assert backbone.precision == f"bfloat16 autocast, {backbone.float32_parts} in float32"
