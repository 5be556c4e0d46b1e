"""The calendar of the demo world: when listening starts and ends and when the evaluation month begins."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audiorec.datasets.demo.options import DemoOptions


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
