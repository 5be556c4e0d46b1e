"""Calendar-month arithmetic: the split's windows and the synthetic world's calendar are counted in months."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_months(moment: datetime, months: int) -> datetime:
    """Shift ``moment`` by calendar months, clamping the day to the target month's length (Mar 31 - 1 = Feb 28/29).

    Calendar months rather than a fixed number of days keep "the previous 12 months" aligned with the
    dates a person would name.
    """
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)
