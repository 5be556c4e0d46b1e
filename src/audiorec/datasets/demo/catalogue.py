"""The catalogue of the demo world: artists and the attributes of every track, release dates included."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiorec.datasets.demo.options import CATALOGUE_STREAM, DemoOptions, child_rng
from audiorec.datasets.demo.styles import INSTRUMENTS, PROGRESSIONS, STYLES, close_style
from audiorec.datasets.demo.timeline import evaluation_start, world_end, world_start


@dataclass(frozen=True)
class Catalogue:
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


def build_catalogue(options: DemoOptions) -> Catalogue:
    """Draw artists, then tracks: artists have habits (style, instrument, tempo, register) their tracks follow."""
    rng = child_rng(options, CATALOGUE_STREAM)
    n_styles, n_artists, n_tracks = options.n_styles, options.n_artists, options.n_tracks
    styles = STYLES[:n_styles]
    style_share = rng.dirichlet(np.full(n_styles, 10.0))

    # Artists: every style gets one before the rest are drawn by style share.
    artist_style = rng.choice(n_styles, size=n_artists, p=style_share)
    first = min(n_styles, n_artists)
    artist_style[:first] = rng.permutation(n_styles)[:first]
    artist_style = rng.permutation(artist_style)
    artist_instrument = np.array(
        [rng.choice(len(INSTRUMENTS), p=normalised(styles[s].instruments)) for s in artist_style]
    )
    artist_tempo = rng.normal(0.0, 5.0, n_artists)
    artist_register = rng.integers(-3, 4, n_artists)
    artist_log_pop = -0.9 * np.log1p(rng.permutation(n_artists))

    # Tracks: every artist gets one before the rest are drawn, prolific artists more often.
    artist_weight = normalised(np.exp(0.5 * artist_log_pop) + 0.3)
    artist = rng.choice(n_artists, size=n_tracks, p=artist_weight)
    first = min(n_artists, n_tracks)
    artist[:first] = rng.permutation(n_artists)[:first]
    artist = rng.permutation(artist)

    style = artist_style[artist].copy()
    drifted = rng.random(n_tracks) < 0.12
    for t in np.flatnonzero(drifted):
        style[t] = close_style(int(style[t]), n_styles, rng)
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
    progression = rng.integers(len(PROGRESSIONS), size=n_tracks)
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

    return Catalogue(
        style_share=style_share, artist_style=artist_style, artist_log_pop=artist_log_pop, style=style,
        instrument=instrument, accompaniment_instrument=accompaniment_instrument, artist=artist, tempo=tempo,
        root=root, progression=progression, cutoff=cutoff, stereo=stereo, gain=gain, log_pop=log_pop,
        release_s=release_s,
    )  # fmt: skip


def normalised(weights: Any) -> np.ndarray:
    """Weights scaled to sum to one, as ``Generator.choice`` requires of its probabilities."""
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()
