"""Our STFT and decibels equal librosa's, and the spectrogram backbones no longer import ``librosa.util``."""

from __future__ import annotations

import subprocess
import sys
import warnings

import librosa
import numpy as np
import pytest

from audiorec.audio.spectrum import FRAMES_PER_BLOCK, periodic_hann, power_spectrogram, power_to_db


def librosa_power(signal: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns when n_fft exceeds a short signal; it still answers
        return np.abs(librosa.stft(signal, n_fft=n_fft, hop_length=hop_length)) ** 2


def test_periodic_hann_is_scipys_stft_window():
    import scipy.signal

    np.testing.assert_allclose(periodic_hann(2048), scipy.signal.get_window("hann", 2048, fftbins=True), atol=1e-15)


@pytest.mark.parametrize(
    ("shape", "n_fft", "hop_length"),
    [
        ((3 * 22050,), 2048, 512),  # the MFCC backbone's defaults
        ((4, 48000), 512, 256),  # a batch of SSL segments
        ((2, 3, 1001), 256, 100),  # more batch axes, a length that is no multiple of the hop
        ((700,), 2048, 512),  # shorter than one window: zero padding only
        ((FRAMES_PER_BLOCK * 64 + 3 * 64 + 5,), 128, 64),  # several blocks, the last one partial
        ((9,), 16, 1),
    ],
)
def test_power_spectrogram_equals_librosa(rng, shape, n_fft, hop_length):
    signal = rng.normal(size=shape).astype(np.float32)
    expected = librosa_power(signal, n_fft, hop_length)
    got = power_spectrogram(signal, n_fft, hop_length)
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    # float32 rounding of |X|² only: the transform is float64 in both.
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-9)


def test_power_spectrogram_of_a_tone_peaks_at_its_bin():
    sample_rate, n_fft = 8000, 256
    tone = np.sin(2 * np.pi * 1000.0 * np.arange(sample_rate) / sample_rate).astype(np.float32)
    power = power_spectrogram(tone, n_fft, 64)
    assert (power[:, 10:-10].argmax(axis=0) == round(1000.0 * n_fft / sample_rate)).all()


def test_power_spectrogram_rejects_bad_parameters():
    with pytest.raises(ValueError, match="hop_length"):
        power_spectrogram(np.zeros(100, np.float32), 64, 0)


@pytest.mark.parametrize("top_db", [80.0, 20.0, None])
def test_power_to_db_equals_librosa(rng, top_db):
    power = rng.exponential(size=(40, 50)).astype(np.float32) ** 6  # a wide dynamic range, tiny values included
    power[0, :5] = 0.0
    np.testing.assert_allclose(
        power_to_db(power, top_db=top_db), librosa.power_to_db(power, top_db=top_db), rtol=1e-6, atol=1e-5
    )


def test_spectrogram_backbones_do_not_import_librosas_kernels():
    """``librosa.util.utils`` compiles numba kernels on import (21-25 s cold): extraction must not need it."""
    script = (
        "import sys, numpy as np\n"
        "from audiorec.backbones.mfcc import MFCCBackbone\n"
        "from audiorec.backbones.options import MFCCConfig\n"
        "from audiorec.ssl.features import log_mel\n"
        "MFCCBackbone(MFCCConfig()).embed_batch([np.ones(22050, np.float32)])\n"
        "log_mel(np.ones((2, 48000), np.float32))\n"
        "print(sorted(m for m in sys.modules if m.startswith('librosa.util.utils') or m == 'librosa.core.spectrum'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
