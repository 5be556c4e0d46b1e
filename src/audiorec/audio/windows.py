"""Cut a signal (or a frame sequence) into the fixed windows a model reads.

Shared by the backbones and by self-supervised training, which must cut tracks exactly as the backbone built
from its encoder will: one definition, below both.
"""

from __future__ import annotations

import numpy as np


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
