"""The plain-torch log-mel front end of MusicFM and MuQ, against librosa's HTK mel and power_to_db."""

from __future__ import annotations

import librosa
import numpy as np
import torch

from audiorec.backbones.mel import LogMelSpectrogram, htk_mel_filterbank


def test_filterbank_equals_librosa_htk_without_normalisation():
    ours = htk_mel_filterbank(24000, 2048, 128).numpy()
    reference = librosa.filters.mel(sr=24000, n_fft=2048, n_mels=128, htk=True, norm=None)
    assert ours.shape == (1025, 128)
    np.testing.assert_allclose(ours, reference.T, atol=1e-6)


def test_log_mel_of_musicfm_settings_equals_librosa(rng):
    signal = (rng.normal(0, 0.1, 24000) * np.hanning(24000)).astype(np.float32)
    signal[:2400] = 0.0  # a silent stretch exercises the 1e-10 floor (-100 dB)
    ours = LogMelSpectrogram(24000, n_fft=2048, hop_length=240, n_mels=128)(torch.from_numpy(signal)[None])[0]
    power = librosa.feature.melspectrogram(
        y=signal, sr=24000, n_fft=2048, hop_length=240, n_mels=128, htk=True, norm=None, pad_mode="reflect", power=2.0
    )
    reference = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    assert ours.shape == (128, 1 + 24000 // 240)
    assert ours.min().item() == -100.0
    np.testing.assert_allclose(ours.numpy(), reference, atol=2e-3)
