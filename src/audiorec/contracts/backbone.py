"""The backbone contract: what the extraction driver and every table after it rely on, checked on one kind.

Signals are synthetic (a chord with noise, drawn from a fixed seed) at the backbone's own sample rate: what is
checked is the shape of the answer, never its musical quality. Tracks of different lengths go into one batch, with
one shorter than a tenth of a second, because real catalogues hold both and a backbone that pads a batch can leak
one track into another's vector.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiorec.backbones import BACKBONES, Backbone, ClipPolicy
from audiorec.contracts.results import CheckResult, NotApplicable, NotRun, run_checks, setup_step
from audiorec.extraction.embed import check_batch_output, extract

DURATIONS_S = (4.0, 6.5)
"""Lengths of the batch's tracks: longer than any built-in model's window (MusiCNN's 3 s), and unequal."""

SHORT_S = 0.08
"""A clip shorter than one frame of most models: embedded, or refused with an error (a failures row)."""

TOLERANCE = 1e-4
"""Largest difference, relative to a vector's scale, between two computations that must agree."""


def synthetic_tracks(sample_rate: int, durations: tuple[float, ...] = DURATIONS_S, seed: int = 0) -> list[np.ndarray]:
    """Mono float32 signals of ``durations``: three partials over low noise, amplitude below 0.5."""
    rng = np.random.default_rng(seed)
    tracks = []
    for duration in durations:
        time = np.arange(round(duration * sample_rate)) / sample_rate
        tone = sum(0.1 * np.sin(2 * np.pi * frequency * time) for frequency in (220.0, 277.2, 329.6))
        tracks.append((tone + 0.02 * rng.standard_normal(time.shape)).astype(np.float32))
    return tracks


def check_backbone(kind: str, options: Mapping[str, Any] | None = None) -> list[CheckResult]:
    """Run the backbone contract on ``kind`` (built in, an import target or an entry point) built from
    ``options``; one result per check."""
    options = dict(options or {})
    state: dict[str, Any] = {}

    @setup_step
    def options_check() -> None:
        BACKBONES.check_options(kind, options, "--options")
        if BACKBONES.traits(kind).precomputed:
            raise NotApplicable("its vectors are read from a file, not computed: there is no model to check")

    @setup_step
    def builds() -> None:
        if BACKBONES.traits(kind).precomputed:
            raise NotApplicable("no model")
        backbone = BACKBONES.load(kind).from_options(dict(options))
        if not isinstance(backbone, Backbone):
            raise TypeError(f"from_options returned {type(backbone).__name__}, not a Backbone")
        state["backbone"] = backbone

    @setup_step
    def declares() -> None:
        backbone = _backbone(state)
        if isinstance(backbone.sample_rate, bool) or not isinstance(backbone.sample_rate, int):
            raise TypeError(f"sample_rate must be an int, got {backbone.sample_rate!r}")
        if backbone.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {backbone.sample_rate}")
        if not isinstance(backbone.clip_policy, ClipPolicy):
            raise TypeError(f"clip_policy must be a ClipPolicy, got {type(backbone.clip_policy).__name__}")
        dims = backbone.layer_dims
        if not dims or not all(isinstance(n, str) and isinstance(d, int) and d > 0 for n, d in dims.items()):
            raise ValueError(f"layer_dims must map layer names to positive widths, got {dims!r}")
        state["tracks"] = [
            backbone.clip_policy.apply(t, backbone.sample_rate) for t in synthetic_tracks(backbone.sample_rate)
        ]

    def batch_shapes() -> None:
        backbone = _backbone(state)
        outputs = backbone.embed_batch(state["tracks"])
        check_batch_output(backbone, outputs, len(state["tracks"]))
        for name, vectors in outputs.items():
            if np.asarray(vectors).dtype != np.float32:
                raise TypeError(f"layer {name!r} is {np.asarray(vectors).dtype}, not float32")
            if not np.all(np.isfinite(vectors)):
                raise ValueError(f"layer {name!r} has NaN or infinite values")
        state["batch"] = outputs

    def short_clip() -> None:
        backbone = _backbone(state)
        (short,) = synthetic_tracks(backbone.sample_rate, (SHORT_S,))
        try:
            outputs = backbone.embed_batch([backbone.clip_policy.apply(short, backbone.sample_rate)])
        except Exception:  # refusing is allowed: the driver records the track as a failure
            return
        check_batch_output(backbone, outputs, 1)
        if not all(np.all(np.isfinite(vectors)) for vectors in outputs.values()):
            raise ValueError("the short clip's vectors have NaN or infinite values (refuse it with an error instead)")

    def batch_independent() -> None:
        backbone = _backbone(state)
        _needs_batch(state)
        for index, track in enumerate(state["tracks"]):
            alone = backbone.embed_batch([track])
            for name in backbone.layers:
                _assert_close(alone[name][0], np.asarray(state["batch"][name])[index], f"track {index}, layer {name}")

    def deterministic() -> None:
        layers = _backbone(state).layers
        _needs_batch(state)
        again = BACKBONES.load(kind).from_options(dict(options)).embed_batch(state["tracks"])
        for name in layers:
            _assert_close(np.asarray(again[name]), np.asarray(state["batch"][name]), f"layer {name}")

    def through_the_driver() -> None:
        backbone = _backbone(state)
        with tempfile.TemporaryDirectory() as folder:
            paths = []
            for index, track in enumerate(synthetic_tracks(22050, (*DURATIONS_S, 1.0))):
                paths.append(Path(folder) / f"track{index}.wav")
                sf.write(paths[-1], track, 22050)
            result = extract([p.stem for p in paths], paths, backbone, batch_size=2, progress=False)
        # Only the last, 1-s file may be refused as too short, as the short clip may.
        refused = [failure for failure in result.failures if failure["track_id"] != paths[-1].stem]
        if refused:
            raise ValueError(f"the driver recorded failures: {refused[0]['error']}")
        widths = {name: np.stack(rows).shape for name, rows in result.layers.items()}
        expected = {name: (len(result.track_ids), width) for name, width in backbone.layer_dims.items()}
        if widths != expected:
            raise ValueError(f"the driver gathered {widths}, expected {expected}")

    return run_checks(
        [
            ("options are checked at plan time", options_check),
            ("builds from its options", builds),
            ("declares sample rate, clip policy and layer widths", declares),
            ("embeds a batch of unequal tracks: every layer (n, width), float32, finite", batch_shapes),
            ("embeds a clip shorter than 0.1 s or refuses it with an error (a failures row)", short_clip),
            ("a track's vectors do not depend on its batch", batch_independent),
            ("the same options give the same vectors", deterministic),
            ("runs through the extraction driver (decode, resample, crop, pool)", through_the_driver),
        ]
    )


def _backbone(state: Mapping[str, Any]) -> Backbone:
    if "backbone" not in state:
        raise NotApplicable("no model")
    return state["backbone"]


def _needs_batch(state: Mapping[str, Any]) -> None:
    if "batch" not in state:
        raise NotRun("it compares with the batch, which failed its check")


def _assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-6)
    difference = float(np.max(np.abs(np.asarray(actual) - expected), initial=0.0))
    if difference > TOLERANCE * scale:
        raise ValueError(f"{what} differs by {difference:.3g} (scale {scale:.3g})")
