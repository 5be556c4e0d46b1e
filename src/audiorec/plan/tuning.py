"""Hyper-parameter search settings of a model, resolved and checked before any job runs.

A model entry with a ``tune`` block is tuned: one study per (dataset, backbone) it runs on searches its options on
the validation split, and its runs train with the best options found. Everything a study needs is decided here from
the config, with the top-level ``tuning`` block's defaults (budget, metric, seed, a search space per model kind)
filled in, and every searched option checked against the kind's options class, so a typo in a space fails the dry
run as a typo in ``options`` does.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from audiorec.errors import ParameterError
from audiorec.evaluation.controls import SHUFFLED_SUFFIX

SPACE_KEYS = {"low", "high", "log", "step", "choices"}


def resolve_tuning(
    where: str, kind: str, entry: Mapping[str, Any] | None, defaults: Mapping[str, Any], option_names: set[str]
) -> dict[str, Any] | None:
    """The study settings of a model entry's ``tune`` block (None if it has none), defaults filled and checked.

    ``option_names`` are the fields of the kind's options class: every searched option must be one of them.
    """
    if entry is None:
        return None
    settings = {key: entry.get(key, defaults.get(key)) for key in ("trials", "seconds", "metric", "seed")}
    space = entry.get("space", (defaults.get("spaces") or {}).get(kind))
    if not space:
        raise ParameterError(
            f"{where}.tune: no search space for kind {kind!r}: give tune.space, or tuning.spaces.{kind}"
        )
    unknown = sorted(set(space) - option_names)
    if unknown:
        raise ParameterError(
            f"{where}.tune.space: unknown option(s) {unknown}; the kind's options are {sorted(option_names)}"
        )
    for name, spec in space.items():
        check_dimension(f"{where}.tune.space.{name}", spec)
    try:
        parse_metric(settings["metric"])
    except ParameterError as error:
        raise ParameterError(f"{where}.tune.metric: {error}") from None
    if isinstance(settings["trials"], bool) or not isinstance(settings["trials"], int) or settings["trials"] < 1:
        raise ParameterError(f"{where}.tune.trials must be a positive integer, got {settings['trials']!r}")
    if (
        not isinstance(settings["seconds"], int | float)
        or isinstance(settings["seconds"], bool)
        or settings["seconds"] <= 0
    ):
        raise ParameterError(f"{where}.tune.seconds must be a positive number, got {settings['seconds']!r}")
    return {**settings, "space": {name: dict(space[name]) for name in sorted(space)}}


def parse_metric(metric: str) -> tuple[str, int]:
    """``"NDCG@50"`` → (``"NDCG@50"``, 50): the column a study maximises and its cut-off."""
    match = re.fullmatch(r"(HitRate|Recall|NDCG|Precision|MRR)@([1-9]\d*)", str(metric))
    if match is None:
        raise ParameterError(f"tuning metric must be HitRate, Recall, NDCG, Precision or MRR @K; got {metric!r}")
    return metric, int(match[2])


def check_dimension(where: str, spec: Any) -> None:
    """One searched option: ``{choices: [...]}`` or ``{low, high}`` (``log: true`` for a log scale, ``step``)."""
    if not isinstance(spec, Mapping) or not set(spec) <= SPACE_KEYS:
        raise ParameterError(f"{where}: give {{choices: [...]}} or {{low: ..., high: ...}} (log, step); got {spec!r}")
    if "choices" in spec:
        if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
            raise ParameterError(f"{where}: choices must be a non-empty list, alone; got {spec!r}")
        return
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(value, int | float) and not isinstance(value, bool) for value in (low, high))
    if not numbers or not low < high:
        raise ParameterError(f"{where}: low and high must be numbers with low < high; got {spec!r}")
    if spec.get("log") and low <= 0:
        raise ParameterError(f"{where}: a log scale needs low > 0; got {spec!r}")


def first_trial(space: Mapping[str, Any], options: Mapping[str, Any], options_class: type) -> dict[str, Any]:
    """The configured options (the paper's settings where the config keeps the defaults) of the searched names:
    the study's first trial, so the search starts where the untuned model stands. A value outside a dimension is
    left out, for the sampler to draw."""
    defaults = {field.name: field.default for field in dataclasses.fields(options_class)}
    first = {}
    for name, spec in space.items():
        value = options.get(name, defaults.get(name))
        if "choices" in spec:
            if value in spec["choices"]:
                first[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool) and spec["low"] <= value <= spec["high"]:
            first[name] = value
    return first


def study_backbone(run_backbone: str) -> str:
    """The study whose best options a run uses: a shuffled-embedding control trains with the options found on
    its real embeddings (so it differs from them in the audio link only), every other run with its own."""
    return run_backbone.removesuffix(SHUFFLED_SUFFIX)
