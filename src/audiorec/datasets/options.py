"""Options of the dataset sources whose readers live in their own modules, in a module that imports no reader.

The workflow checks every dataset's options while it builds its DAG (:func:`audiorec.datasets.source_options`),
so a typo in a source option fails the dry run, naming the option and the known ones, instead of failing the fetch
job later. These classes therefore live apart from the readers, which import polars and soundfile; the demo and
synthetic sources keep theirs in their own light ``options`` modules.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from audiorec.errors import ParameterError

SUBSETS: tuple[str, ...] = ("small", "medium", "large")
"""FMA's nested subsets, smallest first: each holds the tracks of the ones before it."""


def check_timezone(name: str, source: str) -> str:
    """Validate an IANA time-zone name such as ``"UTC"`` or ``"Europe/Vienna"``."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise ParameterError(f"{source} option timezone: unknown time zone {name!r}") from error
    return name


def check_fractions(fractions: Sequence[float], where: str) -> tuple[float, float, float]:
    """Validate three non-negative shares summing to one (train, val, test)."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(f < 0 for f in values) or abs(sum(values) - 1.0) > 1e-5 + 1e-8 or values[0] == 0:
        raise ParameterError(
            f"{where}: split fractions must be three non-negative numbers (train > 0) summing to 1; "
            f"got {list(fractions)}"
        )
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class LocalOptions:
    """Options of the ``local`` source (``datasets.<name>.options``).

    Attributes
    ----------
    interactions
        The listening log (``.csv``, ``.tsv`` or ``.parquet``; see ``separator`` for other suffixes).
    audio_dir
        Folder scanned recursively for audio files; or the base of relative paths in ``tracks``.
    tracks
        A table with a track-id column (``track_column``) and ``audio_column``; relative paths are taken
        from ``audio_dir`` when given, else from the table's own folder.
    user_column, track_column, timestamp_column
        Column names in the log (``track_column`` also in ``tracks``).
    timestamp_format
        ``None`` (ISO 8601 text, datetimes, numeric Unix seconds), ``"unix"``, ``"unix_ms"``, or a strftime
        format such as ``"%d/%m/%Y %H:%M"``.
    timezone
        Zone of timestamps written without an offset (IANA name); stored times are UTC.
    separator
        Delimiter of a delimited file whose suffix is not ``.csv``/``.tsv`` (applies to both tables).
    audio_column
        Column of ``tracks`` holding the audio file paths.
    """

    interactions: str
    audio_dir: str | None = None
    tracks: str | None = None
    user_column: str = "user_id"
    track_column: str = "track_id"
    timestamp_column: str = "timestamp"
    timestamp_format: str | None = None
    timezone: str = "UTC"
    separator: str | None = None
    audio_column: str = "audio_path"

    def __post_init__(self) -> None:
        if self.audio_dir is None and self.tracks is None:
            raise ParameterError("local options: give audio_dir (a folder of audio files) or tracks (a tracks table)")
        check_timezone(self.timezone, "local")


@dataclass(frozen=True)
class OnionOptions:
    """Options of the ``music4all_onion`` source: paths to the release's files (see the module docstring)."""

    listening_events: str
    audio_dir: str
    mfcc_stats: str | None = None


@dataclass(frozen=True)
class FMAOptions:
    """Options of the ``fma`` source: ``metadata`` (tracks.csv), ``audio_dir`` and ``subset``."""

    metadata: str
    audio_dir: str
    subset: str = "small"

    def __post_init__(self) -> None:
        if self.subset not in SUBSETS:
            raise ParameterError(f"fma option subset must be one of {list(SUBSETS)}; got {self.subset!r}")


@dataclass(frozen=True)
class IRMASOptions:
    """Options of the ``irmas`` source: ``root``, the split ``fractions`` (train, val, test) and its ``seed``."""

    root: str
    fractions: tuple[float, ...] = (0.7, 0.15, 0.15)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", check_fractions(self.fractions, "irmas option fractions"))


@dataclass(frozen=True)
class AOTMOptions:
    """Options of the ``aotm2011`` source (see the module docstring)."""

    playlists: str
    audio_map: str
    audio_dir: str | None = None
    min_tracks: int = 5
    max_tracks: int = 100
    exclude_categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.min_tracks <= self.max_tracks:
            raise ParameterError(
                f"aotm2011 options need 1 <= min_tracks <= max_tracks; got {self.min_tracks} and {self.max_tracks}"
            )
        object.__setattr__(self, "exclude_categories", tuple(self.exclude_categories))
