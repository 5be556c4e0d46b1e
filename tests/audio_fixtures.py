"""Small audio files written on the fly for tests."""

from __future__ import annotations

import struct
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


def write_wav_header(path: Path, channels: int, sample_rate: int, n_frames: int = 1000) -> Path:
    """A 16-bit PCM WAV whose header declares any channel count and rate, however absurd (corrupt headers)."""
    samples = np.random.default_rng(0).normal(0, 1000, n_frames * max(channels, 1)).astype("<i2").tobytes()
    block_align = max(channels, 1) * 2
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, (sample_rate * block_align) % 2**32, block_align, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path
