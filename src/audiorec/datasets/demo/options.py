"""Options of the demo world, validated on construction, and the seeded random streams derived from them.

Options come from config files, where a typo or a wrong type would otherwise surface deep inside the
generator (or not at all); every field is therefore checked here with a message naming the key and value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from audiorec.common.config import dataclass_from_mapping
from audiorec.datasets.demo.styles import STYLES
from audiorec.errors import ParameterError

TINY: dict[str, Any] = {
    "n_tracks": 200,
    "n_users": 120,
    "n_artists": 30,
    "clip_seconds": 3.0,
    "n_playlists": 20,
    "mean_events_per_user": 60.0,
}
"""Options of the tiny world used by the test suite and the workflow's tiny config (a few seconds to build)."""


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
        _check_int("n_styles", self.n_styles, 2, len(STYLES))
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


# Independent streams: a child per part, keyed by these constants (never renumber them).
CATALOGUE_STREAM, AUDIO_STREAM, USERS_STREAM, EVENTS_STREAM, LABELS_STREAM, PLAYLISTS_STREAM = range(6)


def child_rng(options: DemoOptions, *key: int) -> np.random.Generator:
    """The generator of one part of the world, independent of every other part's draws."""
    return np.random.default_rng(np.random.SeedSequence(options.seed, spawn_key=key))
