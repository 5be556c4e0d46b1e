"""The split's parameters (:class:`SplitConfig`): the window, the protocol and its defaults, read and checked.

Apart from :mod:`audiorec.protocol.split` so that the workflow and :mod:`audiorec.protocol.journal` can name a config
without the grouping code, and so each module stays small; :mod:`audiorec.protocol.split` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from audiorec.common.months import add_months
from audiorec.errors import ParameterError

PROTOCOL_DEFAULTS: dict[str, tuple[float, int]] = {"paper2024": (0.5, 0), "journal2026": (0.3, 42)}
"""The split protocols by name, each with the validation share and seed its original used: the 2024 paper split
the evaluation users in half; the journal version's ``train_test_split(users, test_size=0.7, random_state=42)``
keeps 30 % of its validation candidates (:mod:`.journal`)."""


def with_protocol_defaults(split: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``split`` block with its protocol's ``val_fraction`` and ``seed`` where it leaves them out.

    This is what the split job's parameters hold: the values the split is made with, so an edit that changes them
    reruns it, and a block that leaves out the default protocol's values gives the same parameters as one that
    states them. An unknown protocol is left for :class:`SplitConfig` to reject with its message.
    """
    protocol = split.get("protocol", "paper2024")
    if protocol not in PROTOCOL_DEFAULTS:
        return dict(split)
    val_fraction, seed = PROTOCOL_DEFAULTS[protocol]
    return {"val_fraction": val_fraction, "seed": seed, **split}


@dataclass(frozen=True)
class SplitConfig:
    """Parameters of :func:`temporal_split`.

    Attributes
    ----------
    test_start
        Start of the evaluation window, a timezone-aware datetime (converted to UTC). A naive datetime is
        rejected here because the same wall-clock time means different instants in different zones; use
        :meth:`from_mapping` to read dates from a config file, where they are taken as UTC.
    train_months
        Length of the training window before ``test_start``, in calendar months.
    test_months
        Length of the evaluation window from ``test_start``, in calendar months.
    val_fraction
        Share of evaluation users assigned to ``val``; ``None`` takes the protocol's (:data:`PROTOCOL_DEFAULTS`).
        ``paper2024`` rounds it half up over all evaluation users; ``journal2026`` rounds as scikit-learn's
        ``train_test_split(test_size=1 - val_fraction)`` does, over the users it may put in validation.
    seed
        Seed of the user assignment, so it is reproducible; ``None`` takes the protocol's.
    protocol
        A name of :data:`PROTOCOL_DEFAULTS`: ``paper2024`` (:mod:`audiorec.protocol.split`) or ``journal2026``
        (:mod:`audiorec.protocol.journal`).
    """

    test_start: datetime
    train_months: int = 12
    test_months: int = 1
    val_fraction: float | None = None
    seed: int | None = None
    protocol: str = "paper2024"

    def __post_init__(self) -> None:
        if not isinstance(self.test_start, datetime):
            raise ParameterError(
                f"split test_start must be a timezone-aware datetime; got {self.test_start!r} "
                f"of type {type(self.test_start).__name__}"
            )
        if self.test_start.tzinfo is None or self.test_start.utcoffset() is None:
            raise ParameterError(
                f"split test_start must be timezone-aware (UTC); got the naive datetime {self.test_start!r}"
            )
        object.__setattr__(self, "test_start", self.test_start.astimezone(UTC))
        if not isinstance(self.protocol, str) or self.protocol not in PROTOCOL_DEFAULTS:
            raise ParameterError(f"split protocol must be one of {sorted(PROTOCOL_DEFAULTS)}; got {self.protocol!r}")
        default_fraction, default_seed = PROTOCOL_DEFAULTS[self.protocol]
        if self.val_fraction is None:
            object.__setattr__(self, "val_fraction", default_fraction)
        if self.seed is None:
            object.__setattr__(self, "seed", default_seed)
        for name in ("train_months", "test_months"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ParameterError(f"split {name} must be an integer >= 1; got {value!r}")
            object.__setattr__(self, name, int(value))
        value = self.val_fraction
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not 0.0 <= value <= 1.0:
            raise ParameterError(f"split val_fraction must be a number in [0, 1]; got {value!r}")
        if self.protocol == "journal2026" and not 0.0 < value < 1.0:
            raise ParameterError(
                f"split val_fraction must be strictly between 0 and 1 with protocol journal2026 (scikit-learn's "
                f"train_test_split leaves neither side empty); got {value!r}"
            )
        object.__setattr__(self, "val_fraction", float(value))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ParameterError(f"split seed must be a non-negative integer; got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def train_start(self) -> datetime:
        """First instant of the training window: ``test_start`` minus ``train_months`` calendar months."""
        return add_months(self.test_start, -self.train_months)

    @property
    def test_end(self) -> datetime:
        """First instant after the evaluation window: ``test_start`` plus ``test_months`` calendar months."""
        return add_months(self.test_start, self.test_months)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> SplitConfig:
        """Build a config from a config-file mapping.

        ``test_start`` may be an ISO string (``"2020-02-20"`` or ``"2020-02-20T00:00:00"``, with or without
        an offset), a ``date`` (what YAML makes of an unquoted date) or a ``datetime``; values without a zone
        are read as UTC, the zone every table of the workflow uses.

        Raises
        ------
        ParameterError
            Naming unknown keys, a missing ``test_start`` or an invalid value.
        """
        if not isinstance(mapping, Mapping):
            raise ParameterError(f"split config must be a mapping; got {type(mapping).__name__}")
        values = dict(mapping)
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ParameterError(f"split config: unknown option(s) {unknown}; known options are {sorted(known)}")
        if "test_start" not in values:
            raise ParameterError("split config: test_start is required (e.g. '2020-02-20')")
        values["test_start"] = _parse_moment(values["test_start"])
        return cls(**values)


def _parse_moment(value: Any) -> datetime:
    """Read a config date or datetime as a UTC instant (naive values are UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as error:
            raise ParameterError(
                f"split test_start {value!r} is not an ISO date such as '2020-02-20': {error}"
            ) from error
    else:
        raise ParameterError(
            f"split test_start must be an ISO date string or a datetime; got {value!r} of type {type(value).__name__}"
        )
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
