"""Audio decoding: any file libsndfile can open, to mono float32 at a target rate.

Every failure is raised as :class:`~audiorec.errors.AudioError` naming the file and the problem, so the
extraction driver can record it in a failures table and carry on with the next track.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audiorec.errors import AudioError, ParameterError

PLAUSIBLE_SAMPLE_RATES = (1000, 768_000)
"""Native rates outside this range (Hz) come from corrupt headers, not from audio anyone recorded."""


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int,
    *,
    max_duration_s: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to a mono float32 signal at ``sample_rate`` Hz.

    Channels are averaged (a down-mix that keeps every instrument, unlike taking the left channel), and the
    signal is resampled with soxr's high-quality filter. ``max_duration_s`` crops from the start, reading
    only what is needed.

    Raises
    ------
    AudioError
        If the file is missing, cannot be decoded, holds no samples, declares an implausible sample rate, or
        contains non-finite values.
    """
    if sample_rate <= 0:
        raise ParameterError(f"sample_rate must be positive, got {sample_rate}")
    path = Path(path)
    if not path.is_file():
        raise AudioError(str(path), "file does not exist")
    if path.stat().st_size == 0:
        raise AudioError(str(path), "file is empty (0 bytes)")
    signal, native_rate = _decode(path, max_duration_s)
    if signal.size == 0:
        raise AudioError(str(path), "decoded to zero samples")
    if not PLAUSIBLE_SAMPLE_RATES[0] <= native_rate <= PLAUSIBLE_SAMPLE_RATES[1]:
        low, high = PLAUSIBLE_SAMPLE_RATES
        raise AudioError(str(path), f"implausible sample rate {native_rate} Hz (expected {low} to {high} Hz)")
    if not np.all(np.isfinite(signal)):
        raise AudioError(str(path), "decoded signal contains NaN or infinite samples")
    if native_rate != sample_rate:
        signal = soxr.resample(signal, native_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(signal, dtype=np.float32)


def _decode(path: Path, max_duration_s: float | None) -> tuple[np.ndarray, int]:
    """Read with libsndfile, which decodes WAV, FLAC, OGG/Opus and MP3 without an external program."""
    try:
        info = sf.info(str(path))
        frames = -1 if max_duration_s is None else round(max_duration_s * info.samplerate)
        data, native_rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioError(str(path), f"cannot decode audio: {error}") from error
    # A matrix-vector product: numpy's mean over a short trailing axis is ~15x slower on long signals.
    return data @ np.full(data.shape[1], 1.0 / data.shape[1], dtype=np.float32), int(native_rate)
