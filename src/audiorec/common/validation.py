"""Checks of scalar options, shared by every options dataclass.

Each check raises :class:`~audiorec.errors.ParameterError` naming the option and the value it got, so a bad
config fails when it is read instead of deep inside training. Booleans are refused as numbers: ``True`` in a
YAML file is a typo, not 1. The module imports only the standard library, so a config can be checked without
loading numpy or torch.
"""

from __future__ import annotations

import math
from typing import Any

from audiorec.errors import ParameterError


def _option(name: str, where: str) -> str:
    return f"{where} option {name}" if where else f"option {name}"


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def check_int(name: str, value: Any, minimum: int, *, where: str = "") -> None:
    """Raise unless ``value`` is an integer ≥ ``minimum``; ``where`` (e.g. ``"backbone ssl"``) prefixes the name."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{_option(name, where)} must be an integer >= {minimum}, got {value!r}")


def check_float(name: str, value: Any, low: float, high: float, *, where: str = "") -> None:
    """Raise unless ``value`` is a real number with ``low < value < high`` (NaN fails every bound)."""
    if not _is_real(value) or not low < value < high:
        raise ParameterError(f"{_option(name, where)} must be a number in ({low}, {high}), got {value!r}")


def check_positive(name: str, value: Any, *, where: str = "") -> None:
    """Raise unless ``value`` is a finite real number > 0 (a rate, a temperature, a duration)."""
    if not _is_real(value) or not 0 < value < math.inf:
        raise ParameterError(f"{_option(name, where)} must be positive, got {value!r}")
