"""Small audio files written on the fly for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def write_tone(
    path: Path, seconds: float = 1.0, sample_rate: int = 22050, channels: int = 1, freq: float = 440.0
) -> Path:
    """A sine tone with a little seeded noise, so MFCC covariances are well defined."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    noise = np.random.default_rng(int(freq)).normal(0, 0.01, t.size)
    mono = 0.5 * np.sin(2 * np.pi * freq * t) + noise
    data = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono
    sf.write(path, data.astype(np.float32), sample_rate)
    return path
