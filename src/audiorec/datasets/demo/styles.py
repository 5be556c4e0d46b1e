"""The styles (genre labels) and instruments of the demo world, and which styles are related.

Styles must be audible for an audio model to learn anything, so each one is a full recipe: tempo, register,
scale, note density, instrument mix, accompaniment, drums and room.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INSTRUMENTS: tuple[str, ...] = ("guitar", "violin", "clarinet", "vibraphone", "synth")
"""Melodic instruments, i.e. the instrument labels (plucked, bowed, reed, FM bell, detuned saw lead)."""


def _steps(*positions: int, p: float = 1.0) -> tuple[float, ...]:
    """A 16-step (one 4/4 bar of sixteenths) trigger-probability pattern."""
    return tuple(p if step in positions else 0.0 for step in range(16))


def _every(period: int, offset: int = 0, p: float = 1.0) -> tuple[float, ...]:
    return _steps(*range(offset, 16, period), p=p)


@dataclass(frozen=True)
class Style:
    """What a style sounds like; each field is a distribution or habit that tracks of the style draw from."""

    name: str
    tempo: tuple[float, float]  # BPM range
    root: tuple[int, int]  # MIDI range of the melody's tonic (register)
    scale: tuple[int, ...]  # semitones of the scale degrees
    density: float  # melody onset probability per sixteenth at strong positions
    legato: float  # share of the inter-onset interval a melody note lasts
    instruments: tuple[float, ...]  # weights over INSTRUMENTS for the melody
    accompaniment: str  # "pad" (sustained chords), "arp" (broken chords), "stab" (short chords)
    accompaniment_steps: tuple[int, ...]  # onsets within a bar for "arp" and "stab"
    bass: str  # "root", "walk" or "drone"
    bass_steps: tuple[int, ...]
    kick: tuple[float, ...]
    snare: tuple[float, ...]
    hat: tuple[float, ...]
    hat_decay: float  # seconds; long for a jazz ride, short for a closed hat or shaker
    drum_level: float  # RMS of the drum bus relative to the melody (0: no drums)
    reverb: tuple[float, float]  # wet gain, decay seconds
    echo: float  # gain of a dotted-eighth echo (dub)
    cutoff: float  # low-pass cutoff, Hz (darkness of the mix)
    noise: float  # background hiss relative to the peak
    drive: float  # tanh distortion of melody and accompaniment (0: clean)
    swing: float  # delay of off-beat eighths, in sixteenths
    close: tuple[str, ...]  # related styles (artists drift into them, playlists mix them)


_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)

STYLES: tuple[Style, ...] = (
    Style(
        name="folk", tempo=(84, 112), root=(55, 62), scale=(0, 2, 4, 7, 9), density=0.45, legato=0.9,
        instruments=(0.6, 0.22, 0.12, 0.04, 0.02), accompaniment="arp", accompaniment_steps=(0, 2, 4, 6, 8, 10, 12, 14),
        bass="root", bass_steps=(0, 8), kick=_steps(), snare=_steps(), hat=_every(2, p=0.8), hat_decay=0.04,
        drum_level=0.18, reverb=(0.2, 1.0), echo=0.0, cutoff=5500, noise=0.003, drive=0.0, swing=0.0,
        close=("classical", "jazz"),
    ),
    Style(
        name="techno", tempo=(122, 134), root=(45, 52), scale=_MINOR, density=0.5, legato=0.45,
        instruments=(0.02, 0.03, 0.15, 0.1, 0.7), accompaniment="stab", accompaniment_steps=(3, 6, 11, 14),
        bass="root", bass_steps=(2, 6, 10, 14), kick=_every(4), snare=_steps(4, 12, p=0.9),
        hat=_every(4, 2), hat_decay=0.05, drum_level=0.85, reverb=(0.12, 0.6), echo=0.2, cutoff=11000,
        noise=0.0, drive=0.0, swing=0.0, close=("chiptune", "rock"),
    ),
    Style(
        name="jazz", tempo=(96, 150), root=(53, 62), scale=(0, 2, 3, 5, 7, 9, 10), density=0.5, legato=0.8,
        instruments=(0.18, 0.08, 0.45, 0.25, 0.04), accompaniment="stab", accompaniment_steps=(0, 6, 10),
        bass="walk", bass_steps=(0, 4, 8, 12), kick=_steps(0, p=0.3), snare=_every(2, 2, p=0.15),
        hat=_steps(0, 4, 6, 8, 12, 14, p=0.9), hat_decay=0.25, drum_level=0.35, reverb=(0.22, 1.2), echo=0.0,
        cutoff=6500, noise=0.002, drive=0.0, swing=0.6, close=("folk", "reggae"),
    ),
    Style(
        name="ambient", tempo=(60, 80), root=(62, 72), scale=(0, 2, 4, 6, 7, 9, 11), density=0.12, legato=1.0,
        instruments=(0.05, 0.3, 0.05, 0.35, 0.25), accompaniment="pad", accompaniment_steps=(0,),
        bass="drone", bass_steps=(0,), kick=_steps(), snare=_steps(), hat=_steps(), hat_decay=0.05,
        drum_level=0.0, reverb=(0.65, 3.0), echo=0.0, cutoff=3500, noise=0.008, drive=0.0, swing=0.0,
        close=("classical",),
    ),
    Style(
        name="rock", tempo=(104, 150), root=(50, 57), scale=(0, 3, 5, 7, 10), density=0.6, legato=0.7,
        instruments=(0.6, 0.1, 0.1, 0.05, 0.15), accompaniment="stab", accompaniment_steps=(0, 2, 4, 6, 8, 10, 12, 14),
        bass="root", bass_steps=(0, 2, 4, 6, 8, 10, 12, 14), kick=_steps(0, 8, 10, p=0.95),
        snare=_steps(4, 12), hat=_every(2), hat_decay=0.05, drum_level=0.75, reverb=(0.15, 0.9), echo=0.0,
        cutoff=7000, noise=0.002, drive=4.0, swing=0.0, close=("techno", "folk"),
    ),
    Style(
        name="classical", tempo=(66, 116), root=(60, 69), scale=_MAJOR, density=0.45, legato=0.95,
        instruments=(0.1, 0.6, 0.2, 0.07, 0.03), accompaniment="pad", accompaniment_steps=(0,),
        bass="root", bass_steps=(0, 8), kick=_steps(), snare=_steps(), hat=_steps(), hat_decay=0.05,
        drum_level=0.0, reverb=(0.4, 2.2), echo=0.0, cutoff=5000, noise=0.001, drive=0.0, swing=0.0,
        close=("ambient", "folk"),
    ),
    Style(
        name="reggae", tempo=(68, 88), root=(50, 57), scale=_MINOR, density=0.35, legato=0.6,
        instruments=(0.3, 0.05, 0.3, 0.15, 0.2), accompaniment="stab", accompaniment_steps=(4, 12),
        bass="root", bass_steps=(0, 3, 6, 10), kick=_steps(8), snare=_steps(8), hat=_every(2, p=0.9),
        hat_decay=0.04, drum_level=0.6, reverb=(0.25, 1.2), echo=0.35, cutoff=6000, noise=0.002, drive=0.0,
        swing=0.0, close=("jazz", "techno"),
    ),
    Style(
        name="chiptune", tempo=(140, 172), root=(67, 76), scale=_MAJOR, density=0.8, legato=0.5,
        instruments=(0.03, 0.02, 0.65, 0.05, 0.25), accompaniment="arp", accompaniment_steps=tuple(range(16)),
        bass="root", bass_steps=(0, 2, 4, 6, 8, 10, 12, 14), kick=_steps(0, 8), snare=_steps(4, 12),
        hat=_every(1, p=0.7), hat_decay=0.02, drum_level=0.5, reverb=(0.0, 0.1), echo=0.0, cutoff=12000,
        noise=0.0, drive=0.0, swing=0.0, close=("techno", "rock"),
    ),
)  # fmt: skip

STYLE_NAMES: tuple[str, ...] = tuple(style.name for style in STYLES)
"""All style names in order; a world with ``n_styles`` uses the first ``n_styles``."""

PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4), (5, 3, 0, 4), (0, 6, 5, 4))
"""Chord progressions (scale degrees, one chord per bar) a track loops over."""


def close_style(style: int, n_styles: int, rng: np.random.Generator) -> int:
    """A related style present in this world (for artists drifting and playlists mixing)."""
    names = STYLE_NAMES[:n_styles]
    close = [names.index(name) for name in STYLES[style].close if name in names]
    if close:
        return close[0] if len(close) == 1 or rng.random() < 0.7 else close[1]
    return int((style + 1 + rng.integers(n_styles - 1)) % n_styles)
