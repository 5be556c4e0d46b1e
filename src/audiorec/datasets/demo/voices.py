"""Synthetic instruments and drums: render a line of notes, or a list of drum hits, to float32 samples.

Vectorised: a few array operations per voice, no per-sample Python, so the default world builds in seconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

_TABLE_BITS = 12
_TABLE_SIZE = 1 << _TABLE_BITS
_PHASE_BITS = 32  # phases are fixed-point integers: 2**32 is one cycle, so wrapping is a mask, not a float modulo
_HARMONIC_LEVELS = np.array([64, 32, 16, 8, 4, 2, 1])
_NOISE_LENGTH = 1 << 21


@functools.cache
def _wavetables() -> dict[str, np.ndarray]:
    """Single-cycle wavetables, flattened: row ``i`` holds the first ``_HARMONIC_LEVELS[i]`` harmonics.

    Choosing the row by note frequency keeps every harmonic below the Nyquist frequency (no aliasing).
    """
    k = np.arange(1, 65)
    spectra = {
        "pluck_bright": np.abs(np.sin(np.pi * k * 0.18)) / k**0.9,
        "pluck_dull": 1.0 / k**2.4,
        "saw": 1.0 / k,
        "square": np.where(k % 2 == 1, 1.0 / k, 0.0),
        "bass": np.concatenate([[1.0, 0.35, 0.15, 0.05], np.zeros(60)]),
        "sine": (k == 1).astype(float),
    }
    basis = np.sin(2 * np.pi * np.outer(k, np.arange(_TABLE_SIZE) / _TABLE_SIZE))
    result = {}
    for name, amplitudes in spectra.items():
        rows = [(amplitudes * (k <= limit)) @ basis for limit in _HARMONIC_LEVELS]
        result[name] = frozen(np.concatenate([row / np.max(np.abs(row)) for row in rows]).astype(np.float32))
    return result


def frozen(array: np.ndarray) -> np.ndarray:
    """Make a cached array read-only, so no caller can corrupt what later tracks are built from."""
    array.flags.writeable = False
    return array


@functools.cache
def _noise_buffer() -> np.ndarray:
    """A fixed block of white noise; slices at seeded offsets are far cheaper than fresh Gaussian draws."""
    return frozen(np.random.default_rng(0x5EED).standard_normal(_NOISE_LENGTH, dtype=np.float32))


def noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """White noise of ``length`` samples, a seeded slice of :func:`_noise_buffer` unless it is too long."""
    if length > _NOISE_LENGTH // 2:
        return rng.standard_normal(length, dtype=np.float32)
    offset = int(rng.integers(0, _NOISE_LENGTH - length))
    return _noise_buffer()[offset : offset + length]


@functools.lru_cache(maxsize=64)
def _curve(name: str, n: int, sr: int) -> np.ndarray:
    """Envelope and modulation shapes as functions of samples since onset (or of absolute time), cached.

    Every note of an instrument shares the same attack/decay shape, so a voice's envelope is one gather
    ``curve[since]`` instead of several transcendental functions over the whole clip.
    """
    t = np.arange(n, dtype=np.float32) / np.float32(sr)

    def attack(seconds: float) -> np.ndarray:
        return np.minimum(np.float32(1.0), t / np.float32(seconds))

    shapes = {
        "guitar": lambda: attack(0.003) * np.exp(-t / 0.5),
        "guitar_brightness": lambda: np.exp(-t / 0.08),
        "violin": lambda: attack(0.07),
        "violin_vibrato": lambda: 0.006 / (2 * np.pi * 5.5) * np.minimum(1.0, t / 0.25),
        "clarinet": lambda: attack(0.03),
        "vibraphone": lambda: attack(0.002) * np.exp(-t / 1.0),
        "vibraphone_index": lambda: 2.5 / (2 * np.pi) * np.exp(-t / 0.15),
        "synth": lambda: attack(0.01) * (0.75 + 0.25 * np.exp(-t / 0.2)),
        "bass": lambda: attack(0.005) * np.exp(-t / 0.9),
        "lfo_vibrato": lambda: -np.cos(2 * np.pi * 5.5 * t),
        "lfo_tremolo": lambda: 1.0 + 0.2 * np.sin(2 * np.pi * 5.0 * t),
        "kick": lambda: np.sin(2 * np.pi * (45.0 * t + 110.0 * 0.035 * (1.0 - np.exp(-t / 0.035)))) * np.exp(-t / 0.18),
        "snare_tone": lambda: 0.6 * np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.05),
        "snare": lambda: np.exp(-t / 0.09),
    }
    return frozen(np.array(shapes[name](), dtype=np.float32))


_RELEASE_S = {"guitar": 0.05, "violin": 0.08, "clarinet": 0.05, "vibraphone": 0.3, "synth": 0.06, "bass": 0.05}
_TABLE_OF = {"violin": "saw", "clarinet": "square", "synth": "saw", "bass": "bass", "vibraphone": "sine"}


@dataclass
class Notes:
    """A line of notes or chords: onsets and durations in samples, frequencies (notes, tones) in Hz."""

    onsets: np.ndarray
    durations: np.ndarray
    freqs: np.ndarray
    amps: np.ndarray

    def __post_init__(self) -> None:
        freqs = np.asarray(self.freqs, dtype=float)
        self.freqs = freqs[:, None] if freqs.ndim == 1 else freqs


def _clock(notes: Notes, n: int) -> tuple[Notes, np.ndarray, np.ndarray, np.ndarray]:
    """Map every sample to its sounding note: note index, samples since onset, samples until the next onset.

    Onsets are made strictly increasing and a silent note is put at sample 0 when the line starts later, so
    each sample belongs to exactly one note and a whole voice renders in a few array operations.
    """
    onsets, first = np.unique(np.clip(notes.onsets.astype(np.int64), 0, n - 1), return_index=True)
    notes = Notes(onsets, notes.durations[first], notes.freqs[first], notes.amps[first])
    if onsets.size == 0 or onsets[0] > 0:
        tones = notes.freqs.shape[1]
        notes = Notes(
            np.concatenate([[0], notes.onsets]),
            np.concatenate([[1.0], notes.durations]),
            np.concatenate([np.full((1, tones), 100.0), notes.freqs]),
            np.concatenate([[0.0], notes.amps]),
        )
    bounds = np.append(notes.onsets, n)
    index = np.repeat(np.arange(notes.onsets.size), np.diff(bounds))
    position = np.arange(n)
    since = position - notes.onsets[index]
    until_next = bounds[index + 1] - position
    return notes, index, since, until_next


def _lookup(table: np.ndarray, row_offset: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Wavetable samples at fixed-point ``phase``: the top bits index the cycle, so no interpolation is needed."""
    return table[row_offset + ((phase >> (_PHASE_BITS - _TABLE_BITS)) & (_TABLE_SIZE - 1))]


