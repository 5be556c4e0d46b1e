"""A deterministic synthetic music world: audio, listening histories, labels and playlists.

The embedded demo dataset must let the whole workflow (audio -> embeddings -> temporal split -> recommenders
-> metrics) show real effects without downloading anything. Random noise would not do: an audio model can only
beat a popularity baseline if the audio carries information about what people listen to, and a collaborative
model can only beat an audio model if listening carries information the audio does not. So the world has

* **styles** (the genre labels) that are audible: each style is a distribution over tempo, register, scale,
  note density, instrument mix, accompaniment, drums and room (reverb, echo, filtering, noise);
* **instruments** (the instrument labels): the melody of every track is played by one of five synthetic
  instruments (plucked string, bowed string, reed, FM bell, detuned synth lead), louder than the rest;
* **artists** with a main style, a signature instrument and tempo/register habits;
* **users** whose choices mix content affinity (style, instrument, tempo), loyalty to a few artists, the
  favourite artists and tracks of a social cluster (a signal the audio cannot see) and a Zipf-like popularity
  prior, who replay favourites, discover new tracks every month, and start or stop listening at various times;
* **time**: events span ``n_months`` calendar months from ``start_date``; the last month is the evaluation
  month, and ``cold_fraction`` of the tracks are released during it (cold items, heard only after release).

Everything derives from ``options.seed`` through independent child generators per part (catalogue, audio of
each track, users, events, labels, playlists), so changing e.g. ``n_playlists`` leaves the audio and the
listening events untouched, and the same options always give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import soundfile as sf
from scipy import fft
from tqdm.auto import tqdm

from audiorec import tables
from audiorec.config import dataclass_from_mapping
from audiorec.errors import ParameterError

__all__ = [
    "INSTRUMENTS",
    "STYLE_NAMES",
    "TINY",
    "DemoOptions",
    "evaluation_start",
    "fetch",
    "generate_demo_world",
    "world_end",
    "world_start",
]

TINY: dict[str, Any] = {
    "n_tracks": 200,
    "n_users": 120,
    "n_artists": 30,
    "clip_seconds": 3.0,
    "n_playlists": 20,
    "mean_events_per_user": 60.0,
}
"""Options of the tiny world used by the test suite and the workflow's tiny config (a few seconds to build)."""

INSTRUMENTS: tuple[str, ...] = ("guitar", "violin", "clarinet", "vibraphone", "synth")
"""Melodic instruments, i.e. the instrument labels (plucked, bowed, reed, FM bell, detuned saw lead)."""


# --------------------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoOptions:
    """Size and shape of the demo world; every field has a default, the defaults give the full demo.

    Parameters
    ----------
    seed : int
        Root of every random choice; same options -> byte-identical outputs.
    n_tracks, n_users, n_artists : int
        Catalogue and audience sizes.
    n_styles : int
        Number of styles (genre labels), 2 to 8; the first ``n_styles`` of :data:`STYLE_NAMES` are used.
    clip_seconds : float
        Length of every audio clip.
    sample_rate : int
        Sample rate of the FLAC files.
    stereo_fraction : float
        Share of tracks written as stereo (the rest mono), so readers are exercised on both.
    start_date : str
        ISO date (UTC) of the first day of listening.
    n_months : int
        Calendar months spanned by the events; the last one is the evaluation month.
    cold_fraction : float
        Share of tracks released during the evaluation month (cold items).
    mean_events_per_user : float
        Mean number of listening events per user (activity is heavy-tailed around it).
    n_playlists : int
        Number of style-coherent playlists.
    label_split : tuple of float
        Train/val/test fractions of the stratified split of the label tables.
    playlist_length : tuple of int
        Inclusive range of playlist lengths.
    """

    seed: int = 0
    n_tracks: int = 400
    n_users: int = 500
    n_styles: int = 7
    n_artists: int = 80
    clip_seconds: float = 12.0
    sample_rate: int = 22050
    stereo_fraction: float = 0.25
    start_date: str = "2024-01-01"
    n_months: int = 13
    cold_fraction: float = 0.05
    mean_events_per_user: float = 120.0
    n_playlists: int = 150
    label_split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    playlist_length: tuple[int, int] = (8, 30)

    def __post_init__(self) -> None:
        # Config files give lists; store tuples so options stay hashable and compare equal to the defaults.
        object.__setattr__(self, "label_split", tuple(_as_sequence("label_split", self.label_split, 3)))
        object.__setattr__(self, "playlist_length", tuple(_as_sequence("playlist_length", self.playlist_length, 2)))
        _check_int("seed", self.seed, 0)
        _check_int("n_tracks", self.n_tracks, 10)
        _check_int("n_users", self.n_users, 1)
        _check_int("n_styles", self.n_styles, 2, len(_STYLES))
        _check_int("n_artists", self.n_artists, 1)
        _check_float("clip_seconds", self.clip_seconds, 0.5, 600.0)
        _check_int("sample_rate", self.sample_rate, 8000, 192000)
        _check_float("stereo_fraction", self.stereo_fraction, 0.0, 1.0)
        try:
            dt.date.fromisoformat(str(self.start_date))
        except ValueError:
            raise ParameterError(f"start_date must be an ISO date YYYY-MM-DD, got {self.start_date!r}") from None
        _check_int("n_months", self.n_months, 2, 1200)
        _check_float("cold_fraction", self.cold_fraction, 0.0, 0.5)
        _check_float("mean_events_per_user", self.mean_events_per_user, 1.0, 1e6)
        _check_int("n_playlists", self.n_playlists, 0)
        for value in self.label_split:
            _check_float("label_split", value, 0.0, 1.0, shown=self.label_split)
        if abs(sum(self.label_split) - 1.0) > 1e-6 or self.label_split[0] <= 0:
            raise ParameterError(
                f"label_split must be three fractions summing to 1 with a positive train share, "
                f"got {self.label_split!r}"
            )
        low, high = self.playlist_length
        _check_int("playlist_length", low, 1, shown=self.playlist_length)
        _check_int("playlist_length", high, low, shown=self.playlist_length)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> DemoOptions:
        """Build options from a config mapping.

        Raises
        ------
        ParameterError
            On an unknown key (a typo would otherwise silently fall back to a default) or an invalid value;
            the message names the key and the value.
        """
        return dataclass_from_mapping(cls, mapping, "demo dataset options")

    @property
    def n_samples(self) -> int:
        """Samples per clip."""
        return round(self.clip_seconds * self.sample_rate)


