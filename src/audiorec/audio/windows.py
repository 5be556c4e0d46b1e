"""Cut a signal (or a frame sequence) into the fixed windows a model reads.

Shared by the backbones and by self-supervised training, which must cut tracks exactly as the backbone built
from its encoder will: one definition, below both.
"""

from __future__ import annotations

import numpy as np

from audiorec.errors import ParameterError


def split_windows(values: np.ndarray, size: int, min_last_window: float) -> np.ndarray:
    """Cut ``values`` along its first axis into ``(n_windows, size, ...)`` non-overlapping float32 windows.

    The last, shorter window is zero-padded when it holds at least ``min_last_window`` of a window and
    dropped otherwise, unless it is the only one: for models whose input has one fixed shape.
    """
    n_full, rest = divmod(values.shape[0], size)
    pieces = [values[: n_full * size].reshape(n_full, size, *values.shape[1:])] if n_full else []
    if rest and (n_full == 0 or rest >= min_last_window * size):
        padding = [(0, size - rest)] + [(0, 0)] * (values.ndim - 1)
        pieces.append(np.pad(values[n_full * size :], padding)[None])
    return np.concatenate(pieces).astype(np.float32, copy=False)


def unpadded_windows(values: np.ndarray, size: int, min_samples: int) -> list[np.ndarray]:
    """Full float32 windows of ``size`` samples, then the remainder as it is when it has ``min_samples``.

    ``min_samples`` is the shortest input the model makes a frame of; a shorter remainder is dropped. A
    track shorter than that is zero-padded up to it, because the model cannot read it otherwise.
    """
    values = np.asarray(values, dtype=np.float32)
    n_full, rest = divmod(values.shape[0], size)
    pieces = list(values[: n_full * size].reshape(n_full, size))
    if rest >= min_samples:
        pieces.append(values[n_full * size :])
    elif not pieces:
        pieces.append(np.pad(values, (0, min_samples - rest)))
    return pieces


SHORT_AUDIO = ("skip", "pad")
"""Policies of a windowed backbone for a track shorter than one of its windows (option ``short_audio``): ``skip``
records it as a failure, as the original extractors cannot embed it; ``pad`` zero-pads it to one window."""


def check_short_audio(value: object, where: str) -> str:
    """``value`` if it is one of :data:`SHORT_AUDIO`, else a :class:`ParameterError` naming ``where``."""
    if value not in SHORT_AUDIO:
        raise ParameterError(f"{where} option short_audio must be one of {list(SHORT_AUDIO)}, got {value!r}")
    return str(value)


def refuse_short_audio(value: object, where: str) -> None:
    """Reject a ``short_audio`` option on a backbone that embeds any length, where no policy could apply."""
    if value is not None:
        raise ParameterError(
            f"{where} option short_audio applies only to the windowed backbones (musicnn, ssl, mule), whose models "
            f"cannot read less than one window; this one reads a window of any length, so remove the option "
            f"(got {value!r})"
        )


def pad_to_window(signal: np.ndarray, size: int) -> np.ndarray:
    """``signal`` followed by silence up to ``size`` samples (``short_audio: pad``); a longer one unchanged."""
    signal = np.asarray(signal, dtype=np.float32)
    return np.pad(signal, (0, max(size - signal.shape[0], 0)))