def render(instrument: str, notes: Notes, n: int, sr: int) -> np.ndarray:
    """Render a line with one of the synthetic instruments (float32, unnormalised); chords share one envelope."""
    notes, index, since, until_next = _clock(notes, n)
    tables_ = _wavetables()
    release = _RELEASE_S[instrument] * sr
    # Gate: full until the note's end, a linear release after it, and a 4 ms fade before the next onset.
    ends = ((notes.durations + release) / release).astype(np.float32)
    gate = np.minimum(ends[index] - since.astype(np.float32) / np.float32(release), until_next / np.float32(0.004 * sr))
    envelope = np.clip(gate, 0.0, 1.0) * _curve(instrument, n, sr)[since] * notes.amps.astype(np.float32)[index]
    wave = np.zeros(n, dtype=np.float32)
    for tone in range(notes.freqs.shape[1]):
        freqs = notes.freqs[:, tone]
        row = (_table_level(freqs, sr) * _TABLE_SIZE)[index]
        phase = _increment(freqs, sr)[index] * since
        if instrument == "guitar":  # plucked: a bright attack fading to a dull tone
            dull = _lookup(tables_["pluck_dull"], row, phase)
            bright = _lookup(tables_["pluck_bright"], row, phase)
            wave += dull + _curve("guitar_brightness", n, sr)[since] * (bright - dull)
        elif instrument == "violin":  # bowed: sawtooth with a vibrato that sets in after the attack
            wobble = (
                freqs.astype(np.float32)[index] * _curve("violin_vibrato", n, sr)[since] * _curve("lfo_vibrato", n, sr)
            )
            wave += _lookup(tables_["saw"], row, phase + (wobble * 2.0**_PHASE_BITS).astype(np.int64))
        elif instrument == "vibraphone":  # FM bell: inharmonic partials decaying faster than the tone
            modulator = _lookup(tables_["sine"], 0, _increment(3.5 * freqs, sr)[index] * since)
            offset = (modulator * _curve("vibraphone_index", n, sr)[since] * 2.0**_PHASE_BITS).astype(np.int64)
            wave += _lookup(tables_["sine"], 0, phase + offset)
        elif instrument == "synth":  # lead: two detuned sawtooths
            detuned = _increment(freqs * 1.012, sr)[index] * since
            wave += 0.5 * (_lookup(tables_["saw"], row, phase) + _lookup(tables_["saw"], row, detuned))
        else:  # clarinet (odd harmonics) and bass
            wave += _lookup(tables_[_TABLE_OF[instrument]], row, phase)
    if instrument == "vibraphone":
        envelope *= _curve("lfo_tremolo", n, sr)
    return wave * envelope