def _as_sequence(name: str, value: Any, length: int) -> list[Any]:
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or len(value) != length:
        raise ParameterError(f"{name} must be a sequence of {length} numbers, got {value!r}")
    return list(value)


def _check_int(name: str, value: Any, low: int, high: int | None = None, shown: Any = None) -> None:
    shown = value if shown is None else shown
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {shown!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParameterError(f"{name} must be {bounds}, got {shown!r}")


def _check_float(name: str, value: Any, low: float, high: float, shown: Any = None) -> None:
    shown = value if shown is None else shown
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ParameterError(f"{name} must be a number, got {shown!r}")
    if not (low <= float(value) <= high):
        raise ParameterError(f"{name} must be in [{low}, {high}], got {shown!r}")


# --------------------------------------------------------------------------------------------------------------
# Calendar
# --------------------------------------------------------------------------------------------------------------


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, _days_in_month(year, month + 1)))


def _days_in_month(year: int, month: int) -> int:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return (following - dt.date(year, month, 1)).days


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def world_start(options: DemoOptions) -> dt.datetime:
    """First instant of listening (UTC midnight of ``start_date``)."""
    return _midnight(dt.date.fromisoformat(options.start_date))


def evaluation_start(options: DemoOptions) -> dt.datetime:
    """Start of the last month, the evaluation month: the natural ``test_start`` of a temporal split."""
    return _midnight(_add_months(dt.date.fromisoformat(options.start_date), options.n_months - 1))


def world_end(options: DemoOptions) -> dt.datetime:
    """End (exclusive) of listening: ``start_date`` plus ``n_months`` calendar months."""
    return _midnight(_add_months(dt.date.fromisoformat(options.start_date), options.n_months))


# --------------------------------------------------------------------------------------------------------------
# Styles
# --------------------------------------------------------------------------------------------------------------


def _steps(*positions: int, p: float = 1.0) -> tuple[float, ...]:
    """A 16-step (one 4/4 bar of sixteenths) trigger-probability pattern."""
    return tuple(p if step in positions else 0.0 for step in range(16))


def _every(period: int, offset: int = 0, p: float = 1.0) -> tuple[float, ...]:
    return _steps(*range(offset, 16, period), p=p)


@dataclass(frozen=True)
class _Style:
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

_STYLES: tuple[_Style, ...] = (
    _Style(
        name="folk", tempo=(84, 112), root=(55, 62), scale=(0, 2, 4, 7, 9), density=0.45, legato=0.9,
        instruments=(0.6, 0.22, 0.12, 0.04, 0.02), accompaniment="arp", accompaniment_steps=(0, 2, 4, 6, 8, 10, 12, 14),
        bass="root", bass_steps=(0, 8), kick=_steps(), snare=_steps(), hat=_every(2, p=0.8), hat_decay=0.04,
        drum_level=0.18, reverb=(0.2, 1.0), echo=0.0, cutoff=5500, noise=0.003, drive=0.0, swing=0.0,
        close=("classical", "jazz"),
    ),
    _Style(
        name="techno", tempo=(122, 134), root=(45, 52), scale=_MINOR, density=0.5, legato=0.45,
        instruments=(0.02, 0.03, 0.15, 0.1, 0.7), accompaniment="stab", accompaniment_steps=(3, 6, 11, 14),
        bass="root", bass_steps=(2, 6, 10, 14), kick=_every(4), snare=_steps(4, 12, p=0.9),
        hat=_every(4, 2), hat_decay=0.05, drum_level=0.85, reverb=(0.12, 0.6), echo=0.2, cutoff=11000,
        noise=0.0, drive=0.0, swing=0.0, close=("chiptune", "rock"),
    ),
    _Style(
        name="jazz", tempo=(96, 150), root=(53, 62), scale=(0, 2, 3, 5, 7, 9, 10), density=0.5, legato=0.8,
        instruments=(0.18, 0.08, 0.45, 0.25, 0.04), accompaniment="stab", accompaniment_steps=(0, 6, 10),
        bass="walk", bass_steps=(0, 4, 8, 12), kick=_steps(0, p=0.3), snare=_every(2, 2, p=0.15),
        hat=_steps(0, 4, 6, 8, 12, 14, p=0.9), hat_decay=0.25, drum_level=0.35, reverb=(0.22, 1.2), echo=0.0,
        cutoff=6500, noise=0.002, drive=0.0, swing=0.6, close=("folk", "reggae"),
    ),
    _Style(
        name="ambient", tempo=(60, 80), root=(62, 72), scale=(0, 2, 4, 6, 7, 9, 11), density=0.12, legato=1.0,
        instruments=(0.05, 0.3, 0.05, 0.35, 0.25), accompaniment="pad", accompaniment_steps=(0,),
        bass="drone", bass_steps=(0,), kick=_steps(), snare=_steps(), hat=_steps(), hat_decay=0.05,
        drum_level=0.0, reverb=(0.65, 3.0), echo=0.0, cutoff=3500, noise=0.008, drive=0.0, swing=0.0,
        close=("classical",),
    ),
    _Style(
        name="rock", tempo=(104, 150), root=(50, 57), scale=(0, 3, 5, 7, 10), density=0.6, legato=0.7,
        instruments=(0.6, 0.1, 0.1, 0.05, 0.15), accompaniment="stab", accompaniment_steps=(0, 2, 4, 6, 8, 10, 12, 14),
        bass="root", bass_steps=(0, 2, 4, 6, 8, 10, 12, 14), kick=_steps(0, 8, 10, p=0.95),
        snare=_steps(4, 12), hat=_every(2), hat_decay=0.05, drum_level=0.75, reverb=(0.15, 0.9), echo=0.0,
        cutoff=7000, noise=0.002, drive=4.0, swing=0.0, close=("techno", "folk"),
    ),
    _Style(
        name="classical", tempo=(66, 116), root=(60, 69), scale=_MAJOR, density=0.45, legato=0.95,
        instruments=(0.1, 0.6, 0.2, 0.07, 0.03), accompaniment="pad", accompaniment_steps=(0,),
        bass="root", bass_steps=(0, 8), kick=_steps(), snare=_steps(), hat=_steps(), hat_decay=0.05,
        drum_level=0.0, reverb=(0.4, 2.2), echo=0.0, cutoff=5000, noise=0.001, drive=0.0, swing=0.0,
        close=("ambient", "folk"),
    ),
    _Style(
        name="reggae", tempo=(68, 88), root=(50, 57), scale=_MINOR, density=0.35, legato=0.6,
        instruments=(0.3, 0.05, 0.3, 0.15, 0.2), accompaniment="stab", accompaniment_steps=(4, 12),
        bass="root", bass_steps=(0, 3, 6, 10), kick=_steps(8), snare=_steps(8), hat=_every(2, p=0.9),
        hat_decay=0.04, drum_level=0.6, reverb=(0.25, 1.2), echo=0.35, cutoff=6000, noise=0.002, drive=0.0,
        swing=0.0, close=("jazz", "techno"),
    ),
    _Style(
        name="chiptune", tempo=(140, 172), root=(67, 76), scale=_MAJOR, density=0.8, legato=0.5,
        instruments=(0.03, 0.02, 0.65, 0.05, 0.25), accompaniment="arp", accompaniment_steps=tuple(range(16)),
        bass="root", bass_steps=(0, 2, 4, 6, 8, 10, 12, 14), kick=_steps(0, 8), snare=_steps(4, 12),
        hat=_every(1, p=0.7), hat_decay=0.02, drum_level=0.5, reverb=(0.0, 0.1), echo=0.0, cutoff=12000,
        noise=0.0, drive=0.0, swing=0.0, close=("techno", "rock"),
    ),
)  # fmt: skip

