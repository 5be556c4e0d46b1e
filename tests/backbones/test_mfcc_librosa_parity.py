"""The MFCC backbone computes exactly what ``librosa.feature.mfcc`` does, with its filterbank built once."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from audiorec.backbones.mfcc import MFCCBackbone, mfcc_statistics
from audiorec.backbones.options import MFCCConfig


@pytest.mark.parametrize(
    "options",
    [{}, {"sample_rate": 16000, "n_mfcc": 20, "n_fft": 1024, "hop_length": 256, "n_mels": 64}],
    ids=["default", "custom"],
)
def test_mfcc_equals_librosa(rng, options):
    config = MFCCConfig(**options)
    backbone = MFCCBackbone(config)
    signal = (np.sin(np.linspace(0, 2000, 3 * config.sample_rate)) + rng.normal(0, 0.1, 3 * config.sample_rate)).astype(
        np.float32
    )
    expected = librosa.feature.mfcc(
        y=signal,
        sr=config.sample_rate,
        n_mfcc=config.n_mfcc,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
    )
    got = backbone.mfcc(signal)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        backbone.embed_batch([signal])["mfcc_stats"][0], mfcc_statistics(expected), rtol=1e-4, atol=1e-3
    )