def _increment(freqs: np.ndarray, sr: int) -> np.ndarray:
    """Fixed-point phase increment per sample."""
    return np.round(np.asarray(freqs) / sr * 2.0**_PHASE_BITS).astype(np.int64)


def _table_level(freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    """Row of the wavetable whose highest harmonic stays below 0.45 of the sample rate."""
    fits = _HARMONIC_LEVELS[None, :] * np.asarray(freqs)[:, None] < 0.45 * sample_rate
    return np.where(fits.any(axis=1), fits.argmax(axis=1), len(_HARMONIC_LEVELS) - 1)


def render_drums(
    hits: dict[str, tuple[np.ndarray, np.ndarray]], hat_decay: float, n: int, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """Overlap-add of drum hits: a pitch-swept sine kick, a noise-and-tone snare, a high-passed noise hat.

    Hits are short and sparse, so adding a few pre-rendered variants at the onsets is cheaper than any
    whole-clip computation; the noise hits use a few variants so repeated hits are not identical.
    """
    kit = np.zeros(n, dtype=np.float32)
    length = {"kick": round(0.5 * sr), "snare": round(0.4 * sr), "hat": max(1, round(5 * hat_decay * sr))}
    hat_envelope = np.exp(-np.arange(length["hat"], dtype=np.float32) / np.float32(hat_decay * sr))
    for kind, gain in (("kick", 1.0), ("snare", 0.5), ("hat", 0.25)):
        onsets, amps = hits[kind]
        if onsets.size == 0:
            continue
        size = length[kind]
        if kind == "kick":
            variants = [_curve("kick", size, sr)]
        elif kind == "snare":
            variants = [noise(rng, size) * _curve("snare", size, sr) + _curve("snare_tone", size, sr) for _ in range(4)]
        else:
            variants = [np.diff(noise(rng, size + 1)) * hat_envelope for _ in range(4)]
        choice = rng.integers(len(variants), size=onsets.size)
        for onset, amp, variant in zip(onsets.tolist(), (gain * amps).tolist(), choice.tolist(), strict=True):
            span = min(size, n - onset)
            kit[onset : onset + span] += np.float32(amp) * variants[variant][:span]
    return kit