STYLE_NAMES: tuple[str, ...] = tuple(style.name for style in _STYLES)
"""All style names in order; a world with ``n_styles`` uses the first ``n_styles``."""

_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4), (5, 3, 0, 4), (0, 6, 5, 4))
_METRIC = np.array([1.0, 0.3, 0.6, 0.3, 0.85, 0.3, 0.6, 0.3, 0.95, 0.3, 0.6, 0.3, 0.85, 0.3, 0.6, 0.3])

# Independent streams: a child per part, keyed by these constants (never renumber them).
_CATALOGUE, _AUDIO, _USERS, _EVENTS, _LABELS, _PLAYLISTS = range(6)


def _rng(options: DemoOptions, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(options.seed, spawn_key=key))


# --------------------------------------------------------------------------------------------------------------
# Catalogue: artists and tracks
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalogue:
    """Per-track and per-artist attributes (arrays indexed by track or artist number)."""

    style_share: np.ndarray  # (n_styles,) catalogue share each style is drawn with
    artist_style: np.ndarray
    artist_log_pop: np.ndarray
    style: np.ndarray
    instrument: np.ndarray
    accompaniment_instrument: np.ndarray
    artist: np.ndarray
    tempo: np.ndarray
    root: np.ndarray
    progression: np.ndarray
    cutoff: np.ndarray
    stereo: np.ndarray
    gain: np.ndarray
    log_pop: np.ndarray  # Zipf-like popularity prior (log scale)
    release_s: np.ndarray  # release instant, seconds since the epoch (UTC midnight)


def _close_style(style: int, n_styles: int, rng: np.random.Generator) -> int:
    """A related style present in this world (for artists drifting and playlists mixing)."""
    names = STYLE_NAMES[:n_styles]
    close = [names.index(name) for name in _STYLES[style].close if name in names]
    if close:
        return close[0] if len(close) == 1 or rng.random() < 0.7 else close[1]
    return int((style + 1 + rng.integers(n_styles - 1)) % n_styles)


