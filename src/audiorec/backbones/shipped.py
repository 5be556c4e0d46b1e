"""Architecture configs shipped in ``resources/backbones/``: the published models' shapes, and tiny test twins.

A pretrained backbone is built from one of these files, never from a config fetched at run time, so a
machine without network access builds exactly the published architecture. Each file is a JSON object with
the family's facts (``sample_rate``, ``clip_seconds``, ...) and the model's own config block; the file
``{family}-{size}.json`` is selected by a backbone's ``size`` option, which may also be a path to a JSON
file of the same layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audiorec.errors import ParameterError

RESOURCE_DIR = Path(__file__).resolve().parents[3] / "resources" / "backbones"
"""``resources/backbones/`` of the source tree (the package is installed in editable mode from it)."""


def shipped_sizes(family: str) -> list[str]:
    """Sizes shipped for ``family`` (the ``{size}`` part of ``{family}-{size}.json``)."""
    return sorted(path.stem.removeprefix(f"{family}-") for path in RESOURCE_DIR.glob(f"{family}-*.json"))


def shipped_config(family: str, size: str) -> dict[str, Any]:
    """Read the architecture config ``size`` of ``family`` (a shipped size name, or a path to a JSON file).

    Raises
    ------
    ParameterError
        If ``size`` names neither a shipped config nor a readable JSON object; the message lists the
        shipped sizes.
    """
    candidate = Path(size)
    path = candidate if candidate.suffix == ".json" else RESOURCE_DIR / f"{family}-{size.lower()}.json"
    if not path.is_file():
        raise ParameterError(
            f"{family} option size={size!r}: no config {path}; shipped sizes are {shipped_sizes(family)} "
            "(or give the path of a .json file of the same layout)"
        )
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ParameterError(f"{family} config {path} is not readable JSON: {error}") from error
    if not isinstance(spec, dict) or "sample_rate" not in spec or "clip_seconds" not in spec:
        raise ParameterError(f"{family} config {path} must be a JSON object with 'sample_rate' and 'clip_seconds'")
    spec["source"] = str(path)
    return spec
