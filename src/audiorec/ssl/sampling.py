"""Where training segments start: anchors, positives and MelCPC windows, as sample offsets into a track.

Every function draws from the generator it is given, so a training example is a pure function of its seed.
"""

from __future__ import annotations

import numpy as np

from audiorec.errors import ParameterError
from audiorec.ssl.config import SSLConfig
from audiorec.ssl.features import GAP_SAMPLES, SAMPLE_RATE, SEGMENT_SAMPLES

LENGTH_TOLERANCE = SAMPLE_RATE // 10
"""A track up to 0.1 s shorter than a task needs is padded with silence rather than left out: resampling
rounds lengths, and a 12.0-s clip must still count as four 3-s segments."""


def required_samples(config: SSLConfig) -> int:
    """Samples one training example of the configured pretext task spans (shorter tracks are padded)."""
    if config.loss == "cpc":
        return config.cpc_segments * SEGMENT_SAMPLES
    return {"self": SEGMENT_SAMPLES, "adjacent": 2 * SEGMENT_SAMPLES + GAP_SAMPLES, "random": 2 * SEGMENT_SAMPLES}[
        config.positive
    ]


def minimum_samples(config: SSLConfig) -> int:
    """The shortest track that can give a training example.

    Any track can be augmented (a short one is padded to a segment, as extraction pads it); the other tasks need
    their segments to hold audio, up to :data:`LENGTH_TOLERANCE`.
    """
    return 1 if config.positive == "self" else required_samples(config) - LENGTH_TOLERANCE


def _draw(intervals: list[tuple[int, int]], rng: np.random.Generator) -> int:
    """A uniform draw from a union of disjoint inclusive integer intervals ``[low, high]``."""
    sizes = [high - low + 1 for low, high in intervals]
    value = int(rng.integers(sum(sizes)))
    for (low, _), size in zip(intervals, sizes, strict=True):
        if value < size:
            return low + value
        value -= size
    raise AssertionError("unreachable: value < sum(sizes)")


def _check_length(length: int, needed: int, what: str) -> None:
    if length < needed:
        raise ParameterError(f"{what} needs a track of at least {needed} samples, got {length}")


def adjacent_pair(length: int, rng: np.random.Generator) -> tuple[int, int]:
    """Starts of two consecutive segments separated by a 0.5-s gap, in random order (anchor, positive)."""
    span = 2 * SEGMENT_SAMPLES + GAP_SAMPLES
    _check_length(length, span, "an adjacent pair")
    first = int(rng.integers(length - span + 1))
    second = first + SEGMENT_SAMPLES + GAP_SAMPLES
    return (first, second) if rng.random() < 0.5 else (second, first)


def random_pair(length: int, rng: np.random.Generator) -> tuple[int, int]:
    """Starts of two non-overlapping segments anywhere in the track (anchor, positive).

    The anchor is uniform over the starts that leave room for a partner, the positive uniform over the starts
    that do not overlap the anchor.
    """
    _check_length(length, 2 * SEGMENT_SAMPLES, "a random pair")
    last = length - SEGMENT_SAMPLES
    early, late = (0, last - SEGMENT_SAMPLES), (SEGMENT_SAMPLES, last)
    anchor = _draw([(0, last)] if late[0] <= early[1] + 1 else [early, late], rng)
    partners = [(0, anchor - SEGMENT_SAMPLES), (anchor + SEGMENT_SAMPLES, last)]
    return anchor, _draw([(low, high) for low, high in partners if low <= high], rng)


def window_start(length: int, n_segments: int, rng: np.random.Generator) -> int:
    """Start of ``n_segments`` consecutive segments (a MelCPC window)."""
    span = n_segments * SEGMENT_SAMPLES
    _check_length(length, span, f"a window of {n_segments} segments")
    return int(rng.integers(length - span + 1))


def segment_starts(config: SSLConfig, length: int, rng: np.random.Generator) -> list[int]:
    """Starts of the segments of one training example of a track of ``length`` samples.

    ``self``: the anchor alone (its positive is an augmented copy); ``adjacent``/``random``: anchor and
    positive; ``cpc``: the ``cpc_segments`` consecutive segments of a window. Shorter tracks are treated as
    padded to :func:`required_samples`.
    """
    length = max(length, required_samples(config))
    if config.loss == "cpc":
        start = window_start(length, config.cpc_segments, rng)
        return [start + i * SEGMENT_SAMPLES for i in range(config.cpc_segments)]
    if config.positive == "self":
        return [int(rng.integers(length - SEGMENT_SAMPLES + 1))]
    return list(adjacent_pair(length, rng) if config.positive == "adjacent" else random_pair(length, rng))