def _catalogue(options: DemoOptions) -> _Catalogue:
    rng = _rng(options, _CATALOGUE)
    n_styles, n_artists, n_tracks = options.n_styles, options.n_artists, options.n_tracks
    styles = _STYLES[:n_styles]
    style_share = rng.dirichlet(np.full(n_styles, 10.0))

    # Artists: every style gets one before the rest are drawn by style share.
    artist_style = rng.choice(n_styles, size=n_artists, p=style_share)
    first = min(n_styles, n_artists)
    artist_style[:first] = rng.permutation(n_styles)[:first]
    artist_style = rng.permutation(artist_style)
    artist_instrument = np.array(
        [rng.choice(len(INSTRUMENTS), p=_normalised(styles[s].instruments)) for s in artist_style]
    )
    artist_tempo = rng.normal(0.0, 5.0, n_artists)
    artist_register = rng.integers(-3, 4, n_artists)
    artist_log_pop = -0.9 * np.log1p(rng.permutation(n_artists))

    # Tracks: every artist gets one before the rest are drawn, prolific artists more often.
    artist_weight = _normalised(np.exp(0.5 * artist_log_pop) + 0.3)
    artist = rng.choice(n_artists, size=n_tracks, p=artist_weight)
    first = min(n_artists, n_tracks)
    artist[:first] = rng.permutation(n_artists)[:first]
    artist = rng.permutation(artist)

    style = artist_style[artist].copy()
    drifted = rng.random(n_tracks) < 0.12
    for t in np.flatnonzero(drifted):
        style[t] = _close_style(int(style[t]), n_styles, rng)
    signature = rng.random(n_tracks) < 0.5
    instrument = np.empty(n_tracks, dtype=np.int64)
    accompaniment_instrument = np.empty(n_tracks, dtype=np.int64)
    tempo = np.empty(n_tracks)
    root = np.empty(n_tracks, dtype=np.int64)
    cutoff = np.empty(n_tracks)
    for t in range(n_tracks):
        s = styles[style[t]]
        weights = np.asarray(s.instruments, dtype=float)
        instrument[t] = (
            artist_instrument[artist[t]] if signature[t] else rng.choice(len(weights), p=weights / weights.sum())
        )
        weights = weights.copy()
        weights[instrument[t]] = 0.0
        accompaniment_instrument[t] = rng.choice(len(weights), p=weights / weights.sum())
        tempo[t] = np.clip(rng.uniform(*s.tempo) + artist_tempo[artist[t]], 50.0, 200.0)
        root[t] = rng.integers(s.root[0], s.root[1] + 1) + artist_register[artist[t]]
        cutoff[t] = s.cutoff * math.exp(rng.normal(0.0, 0.15))
    tempo = np.round(tempo, 1)
    progression = rng.integers(len(_PROGRESSIONS), size=n_tracks)
    stereo = np.zeros(n_tracks, dtype=bool)
    stereo[rng.choice(n_tracks, size=round(options.stereo_fraction * n_tracks), replace=False)] = True
    gain = 0.9 + rng.uniform(-0.04, 0.04, n_tracks)
    log_pop = 0.6 * artist_log_pop[artist] - 0.7 * np.log1p(rng.permutation(n_tracks))

    # Release dates (UTC midnights): cold tracks early in the evaluation month (so they get heard), the rest
    # mostly before the world starts, the others spread over the months before the evaluation month.
    start, eval_start = world_start(options), evaluation_start(options)
    last_month_days = (world_end(options) - eval_start).days
    n_cold = round(options.cold_fraction * n_tracks)
    cold = np.zeros(n_tracks, dtype=bool)
    cold[rng.choice(n_tracks, size=n_cold, replace=False)] = True
    warm_days = (eval_start - start).days
    pre_world = rng.random(n_tracks) < 0.6
    warm = np.flatnonzero(~cold)
    pre_world[warm[0]] = True  # something is always released before the first listen
    day = np.where(pre_world, -rng.integers(1, 5 * 365, n_tracks), rng.integers(0, warm_days, n_tracks))
    day[cold] = warm_days + rng.integers(0, max(1, round(0.6 * last_month_days)), n_cold)
    release_s = int(start.timestamp()) + day.astype(np.int64) * 86400

    return _Catalogue(
        style_share=style_share, artist_style=artist_style, artist_log_pop=artist_log_pop, style=style,
        instrument=instrument, accompaniment_instrument=accompaniment_instrument, artist=artist, tempo=tempo,
        root=root, progression=progression, cutoff=cutoff, stereo=stereo, gain=gain, log_pop=log_pop,
        release_s=release_s,
    )  # fmt: skip


def _normalised(weights: Any) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


# --------------------------------------------------------------------------------------------------------------
# Audio synthesis (vectorised: a few array operations per voice, no per-sample Python)
# --------------------------------------------------------------------------------------------------------------

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
        result[name] = _frozen(np.concatenate([row / np.max(np.abs(row)) for row in rows]).astype(np.float32))
    return result


def _frozen(array: np.ndarray) -> np.ndarray:
    """Make a cached array read-only, so no caller can corrupt what later tracks are built from."""
    array.flags.writeable = False
    return array


@functools.cache
def _noise_buffer() -> np.ndarray:
    """A fixed block of white noise; slices at seeded offsets are far cheaper than fresh Gaussian draws."""
    return _frozen(np.random.default_rng(0x5EED).standard_normal(_NOISE_LENGTH, dtype=np.float32))


def _noise(rng: np.random.Generator, length: int) -> np.ndarray:
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
    return _frozen(np.array(shapes[name](), dtype=np.float32))


_RELEASE_S = {"guitar": 0.05, "violin": 0.08, "clarinet": 0.05, "vibraphone": 0.3, "synth": 0.06, "bass": 0.05}
_TABLE_OF = {"violin": "saw", "clarinet": "square", "synth": "saw", "bass": "bass", "vibraphone": "sine"}


@dataclass
class _Notes:
    """A line of notes or chords: onsets and durations in samples, frequencies (notes, tones) in Hz."""

    onsets: np.ndarray
    durations: np.ndarray
    freqs: np.ndarray
    amps: np.ndarray

    def __post_init__(self) -> None:
        freqs = np.asarray(self.freqs, dtype=float)
        self.freqs = freqs[:, None] if freqs.ndim == 1 else freqs


