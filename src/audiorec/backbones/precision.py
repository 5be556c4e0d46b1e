"""The arithmetic of a torch backbone's forward pass: the ``precision`` option, applied, and its measured drift.

Values of the option (:data:`PRECISIONS`):

* ``float32``: IEEE float32. TF32 is switched off for cuBLAS matmuls *and* cuDNN convolutions
  (``torch.backends.cuda.matmul.allow_tf32``, ``torch.backends.cudnn.allow_tf32``) and the float32 matmul
  precision is ``"highest"``: torch leaves cuDNN's TF32 on by default, so without this a "float32" run on an
  Ampere or Hopper GPU computes its convolutions with 10-bit mantissas. The first paper's extraction code runs
  every transformer backbone this way (``.float().cuda()``, no autocast), which is why it is the default.
* ``tf32``: float32 weights and activations, TF32 matmuls and convolutions.
* ``bf16``: autocast to bfloat16 (a backbone's front end may stay in float32, see
  :mod:`audiorec.backbones.pretrained`).
* ``fp16``: autocast to float16, or the model's own half-precision recipe where the original differs
  (Jukebox runs jukemirlib's: :mod:`audiorec.backbones.jukebox`).

The TF32 flags are process-wide, so :func:`precision_scope` sets them for the forward passes of a job and
restores them afterwards; only the legacy flags are touched, since torch refuses a mix of those and its newer
``fp32_precision`` settings.

A CPU has no TF32 and no fast half arithmetic: a backbone on the CPU computes in float32 whatever it was asked,
says so once in the log, and records both the precision it used and the one requested
(:func:`effective_precision`). ``allow_cpu`` runs bf16 and fp16 on the CPU anyway, for tests and drift
measurements on a machine without a GPU.

``measure_precision_drift(backbone_factory, clips, precisions=PRECISIONS)`` measures what a precision costs in
accuracy and gains in speed: ``backbone_factory(precision)`` builds a backbone for one precision, ``clips`` are
mono waveforms at its sample rate, and the result maps each precision (``float32``, the reference, always
included) to ``{"cosine_vs_float32": …, "relative_error_vs_float32": …, "seconds_per_clip": …}``: the lowest
cosine similarity, and the largest relative L2 error, between a clip's vector and its float32 vector over every
clip and layer, and the wall time of one :meth:`~audiorec.backbones.base.Backbone.embed_batch` over all clips
(after a warm-up call on the first clip) divided by their number.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from audiorec.backbones.base import Backbone
from audiorec.backbones.options import PRECISIONS, check_precision

log = logging.getLogger(__name__)

AUTOCAST_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}
"""The precisions that autocast, and to which dtype."""

DESCRIPTIONS = {
    "float32": "float32",
    "tf32": "tf32 (float32 weights, TensorFloat-32 matmuls and convolutions)",
    "bf16": "bfloat16 autocast",
    "fp16": "float16 autocast",
}
"""How table metadata names each precision actually used."""

__all__ = [
    "AUTOCAST_DTYPES",
    "PRECISIONS",
    "effective_precision",
    "measure_precision_drift",
    "precision_scope",
    "tf32_flags",
]


def effective_precision(requested: str, device: torch.device, *, allow_cpu: bool = False) -> str:
    """The precision a backbone asked for ``requested`` computes in on ``device`` (module docstring).

    A GPU computes what was asked. Elsewhere the answer is ``float32``, except bf16 and fp16 on the CPU
    when ``allow_cpu`` is set.
    """
    check_precision(requested, "backbone")
    if device.type == "cuda" or requested == "float32":
        return requested
    if allow_cpu and device.type == "cpu" and requested in AUTOCAST_DTYPES:
        return requested
    return "float32"


def note_cpu_precision(kind: str, requested: str, used: str) -> None:
    """One log line when a backbone computes in another precision than the one asked for."""
    if used != requested:
        log.info("%s: precision %s was asked for, but this device computes in %s", kind, requested, used)


@contextlib.contextmanager
def tf32_flags(enabled: bool) -> Iterator[None]:
    """TF32 on or off for cuBLAS matmuls and cuDNN convolutions inside the block, as it was after it."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    matmul_precision = torch.get_float32_matmul_precision()
    try:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
        torch.set_float32_matmul_precision("high" if enabled else "highest")
        yield
    finally:
        torch.set_float32_matmul_precision(matmul_precision)
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


@contextlib.contextmanager
def precision_scope(precision: str, device: torch.device, *, autocast: bool = True) -> Iterator[None]:
    """Compute in ``precision`` (an effective one, :func:`effective_precision`) on ``device`` inside the block.

    TF32 is on only for ``tf32``; bf16 and fp16 autocast on ``device`` unless ``autocast`` is False (a model
    that runs its own half-precision recipe, whose float32 parts must then stay IEEE float32).
    """
    check_precision(precision, "backbone")
    dtype = AUTOCAST_DTYPES.get(precision) if autocast else None
    with tf32_flags(precision == "tf32"):
        if dtype is not None and device.type in ("cuda", "cpu"):
            with torch.autocast(device.type, dtype=dtype):
                yield
        else:
            yield


def _synchronize(backbone: Backbone) -> None:
    device = getattr(backbone, "device", None)
    if isinstance(device, torch.device) and device.type == "cuda":
        torch.cuda.synchronize(device)


def _worst_agreement(vectors: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> tuple[float, float]:
    """Lowest cosine and largest relative L2 error of any clip's vector against its reference, over all layers."""
    cosine, error = 1.0, 0.0
    for name, matrix in reference.items():
        want, got = matrix.astype(np.float64), vectors[name].astype(np.float64)
        norms = np.linalg.norm(want, axis=1)
        if not np.all(norms > 0):
            raise ValueError(f"layer {name} has a zero float32 vector; its drift is undefined")
        cosine = min(cosine, float(np.min(np.sum(want * got, axis=1) / (norms * np.linalg.norm(got, axis=1)))))
        error = max(error, float(np.max(np.linalg.norm(got - want, axis=1) / norms)))
    return cosine, error


def measure_precision_drift(
    backbone_factory: Callable[[str], Backbone],
    clips: Sequence[np.ndarray],
    precisions: Sequence[str] = PRECISIONS,
) -> dict[str, dict[str, float]]:
    """Drift from float32 and time per clip of each precision (module docstring); float32 runs first."""
    if not clips:
        raise ValueError("measure_precision_drift needs at least one clip")
    order = ["float32", *(check_precision(p, "measure_precision_drift") for p in precisions if p != "float32")]
    results: dict[str, dict[str, float]] = {}
    reference: dict[str, np.ndarray] | None = None
    for precision in dict.fromkeys(order):
        backbone = backbone_factory(precision)
        backbone.embed_batch(list(clips[:1]))  # kernel selection and lazy set-up stay out of the timing
        _synchronize(backbone)
        start = time.perf_counter()
        vectors = backbone.embed_batch(list(clips))
        _synchronize(backbone)
        seconds = time.perf_counter() - start
        reference = reference if reference is not None else vectors
        cosine, error = _worst_agreement(vectors, reference)
        results[precision] = {
            "cosine_vs_float32": cosine,
            "relative_error_vs_float32": error,
            "seconds_per_clip": seconds / len(clips),
        }
        del backbone
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return results
