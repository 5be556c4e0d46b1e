"""The audio of the demo world: mix one track's voices, apply its room and write it as FLAC."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import fft

from audiorec.datasets.demo.catalogue import Catalogue
from audiorec.datasets.demo.options import AUDIO_STREAM, DemoOptions, child_rng
from audiorec.datasets.demo.score import compose_score
from audiorec.datasets.demo.styles import INSTRUMENTS, STYLES
from audiorec.datasets.demo.voices import frozen, noise, render, render_drums
from audiorec.storage import tables


def _pan(voice: np.ndarray, position: float, stereo: bool) -> np.ndarray:
    """Constant-power pan of a mono voice to (channels, n)."""
    if not stereo:
        return voice[None, :]
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([np.float32(math.cos(angle)) * voice, np.float32(math.sin(angle)) * voice])


def _rms_to(voice: np.ndarray, target: float) -> np.ndarray:
    """Scale a voice to an RMS level, so the mix balance does not depend on note count or register."""
    rms = float(np.sqrt(np.mean(np.square(voice, dtype=np.float64))))
    return voice * np.float32(target / rms) if rms > 1e-9 else voice


@functools.lru_cache(maxsize=32)
def _room_response(style: int, channel: int, size: int, sr: int) -> np.ndarray:
    """Spectrum of a style's reverb (exponentially decaying noise), one decorrelated response per channel."""
    _, decay = STYLES[style].reverb
    length = max(1, round(decay * sr))
    rng = np.random.default_rng(np.random.SeedSequence(0x5EED, spawn_key=(style, channel)))
    response = rng.standard_normal(length).astype(np.float32) * np.exp(-6.9 * np.arange(length) / length)
    response /= np.sqrt(np.sum(np.square(response)))
    return frozen(fft.rfft(response.astype(np.float32), size))


def _room(mix: np.ndarray, style_index: int, cutoff: float, wet: float, sr: int) -> np.ndarray:
    """Low-pass colour and reverb tail applied together in the frequency domain (one FFT pair per channel)."""
    n = mix.shape[-1]
    _, decay = STYLES[style_index].reverb
    size = fft.next_fast_len(n + (round(decay * sr) if wet > 0 else 0), real=True)
    spectrum = fft.rfft(mix, size, axis=-1)
    frequency = np.fft.rfftfreq(size, 1.0 / sr)
    spectrum *= (1.0 / np.sqrt(1.0 + (frequency / cutoff) ** 4)).astype(np.float32)
    if wet > 0:
        responses = np.stack([_room_response(style_index, c, size, sr) for c in range(mix.shape[0])])
        spectrum *= 1.0 + np.float32(wet) * responses
    return fft.irfft(spectrum, size, axis=-1)[:, :n].astype(np.float32)


def synthesise(options: DemoOptions, catalogue: Catalogue, track: int) -> np.ndarray:
    """The clip of one track as int16 samples, shape (n, channels)."""
    rng = child_rng(options, AUDIO_STREAM, track)
    style_index = int(catalogue.style[track])
    style = STYLES[style_index]
    sr, n = options.sample_rate, options.n_samples
    stereo = bool(catalogue.stereo[track])
    score = compose_score(options, catalogue, track, rng)

    def drive(voice: np.ndarray) -> np.ndarray:
        if style.drive <= 0:
            return voice
        voice = voice / np.float32(max(float(np.max(np.abs(voice))), 1e-9))
        return np.tanh(np.float32(style.drive) * voice) / np.float32(math.tanh(style.drive))

    # Loudness by RMS: the melody (the instrument label) clearly dominates every other melodic voice.
    melody = render(INSTRUMENTS[catalogue.instrument[track]], score.melody, n, sr)
    mix = _pan(_rms_to(drive(melody), 1.0), rng.uniform(-0.25, 0.25), stereo)
    accompaniment = render(INSTRUMENTS[catalogue.accompaniment_instrument[track]], score.accompaniment, n, sr)
    mix = mix + _pan(_rms_to(drive(accompaniment), 0.3), rng.uniform(-0.6, 0.6), stereo)
    mix = mix + _pan(_rms_to(render("bass", score.bass, n, sr), 0.5), 0.0, stereo)
    if style.drum_level > 0:
        kit = render_drums(score.drums, style.hat_decay, n, sr, rng)
        mix = mix + _pan(_rms_to(kit, style.drum_level), rng.uniform(-0.2, 0.2), stereo)

    # Dub echo (dotted eighth), then colour and room, then hiss.
    if style.echo > 0:
        delay = round(3 * sr * 60.0 / catalogue.tempo[track] / 4.0)
        dry = mix.copy()
        for repeat in (1, 2):
            if repeat * delay < n:
                mix[:, repeat * delay :] += np.float32(style.echo**repeat) * dry[:, : n - repeat * delay]
    wet = style.reverb[0] * rng.uniform(0.8, 1.2)
    mix = _room(mix, style_index, min(float(catalogue.cutoff[track]), 0.45 * sr), wet, sr)
    if style.noise > 0:
        hiss = np.stack([noise(rng, n) for _ in range(mix.shape[0])])
        mix += np.float32(style.noise * float(np.max(np.abs(mix)))) * hiss
    scaled = mix * np.float32(catalogue.gain[track] / max(float(np.max(np.abs(mix))), 1e-9))
    return np.round(scaled.T * np.float32(32767.0)).astype(np.int16)


def write_flac(samples: np.ndarray, path: Path, sample_rate: int) -> None:
    """Write 16-bit FLAC atomically, so an interrupted run never leaves a truncated clip behind."""
    with tables.atomic_path(path) as tmp:
        # The temporary name ends in ".tmp", so the format must be given rather than inferred.
        sf.write(tmp, samples, sample_rate, format="FLAC", subtype="PCM_16")