def _clock(notes: _Notes, n: int) -> tuple[_Notes, np.ndarray, np.ndarray, np.ndarray]:
    """Map every sample to its sounding note: note index, samples since onset, samples until the next onset.

    Onsets are made strictly increasing and a silent note is put at sample 0 when the line starts later, so
    each sample belongs to exactly one note and a whole voice renders in a few array operations.
    """
    onsets, first = np.unique(np.clip(notes.onsets.astype(np.int64), 0, n - 1), return_index=True)
    notes = _Notes(onsets, notes.durations[first], notes.freqs[first], notes.amps[first])
    if onsets.size == 0 or onsets[0] > 0:
        tones = notes.freqs.shape[1]
        notes = _Notes(
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
    return table[row_offset + ((phase >> (_PHASE_BITS - _TABLE_BITS)) & (_TABLE_SIZE - 1))]


def _render(instrument: str, notes: _Notes, n: int, sr: int) -> np.ndarray:
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


def _render_drums(
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
            variants = [
                _noise(rng, size) * _curve("snare", size, sr) + _curve("snare_tone", size, sr) for _ in range(4)
            ]
        else:
            variants = [np.diff(_noise(rng, size + 1)) * hat_envelope for _ in range(4)]
        choice = rng.integers(len(variants), size=onsets.size)
        for onset, amp, variant in zip(onsets.tolist(), (gain * amps).tolist(), choice.tolist(), strict=True):
            span = min(size, n - onset)
            kit[onset : onset + span] += np.float32(amp) * variants[variant][:span]
    return kit


def _midi_hz(midi: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _degree_semitones(degrees: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
    octave, step = np.divmod(np.asarray(degrees, dtype=np.int64), len(scale))
    return 12 * octave + np.asarray(scale)[step]


@dataclass
class _Score:
    melody: _Notes
    accompaniment: _Notes
    bass: _Notes
    drums: dict[str, tuple[np.ndarray, np.ndarray]]


def _score(options: DemoOptions, catalogue: _Catalogue, track: int, rng: np.random.Generator) -> _Score:
    """The notes of one track: a repeated two-bar melodic phrase over a chord progression, bass and drums."""
    style = _STYLES[catalogue.style[track]]
    n = options.n_samples
    step_samples = options.sample_rate * 60.0 / catalogue.tempo[track] / 4.0
    n_steps = math.ceil(n / step_samples) + 1
    steps = np.arange(n_steps)
    swing = np.where(steps % 4 == 2, style.swing * step_samples, 0.0)
    onset_of = np.round(steps * step_samples + swing).astype(np.int64)
    audible = onset_of < n
    progression = np.asarray(_PROGRESSIONS[catalogue.progression[track]])
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
    melody = _Notes(
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
    accompaniment = _Notes(
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
    bass = _Notes(
        onset_of[hit],
        np.full(hit.size, (16.0 if style.bass == "drone" else 0.9 * spacing) * step_samples),
        _midi_hz(np.maximum(root - 24 + _degree_semitones(bass_degree, style.scale), 28)),
        rng.uniform(0.8, 1.0, hit.size),
    )

    drums = {}
    for kind, trigger in (("kick", style.kick), ("snare", style.snare), ("hat", style.hat)):
        fire = (rng.random(n_steps) < np.asarray(trigger)[steps % 16]) & audible
        drums[kind] = (onset_of[fire], rng.uniform(0.6, 1.0, int(fire.sum())))
    return _Score(melody, accompaniment, bass, drums)


def _pan(voice: np.ndarray, position: float, stereo: bool) -> np.ndarray:
    """Constant-power pan of a mono voice to (channels, n)."""
    if not stereo:
        return voice[None, :]
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([np.float32(math.cos(angle)) * voice, np.float32(math.sin(angle)) * voice])


def _rms_to(voice: np.ndarray, target: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(voice, dtype=np.float64))))
    return voice * np.float32(target / rms) if rms > 1e-9 else voice


@functools.lru_cache(maxsize=32)
def _room_response(style: int, channel: int, size: int, sr: int) -> np.ndarray:
    """Spectrum of a style's reverb (exponentially decaying noise), one decorrelated response per channel."""
    _, decay = _STYLES[style].reverb
    length = max(1, round(decay * sr))
    rng = np.random.default_rng(np.random.SeedSequence(0x5EED, spawn_key=(style, channel)))
    response = rng.standard_normal(length).astype(np.float32) * np.exp(-6.9 * np.arange(length) / length)
    response /= np.sqrt(np.sum(np.square(response)))
    return _frozen(fft.rfft(response.astype(np.float32), size))


def _room(mix: np.ndarray, style_index: int, cutoff: float, wet: float, sr: int) -> np.ndarray:
    """Low-pass colour and reverb tail applied together in the frequency domain (one FFT pair per channel)."""
    n = mix.shape[-1]
    _, decay = _STYLES[style_index].reverb
    size = fft.next_fast_len(n + (round(decay * sr) if wet > 0 else 0), real=True)
    spectrum = fft.rfft(mix, size, axis=-1)
    frequency = np.fft.rfftfreq(size, 1.0 / sr)
    spectrum *= (1.0 / np.sqrt(1.0 + (frequency / cutoff) ** 4)).astype(np.float32)
    if wet > 0:
        responses = np.stack([_room_response(style_index, c, size, sr) for c in range(mix.shape[0])])
        spectrum *= 1.0 + np.float32(wet) * responses
    return fft.irfft(spectrum, size, axis=-1)[:, :n].astype(np.float32)


def _synthesise(options: DemoOptions, catalogue: _Catalogue, track: int) -> np.ndarray:
    """The clip of one track as int16 samples, shape (n, channels)."""
    rng = _rng(options, _AUDIO, track)
    style_index = int(catalogue.style[track])
    style = _STYLES[style_index]
    sr, n = options.sample_rate, options.n_samples
    stereo = bool(catalogue.stereo[track])
    score = _score(options, catalogue, track, rng)

    def drive(voice: np.ndarray) -> np.ndarray:
        if style.drive <= 0:
            return voice
        voice = voice / np.float32(max(float(np.max(np.abs(voice))), 1e-9))
        return np.tanh(np.float32(style.drive) * voice) / np.float32(math.tanh(style.drive))

    # Loudness by RMS: the melody (the instrument label) clearly dominates every other melodic voice.
    melody = _render(INSTRUMENTS[catalogue.instrument[track]], score.melody, n, sr)
    mix = _pan(_rms_to(drive(melody), 1.0), rng.uniform(-0.25, 0.25), stereo)
    accompaniment = _render(INSTRUMENTS[catalogue.accompaniment_instrument[track]], score.accompaniment, n, sr)
    mix = mix + _pan(_rms_to(drive(accompaniment), 0.3), rng.uniform(-0.6, 0.6), stereo)
    mix = mix + _pan(_rms_to(_render("bass", score.bass, n, sr), 0.5), 0.0, stereo)
    if style.drum_level > 0:
        kit = _render_drums(score.drums, style.hat_decay, n, sr, rng)
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
        hiss = np.stack([_noise(rng, n) for _ in range(mix.shape[0])])
        mix += np.float32(style.noise * float(np.max(np.abs(mix)))) * hiss
    scaled = mix * np.float32(catalogue.gain[track] / max(float(np.max(np.abs(mix))), 1e-9))
    return np.round(scaled.T * np.float32(32767.0)).astype(np.int16)


def _write_flac(samples: np.ndarray, path: Path, sample_rate: int) -> None:
    with tables.atomic_path(path) as tmp:
        # The temporary name ends in ".tmp", so the format must be given rather than inferred.
        sf.write(tmp, samples, sample_rate, format="FLAC", subtype="PCM_16")


# --------------------------------------------------------------------------------------------------------------
# Users and listening events
# --------------------------------------------------------------------------------------------------------------


def _events(options: DemoOptions, catalogue: _Catalogue) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Listening events as (user index, track index, seconds since the epoch), unsorted.

    Each user weighs every track by a product of content affinity (style taste, instrument preference,
    tempo preference), collaborative factors (favourite artists; the favourite artists, favourite tracks and
    latent liking of every track shared by the user's social cluster) and a popularity prior raised to the
    user's popularity bias. Those weights fix
    a personal *discovery order* (a weighted random permutation, drawn with the Gumbel-top-k trick). Events
    come in sessions; each event either replays an earlier listen (recent ones more often, so favourites
    accumulate plays) or discovers the next track of the discovery order that is already released
    (sometimes restricted to the last 45 days of releases). Discoveries are therefore new (user, track)
    pairs at every point of time, including the evaluation month, and follow the user's taste.
    """
    rng_users = _rng(options, _USERS)
    rng = _rng(options, _EVENTS)
    n_users, n_tracks, n_styles = options.n_users, options.n_tracks, options.n_styles
    n_artists = options.n_artists

    # Social clusters: a style profile, a few favourite artists and tracks shared by their members.
    n_clusters = max(2, round(n_users / 25))
    cluster_profile = np.stack([_concentrated_taste(rng_users, catalogue.style_share, 0.0) for _ in range(n_clusters)])
    artist_pop = np.exp(catalogue.artist_log_pop)
    track_pop = np.exp(catalogue.log_pop)
    cluster_artists = np.zeros((n_clusters, n_artists), dtype=bool)
    cluster_tracks = np.zeros((n_clusters, n_tracks), dtype=bool)
    for c in range(n_clusters):
        weights = _normalised(cluster_profile[c][catalogue.artist_style] * np.sqrt(artist_pop) + 1e-9)
        count = min(n_artists, int(rng_users.integers(3, 7)))
        cluster_artists[c, rng_users.choice(n_artists, size=count, replace=False, p=weights)] = True
        weights = _normalised(cluster_profile[c][catalogue.style] * track_pop**0.3 + 1e-9)
        count = min(n_tracks, int(rng_users.integers(6, 13)))
        cluster_tracks[c, rng_users.choice(n_tracks, size=count, replace=False, p=weights)] = True
    user_cluster = rng_users.choice(n_clusters, size=n_users, p=rng_users.dirichlet(np.full(n_clusters, 2.0)))
    # A latent per-cluster liking of every track: word of mouth, scenes, shared playlists - no audio cue.
    cluster_affinity = rng_users.normal(0.0, 1.3, (n_clusters, n_tracks))

    style_centre = np.array([np.mean(style.tempo) for style in _STYLES[:n_styles]])
    start_s = int(world_start(options).timestamp())
    eval_s = int(evaluation_start(options).timestamp())
    end_s = int(world_end(options).timestamp())
    span = eval_s - start_s
    mu = math.log(options.mean_events_per_user) - 0.5 * 0.9**2
    n_events = np.clip(np.round(rng_users.lognormal(mu, 0.9, n_users)), 3, 15 * options.mean_events_per_user)

    users, tracks, times = [], [], []
    for u in range(n_users):
        c = user_cluster[u]
        taste = _concentrated_taste(rng_users, 0.7 * cluster_profile[c] + 0.3 * catalogue.style_share, 0.02)
        instrument_pref = rng_users.dirichlet(np.full(len(INSTRUMENTS), 1.2))
        tempo_pref = float(taste @ style_centre + rng_users.normal(0.0, 8.0))
        tempo_sd = rng_users.uniform(15.0, 35.0)
        pop_bias = rng_users.uniform(0.5, 1.3)
        fav_weights = _normalised(taste[catalogue.artist_style] * np.sqrt(artist_pop))
        n_favourites = min(n_artists, int(rng_users.integers(1, 4)))
        favourites = rng_users.choice(n_artists, size=n_favourites, replace=False, p=fav_weights)
        repeat_p = rng_users.beta(2.5, 2.5)
        recent_p = rng_users.uniform(0.05, 0.3)
        join = start_s + (int(rng_users.integers(0, int(0.9 * span))) if rng_users.random() < 0.3 else 0)
        churn_latest = eval_s - 2 * 86400
        churns = rng_users.random() < 0.12 and join + span // 5 < churn_latest
        stop = int(rng_users.integers(join + span // 5, churn_latest)) if churns else end_s

        log_w = (
            np.log(taste[catalogue.style])
            + 0.6 * np.log(instrument_pref[catalogue.instrument] * len(INSTRUMENTS))
            - 0.25 * ((catalogue.tempo - tempo_pref) / tempo_sd) ** 2
            + pop_bias * catalogue.log_pop
            + np.log(7.0) * np.isin(catalogue.artist, favourites)
            + np.log(4.0) * cluster_artists[c][catalogue.artist]
            + np.log(9.0) * cluster_tracks[c]
            + cluster_affinity[c]
        )

        # Sessions of a few back-to-back listens at random times of the user's active period.
        count = int(n_events[u])
        n_sessions = max(1, round(count / (1 + rng.poisson(2.5))))
        session_start = rng.integers(join, max(join + 1, stop - 3600), n_sessions)
        session = np.sort(rng.integers(0, n_sessions, count))
        length = rng.integers(120, 360, count)
        elapsed = np.cumsum(length) - length
        first = np.searchsorted(session, session, side="left")
        time = np.sort(session_start[session] + elapsed - elapsed[first])
        time = time[time < end_s]
        count = time.size
        if count == 0:
            continue
        repeat = (rng.random(count) < repeat_p) & (np.arange(count) > 0)
        recent = rng.random(count) < recent_p
        choice = _discoveries(log_w, catalogue.release_s, start_s, time, ~repeat, recent, rng)

        # Replays: an earlier listen (uniformly, or one of the last few), followed back to its discovery.
        reference = np.arange(count)
        back = np.where(
            rng.random(count) < 0.5,
            (rng.random(count) * reference).astype(np.int64),
            reference - np.minimum(rng.geometric(0.3, count), np.maximum(reference, 1)),
        )
        reference = np.where(repeat, np.maximum(back, 0), reference)
        while True:
            followed = np.where(repeat[reference], reference[reference], reference)
            if np.array_equal(followed, reference):
                break
            reference = followed
        users.append(np.full(count, u))
        tracks.append(choice[reference])
        times.append(time)
    if not users:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(users), np.concatenate(tracks), np.concatenate(times)


def _discoveries(
    log_weight: np.ndarray,
    release_s: np.ndarray,
    start_s: int,
    time: np.ndarray,
    discover: np.ndarray,
    recent: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tracks discovered at the events flagged ``discover`` (other entries are -1), never before release.

    A discovery takes the first track of the user's weighted random order that the user knows of and has
    not heard yet; a ``recent`` discovery prefers tracks released in the previous 45 days. A user learns of
    a track released during the world some time after its release (exponential, 40 days on average), so
    new releases reach their audience gradually rather than all at once. Only the head of the order can be
    reached, so only that is materialised; when it runs dry (a very heavy listener), a track is drawn by
    weight from everything released, which may be a track heard before.
    """
    n_tracks = log_weight.size
    choice = np.full(time.size, -1, dtype=np.int64)
    keys = log_weight + rng.gumbel(size=n_tracks)
    events = np.flatnonzero(discover)
    head = min(n_tracks, 4 * events.size + 50)
    candidates = np.argpartition(-keys, head - 1)[:head] if head < n_tracks else np.arange(n_tracks)
    candidates = candidates[np.argsort(-keys[candidates], kind="stable")]
    released_at = release_s[candidates]
    delay = np.where(released_at < start_s, 0, np.round(rng.exponential(40 * 86400, head)).astype(np.int64))
    known_at = released_at + delay
    taken = np.zeros(head, dtype=bool)
    weight = np.exp(log_weight - log_weight.max())
    fallback_draw = rng.random(events.size)
    for number, event in enumerate(events.tolist()):
        available = ~taken & (known_at <= time[event])
        if recent[event]:
            fresh = available & (released_at > time[event] - 45 * 86400)
            if fresh.any():
                available = fresh
        first = int(np.argmax(available))
        if available[first]:
            taken[first] = True
            choice[event] = candidates[first]
        else:
            released = np.flatnonzero(release_s <= time[event])
            cumulative = np.cumsum(weight[released])
            position = np.searchsorted(cumulative, fallback_draw[number] * cumulative[-1], side="right")
            choice[event] = released[min(position, released.size - 1)]
    return choice


def _concentrated_taste(rng: np.random.Generator, base: np.ndarray, floor: float) -> np.ndarray:
    """A taste over styles concentrated on 1-3 styles drawn from ``base``, plus a ``floor`` for exploring."""
    n_styles = base.size
    k = min(n_styles, int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2])))
    chosen = rng.choice(n_styles, size=k, replace=False, p=_normalised(base))
    taste = np.full(n_styles, floor)
    taste[chosen] += rng.dirichlet(np.full(k, 2.0))
    return taste / taste.sum()


# --------------------------------------------------------------------------------------------------------------
# Labels and playlists
# --------------------------------------------------------------------------------------------------------------


def _stratified_split(labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Assign train/val/test per class with the requested fractions (rounded per class)."""
    split = np.empty(labels.size, dtype=object)
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n_train = max(1, round(fractions[0] * members.size))
        n_val = min(members.size - n_train, round(fractions[1] * members.size))
        split[members[:n_train]] = "train"
        split[members[n_train : n_train + n_val]] = "val"
        split[members[n_train + n_val :]] = "test"
    return split


def _playlists(options: DemoOptions, catalogue: _Catalogue) -> tuple[list[int], list[int], list[int]]:
    """Playlists built around one style and a tempo (mood), sometimes blended with a related style."""
    rng = _rng(options, _PLAYLISTS)
    pop = np.exp(catalogue.log_pop)
    playlist_ids, track_ids, positions = [], [], []
    low, high = options.playlist_length
    present = np.bincount(catalogue.style, minlength=options.n_styles) > 0
    for p in range(options.n_playlists):
        main = int(rng.choice(options.n_styles, p=_normalised(catalogue.style_share * present)))
        length = int(rng.integers(low, high + 1))
        second = _close_style(main, options.n_styles, rng) if rng.random() < 0.35 else None
        n_main = length if second is None else round(rng.uniform(0.7, 0.9) * length)
        in_main = np.flatnonzero(catalogue.style == main)
        mood = float(catalogue.tempo[rng.choice(in_main)])
        chosen: list[int] = []
        for style, count in ((main, n_main), (second, length - n_main)):
            if style is None or count <= 0:
                continue
            members = np.flatnonzero((catalogue.style == style) & ~np.isin(np.arange(options.n_tracks), chosen))
            count = min(count, members.size)
            weights = np.sqrt(pop[members]) * np.exp(-0.5 * ((catalogue.tempo[members] - mood) / 15.0) ** 2) + 1e-12
            chosen.extend(rng.choice(members, size=count, replace=False, p=_normalised(weights)).tolist())
        order = rng.permutation(len(chosen))
        playlist_ids.extend([p] * len(chosen))
        track_ids.extend(np.asarray(chosen)[order].tolist())
        positions.extend(range(len(chosen)))
    return playlist_ids, track_ids, positions


# --------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------


def _ids(prefix: str, count: int) -> np.ndarray:
    width = max(4, len(str(count)))
    return np.array([f"{prefix}{i + 1:0{width}d}" for i in range(count)], dtype=object)


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000, type=tables.UTC_TIMESTAMP)


def generate_demo_world(options: DemoOptions, out_dir: str | Path, progress: bool = True) -> None:
    """Generate the demo world into ``out_dir``.

    Writes (all tables atomically, with :func:`audiorec.tables.write_table`)

    * ``tracks.parquet`` (kind ``tracks``): ``track_id``, ``audio_path`` (relative to ``out_dir``, e.g.
      ``audio/t0001.flac``), ``duration_s``, plus ``style``, ``instrument``, ``artist_id``,
      ``release_date`` (timestamp[us, UTC]) and ``tempo_bpm``;
    * ``interactions.parquet`` (kind ``interactions``): one row per listening event, sorted by
      (``timestamp``, ``user_id``, ``track_id``); no event precedes its track's release;
    * ``labels/genre.parquet`` and ``labels/instrument.parquet`` (kind ``labels``) with a fixed seeded
      stratified ``split`` column (``train``/``val``/``test``);
    * ``playlists.parquet`` (kind ``playlists``);
    * ``audio/<track_id>.flac``: 16-bit FLAC at ``options.sample_rate``, mono or stereo.

    The tracks and interactions tables carry file metadata (:func:`audiorec.tables.read_metadata`)
    ``{"source": "demo", "evaluation_start": ..., "world_end": ...}`` (ISO instants, UTC): the start of the
    last month, the natural ``test_start`` of a temporal split (also :func:`evaluation_start`), and the end
    of the listening period.

    Parameters
    ----------
    options : DemoOptions
        Size and shape of the world; same options give byte-identical files.
    out_dir : str or Path
        Destination folder (created if needed).
    progress : bool
        Show a progress bar over tracks during synthesis.
    """
    if not isinstance(options, DemoOptions):
        raise ParameterError(f"options must be DemoOptions, got {type(options).__name__}")
    out_dir = Path(out_dir)
    catalogue = _catalogue(options)
    track_ids = _ids("t", options.n_tracks)
    audio_paths = [f"audio/{track_id}.flac" for track_id in track_ids]
    for track in tqdm(range(options.n_tracks), desc="demo audio", unit="track", disable=not progress):
        _write_flac(_synthesise(options, catalogue, track), out_dir / audio_paths[track], options.sample_rate)

    # Only what depends on the calendar, so that e.g. a new n_playlists leaves these files byte-identical.
    metadata = {
        "source": "demo",
        "evaluation_start": evaluation_start(options).isoformat(),
        "world_end": world_end(options).isoformat(),
    }
    style_names = np.array(STYLE_NAMES, dtype=object)[catalogue.style]
    instrument_names = np.array(INSTRUMENTS, dtype=object)[catalogue.instrument]
    tracks_table = pa.table(
        {
            "track_id": pa.array(track_ids.tolist(), type=pa.string()),
            "audio_path": pa.array(audio_paths, type=pa.string()),
            "duration_s": pa.array(np.full(options.n_tracks, options.n_samples / options.sample_rate, np.float32)),
            "style": pa.array(style_names.tolist(), type=pa.string()),
            "instrument": pa.array(instrument_names.tolist(), type=pa.string()),
            "artist_id": pa.array(_ids("a", options.n_artists)[catalogue.artist].tolist(), type=pa.string()),
            "release_date": _timestamps(catalogue.release_s),
            "tempo_bpm": pa.array(catalogue.tempo.astype(np.float32)),
        }
    )
    tables.write_table(tracks_table, out_dir / "tracks.parquet", kind="tracks", metadata=metadata)

    user, track, seconds = _events(options, catalogue)
    interactions = pl.from_arrow(
        pa.table(
            {
                "user_id": pa.array(_ids("u", options.n_users)[user].tolist(), type=pa.string()),
                "track_id": pa.array(track_ids[track].tolist(), type=pa.string()),
                "timestamp": _timestamps(seconds),
            }
        )
    ).sort(["timestamp", "user_id", "track_id"], maintain_order=True)
    tables.write_table(interactions, out_dir / "interactions.parquet", kind="interactions", metadata=metadata)

    for number, (task, values) in enumerate((("genre", style_names), ("instrument", instrument_names))):
        split = _stratified_split(values, options.label_split, _rng(options, _LABELS, number))
        labels = pa.table(
            {
                "track_id": pa.array(track_ids.tolist(), type=pa.string()),
                "label": pa.array(values.tolist(), type=pa.string()),
                "split": pa.array(split.tolist(), type=pa.string()),
            }
        )
        tables.write_table(labels, out_dir / "labels" / f"{task}.parquet", kind="labels")

    playlist, member, position = _playlists(options, catalogue)
    playlists = pa.table(
        {
            "playlist_id": pa.array(
                _ids("p", options.n_playlists)[np.asarray(playlist, dtype=np.int64)].tolist(), type=pa.string()
            ),
            "track_id": pa.array(track_ids[np.asarray(member, dtype=np.int64)].tolist(), type=pa.string()),
            "position": pa.array(position, type=pa.int32()),
        }
    )
    tables.write_table(playlists, out_dir / "playlists.parquet", kind="playlists")


def fetch(options: Mapping[str, Any] | None, out_dir: str | Path, progress: bool = True) -> None:
    """Dataset-source entry point: build :class:`DemoOptions` from a config mapping and generate the world.

    Raises
    ------
    ParameterError
        On an unknown option or an invalid value (see :meth:`DemoOptions.from_mapping`).
    """
    generate_demo_world(DemoOptions.from_mapping(options), out_dir, progress=progress)
