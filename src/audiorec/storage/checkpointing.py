"""Resumable training state, shared by the recommender trainer and the self-supervised one.

A training state is a dict of tensors and plain values written with :func:`torch.save` after every epoch.
It is written atomically, so a kill mid-write leaves the previous epoch's state, and it carries a fingerprint
of the options and data it was trained on, so a changed config starts afresh instead of resuming a stale run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.storage.atomic import atomic_path

log = logging.getLogger(__name__)


def data_fingerprint(*parts: Any) -> str:
    """SHA-256 of options and arrays: a resume state is only reused for exactly the same problem.

    Arrays and sparse matrices are hashed by shape and content, bytes as they are (a single bytes part gives the
    plain SHA-256 of those bytes), anything else by its ``repr``.
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, sp.spmatrix | sp.sparray):
            part = sp.csr_matrix(part)
            arrays = [np.asarray(part.shape), part.indptr, part.indices, part.data]
        elif isinstance(part, np.ndarray):
            arrays = [np.asarray(part.shape), part.astype(str) if part.dtype == object else part]
        else:
            raw = part if isinstance(part, bytes) else repr(part).encode()
            arrays = [np.frombuffer(raw, dtype=np.uint8)]
        for array in arrays:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def save_state(state: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``state`` with :func:`torch.save` through a temporary file, so ``path`` is never half written.

    The state goes through an open file, not the temporary's name: given a name, :func:`torch.save` stores it as
    the archive's root folder, so the same state would be written as different bytes on every run.
    """
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        torch.save(state, handle)


def load_state(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The state saved at ``path`` if it exists, can be read and carries ``fingerprint``; otherwise ``None``.

    An unreadable state only costs a fresh start, never the run.
    """
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        log.warning("%s: unreadable resume state (%s); starting afresh", path, error)
        return None
    if state.get("fingerprint") != fingerprint:
        log.info("%s: resume state belongs to other options or data; starting afresh", path)
        return None
    return state


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """torch's global generators (dropout) and ``generator`` (sampling), for a resume to draw what a run would."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "sampler": generator.get_state(),
    }


def set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["sampler"])
