"""The notes of one demo track: melody, accompaniment, bass and drum hits, drawn from its style."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from audiorec.datasets.demo.catalogue import Catalogue
from audiorec.datasets.demo.options import DemoOptions
from audiorec.datasets.demo.styles import PROGRESSIONS, STYLES
from audiorec.datasets.demo.voices import Notes

_METRIC = np.array([1.0, 0.3, 0.6, 0.3, 0.85, 0.3, 0.6, 0.3, 0.95, 0.3, 0.6, 0.3, 0.85, 0.3, 0.6, 0.3])
"""Accent of each sixteenth of a bar: melody onsets are likelier on strong beats."""


def _midi_hz(midi: np.ndarray) -> np.ndarray:
    """Equal-tempered frequency of MIDI note numbers (69 is A4, 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _degree_semitones(degrees: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
    """Semitones above the tonic of scale degrees, which may run past one octave in either direction."""
    octave, step = np.divmod(np.asarray(degrees, dtype=np.int64), len(scale))
    return 12 * octave + np.asarray(scale)[step]


@dataclass
class Score:
    """Every voice of one track, ready to render."""

    melody: Notes
    accompaniment: Notes
    bass: Notes
    drums: dict[str, tuple[np.ndarray, np.ndarray]]


def compose_score(options: DemoOptions, catalogue: Catalogue, track: int, rng: np.random.Generator) -> Score:
    """The notes of one track: a repeated two-bar melodic phrase over a chord progression, bass and drums."""
    style = STYLES[catalogue.style[track]]
    n = options.n_samples
    step_samples = options.sample_rate * 60.0 / catalogue.tempo[track] / 4.0
    n_steps = math.ceil(n / step_samples) + 1
    steps = np.arange(n_steps)
    swing = np.where(steps % 4 == 2, style.swing * step_samples, 0.0)
    onset_of = np.round(steps * step_samples + swing).astype(np.int64)
    audible = onset_of < n
    progression = np.asarray(PROGRESSIONS[catalogue.progression[track]])
    chord_root = progression[(steps // 16) % len(progression)]
    root = int(catalogue.root[track])

    # Melody: a two-bar phrase of onsets and scale degrees, repeated (transposed with the chords, varied).
    phrase_on = rng.random(32) < np.clip(style.density * 1.6 * np.tile(_METRIC, 2), 0.0, 0.97)
    phrase_on[0] = True
    moves = rng.choice([-3, -2, -1, 0, 1, 2, 3], size=32, p=[0.05, 0.15, 0.25, 0.1, 0.25, 0.15, 0.05])
    phrase_degree = np.clip(np.cumsum(moves), -3, 10)
    degree = np.resize(phrase_degree, n_steps) + np.where((steps // 32) % 2 == 1, chord_root, 0)
    degree = degree + (rng.random(n_steps) < 0.2) * rng.integers(-1, 2, n_steps)
    hit = np.flatnonzero(np.resize(phrase_on, n_steps) & audible)
    gaps = np.diff(np.append(hit, n_steps + 8))
    melody = Notes(
        onset_of[hit],
        np.minimum(gaps, 8) * style.legato * step_samples,
        _midi_hz(root + _degree_semitones(degree[hit], style.scale)),
        rng.uniform(0.75, 1.0, hit.size),
    )

    # Accompaniment: chords on the scale (degrees d, d+2, d+4) one octave below the melody, sustained (pad),
    # broken into single notes (arp) or short (stab).
    pattern = (0,) if style.accompaniment == "pad" else style.accompaniment_steps
    hit = np.flatnonzero(np.isin(steps % 16, pattern) & audible)
    chord = chord_root[hit, None] + 2 * np.arange(3)[None, :]
    if style.accompaniment == "arp":
        chord = chord[np.arange(hit.size), np.array([0, 1, 2, 1, 0, 2, 1, 2])[np.arange(hit.size) % 8], None]
    length = {"pad": 16.0, "arp": 1.5 * 16 / len(pattern), "stab": 1.2}[style.accompaniment]
    accompaniment = Notes(
        onset_of[hit],
        np.full(hit.size, length * step_samples),
        _midi_hz(root - 12 + _degree_semitones(chord, style.scale)),
        rng.uniform(0.8, 1.0, hit.size),
    )

    # Bass: chord roots two octaves down (a walking line in jazz, a long drone in ambient).
    pattern = (0,) if style.bass == "drone" else style.bass_steps
    hit = np.flatnonzero(np.isin(steps % 16, pattern) & audible)
    bass_degree = chord_root[hit]
    if style.bass == "walk":
        bass_degree = bass_degree + rng.integers(0, 5, hit.size) * (hit % 16 != 0)
    spacing = np.diff(np.append(pattern, 16 + pattern[0])).min()
    bass = Notes(
        onset_of[hit],
        np.full(hit.size, (16.0 if style.bass == "drone" else 0.9 * spacing) * step_samples),
        _midi_hz(np.maximum(root - 24 + _degree_semitones(bass_degree, style.scale), 28)),
        rng.uniform(0.8, 1.0, hit.size),
    )

    drums = {}
    for kind, trigger in (("kick", style.kick), ("snare", style.snare), ("hat", style.hat)):
        fire = (rng.random(n_steps) < np.asarray(trigger)[steps % 16]) & audible
        drums[kind] = (onset_of[fire], rng.uniform(0.6, 1.0, int(fire.sum())))
    return Score(melody, accompaniment, bass, drums)
