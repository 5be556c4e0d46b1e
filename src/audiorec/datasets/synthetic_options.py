"""Options of the ``synthetic`` source: a size preset (``scale``), explicit overrides, and the generated features.

A preset fixes every shape parameter of the world (how heavy-tailed popularity and history lengths are, how
users come and go, how often they replay) so that its temporal split has known sizes; the overrides change
only the sizes a user is likely to want to vary. Every value is checked here, with a message naming the
option, because a typo in a config would otherwise surface deep inside the generator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audiorec.common.config import dataclass_from_mapping
from audiorec.common.months import add_months
from audiorec.common.validation import check_float, check_int
from audiorec.errors import ParameterError

FEATURE_NAMES: tuple[str, ...] = ("musicnn_like", "mert_like", "jukebox_like")
"""Examples of the features the source generates (the widths of MusiCNN, MERT and Jukebox are 200, 1024 and
4800). Any name matching :data:`FEATURE_NAME` is a feature of its own: its draws are keyed by the name, so adding
one (e.g. a ``mule_like`` of 1728 for the journal version's matrix) leaves every other feature unchanged."""
FEATURE_NAME = re.compile(r"^[a-z][a-z0-9_]*_like$")


@dataclass(frozen=True)
class Scale:
    """Every shape parameter of a world; a preset is one of these (see :data:`SCALES`).

    ``users`` counts everyone who listens at some point, including the users who only start in the evaluation
    month and so never enter the train split; ``tracks`` is the catalogue, of which ``heard_fraction`` is ever
    heard (most of Music4All goes unheard in any one year of the Onion log). ``mean_rate`` is the mean number of
    distinct tracks a user discovers per active month (lognormal with ``rate_sigma``); ``events`` the length of
    the log (replays come on top of one listen per pair); ``zipf`` the popularity exponent over catalogue ranks;
    ``clusters`` the number of taste clusters and ``taste`` how strongly a user's latent taste selects them;
    ``from_start`` the share of users active from the first day, ``to_end`` the share still active in the last
    month; ``cold_fraction`` the share of tracks released during the evaluation month; ``discovery_skew`` how
    much first listens crowd into the start of a user's active period (1: uniform; above 1, discovery slows as
    a library grows); ``feature_noise`` the noise of each feature dimension relative to its signal.
    """

    users: int
    tracks: int
    heard_fraction: float
    events: int
    months: int
    mean_rate: float
    rate_sigma: float
    zipf: float
    clusters: int
    taste: float
    from_start: float
    to_end: float
    cold_fraction: float
    feature_noise: float
    discovery_skew: float = 1.0
    latent_dim: int = 32
    max_history: int = 20_000


SCALES: dict[str, Scale] = {
    # Music4All-Onion as the first paper used it (Tamm & Aljanaki 2024, Table 2): 17,053 train users with ~5.12M
    # (user, track) pairs on ~56k of the ~109k tracks, ~6.1k validation and ~6.1k test users with ~135k pairs
    # each, from a temporal split of 13 months.
    "onion": Scale(
        users=17_350,
        tracks=109_269,
        heard_fraction=0.525,
        events=16_000_000,
        months=13,
        mean_rate=51.0,
        rate_sigma=1.0,
        zipf=1.0,
        clusters=200,
        taste=2.5,
        from_start=0.8,
        to_end=0.70,
        cold_fraction=0.003,
        feature_noise=3.0,
        discovery_skew=1.3,
    ),
    # A few hundred users, for tests: built in well under a second.
    "tiny": Scale(
        users=300,
        tracks=1_500,
        heard_fraction=0.9,
        events=30_000,
        months=13,
        mean_rate=8.0,
        rate_sigma=0.8,
        zipf=0.9,
        clusters=12,
        taste=2.5,
        from_start=0.8,
        to_end=0.8,
        cold_fraction=0.02,
        feature_noise=3.0,
    ),
}
"""The size presets of option ``scale``."""


@dataclass(frozen=True)
class SyntheticOptions:
    """Options of the ``synthetic`` source (``datasets.<name>.options``).

    Parameters
    ----------
    scale : str
        A key of :data:`SCALES`: ``onion`` (Music4All-Onion's split sizes) or ``tiny`` (for tests).
    users, tracks, events, months : int, optional
        Override the preset's listeners, catalogue size, number of listening events and calendar months.
    seed : int
        Root of every random draw; the same options always give identical tables and features.
    start_date : str
        ISO date (UTC) of the first listen; the last of ``months`` months is the evaluation month, so a split
        with ``test_start`` = ``start_date`` + ``months`` − 1 months and 12 train months uses the whole log.
    feature_dims : mapping of str to int
        The precomputed features to generate and their widths, e.g. ``{musicnn_like: 200, mert_like: 1024,
        jukebox_like: 4800}``; any name matching :data:`FEATURE_NAME`.
    feature_noise : float, optional
        Override the preset's per-dimension feature noise (relative to the signal); larger is weaker content.
    features_dir : str, optional
        Where the features are written and read: the ``features/`` folder beside the tables. The workflow fills
        it in; a config leaves it out.
    """

    scale: str = "tiny"
    users: int | None = None
    tracks: int | None = None
    events: int | None = None
    months: int | None = None
    seed: int = 0
    start_date: str = "2019-02-20"
    feature_dims: Mapping[str, int] = field(default_factory=dict)
    feature_noise: float | None = None
    features_dir: str | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ParameterError(f"synthetic option scale must be one of {sorted(SCALES)}, got {self.scale!r}")
        for name, minimum in (("users", 2), ("tracks", 10), ("events", 1), ("months", 2)):
            value = getattr(self, name)
            if value is not None:
                check_int(name, value, minimum, where="synthetic")
        check_int("seed", self.seed, 0, where="synthetic")
        try:
            dt.date.fromisoformat(str(self.start_date))
        except ValueError:
            raise ParameterError(
                f"synthetic option start_date must be an ISO date YYYY-MM-DD, got {self.start_date!r}"
            ) from None
        if not isinstance(self.feature_dims, Mapping):
            raise ParameterError(
                f"synthetic option feature_dims must map feature names to widths, got {self.feature_dims!r}"
            )
        for name, width in self.feature_dims.items():
            if not isinstance(name, str) or not FEATURE_NAME.match(name):
                raise ParameterError(
                    f"synthetic option feature_dims names feature {name!r}; a feature name is lower-case letters, "
                    f"digits and underscores ending in '_like', e.g. {list(FEATURE_NAMES)}"
                )
            check_int(f"feature_dims.{name}", width, 1, where="synthetic")
        object.__setattr__(self, "feature_dims", dict(self.feature_dims))
        if self.feature_noise is not None:
            check_float("feature_noise", self.feature_noise, 0.0, 1e6, where="synthetic")
        if self.features_dir is not None and not isinstance(self.features_dir, str):
            raise ParameterError(f"synthetic option features_dir must be a path, got {self.features_dir!r}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> SyntheticOptions:
        """Build options from a config mapping; unknown keys are an error that lists the known ones."""
        return dataclass_from_mapping(cls, mapping, "synthetic dataset options")

    def resolved(self) -> Scale:
        """The preset with this config's overrides applied."""
        preset = SCALES[self.scale]
        overrides = {name: getattr(self, name) for name in ("users", "tracks", "events", "months", "feature_noise")}
        return dataclasses.replace(preset, **{name: value for name, value in overrides.items() if value is not None})

    def start(self) -> dt.datetime:
        """First instant of the log (UTC midnight of ``start_date``)."""
        day = dt.date.fromisoformat(str(self.start_date))
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)

    def evaluation_start(self) -> dt.datetime:
        """Start of the last month: the ``test_start`` of a split whose train window is the months before it."""
        return add_months(self.start(), self.resolved().months - 1)

    def end(self) -> dt.datetime:
        """End (exclusive) of the log: ``start_date`` plus ``months`` calendar months."""
        return add_months(self.start(), self.resolved().months)


# Independent streams, one per part of the world (never renumber them): a change to the features leaves the
# log untouched, and each feature has its own stream keyed by its name.
CATALOGUE_STREAM, USERS_STREAM, HISTORY_STREAM, EVENTS_STREAM, FEATURES_STREAM = range(5)


def child_rng(options: SyntheticOptions, *key: int) -> np.random.Generator:
    """The generator of one part of the world, independent of every other part's draws."""
    return np.random.default_rng(np.random.SeedSequence(options.seed, spawn_key=key))
