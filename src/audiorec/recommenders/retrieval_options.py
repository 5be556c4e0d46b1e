"""The ``retrieval`` setting: how the models that score by an inner product find each user's top K.

``exact`` (the default) scores every user against every candidate (:mod:`audiorec.recommenders.retrieval`);
``faiss`` searches a FAISS index of the item vectors instead (:mod:`audiorec.recommenders.faiss_retrieval`):
``Flat`` gives the exact ranking through FAISS's kernels, an ``IVF…`` or ``HNSW…`` index an approximate one
that is faster on large catalogues. Heard tracks are removed exactly on every backend.

This module imports neither torch nor faiss: the workflow checks the setting while it builds its DAG (the index
string against the factory grammar below, :meth:`RetrievalOptions.check_installed` whether faiss can be
imported), so that a missing package or a mistyped index fails before any job runs.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from audiorec.common.validation import check_int
from audiorec.errors import ParameterError

BACKENDS = ("exact", "faiss")
INSTALL_HINT = "python -m pip install 'audiorec[faiss]' (faiss-cpu==1.15.1; a faiss GPU build instead, for a GPU)"

_CODING = r"(?:Flat|SQ(?:4|6|8|fp16|bf16)|PQ\d+(?:x\d+)?)"
_INDEX = re.compile(rf"^(?:Flat|IVF(?P<nlist>\d+)(?:_HNSW\d+)?,{_CODING}|HNSW(?P<links>\d+)(?:,{_CODING})?)$")
"""FAISS factory strings of the three families (``Flat``; ``IVF<lists>[_HNSW<m>],<coding>``;
``HNSW<links>[,<coding>]``), with the codings FAISS's factory names ``Flat``, ``SQ4/6/8/fp16/bf16`` and
``PQ<m>[x<bits>]``."""

GPU_MAX_PROBES = 2048
"""FAISS's GPU IVF search probes at most this many lists (and returns at most as many neighbours per query)."""


@dataclass(frozen=True)
class RetrievalOptions:
    """One ``retrieval`` block.

    Attributes
    ----------
    backend
        ``exact`` or ``faiss``.
    index
        FAISS factory string (``faiss`` only): ``Flat`` (exact inner product), ``IVF<lists>,<coding>`` (e.g.
        ``IVF1024,Flat``, k-means lists trained on the items with a fixed seed) or ``HNSW<links>`` (e.g. ``HNSW32``).
    nprobe
        Lists an IVF index searches per query (more: slower, closer to exact); at most the index's lists.
    ef_search
        Size of an HNSW index's search queue (more: slower, closer to exact); FAISS uses at least the fetch size.
    """

    backend: str = "exact"
    index: str = "Flat"
    nprobe: int = 32
    ef_search: int = 128

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ParameterError(f"retrieval.backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        match = _INDEX.match(self.index) if isinstance(self.index, str) else None
        if match is None:
            raise ParameterError(
                f"retrieval.index {self.index!r} is not a FAISS index of a supported family: 'Flat', "
                "'IVF<lists>,<coding>' (e.g. 'IVF1024,Flat', 'IVF4096,SQ8') or 'HNSW<links>[,<coding>]' (e.g. 'HNSW32')"
            )
        check_int("nprobe", self.nprobe, minimum=1, where="retrieval")
        check_int("ef_search", self.ef_search, minimum=1, where="retrieval")
        if self.nlist is not None and self.nlist < 1:
            raise ParameterError(f"retrieval.index {self.index!r} needs at least one list")
        if self.nlist is not None and self.nprobe > self.nlist:
            raise ParameterError(
                f"retrieval.nprobe {self.nprobe} exceeds the {self.nlist} lists of retrieval.index {self.index!r}"
            )

    @classmethod
    def from_config(cls, entry: Mapping[str, Any] | None) -> RetrievalOptions:
        """The options of a config's ``retrieval`` block (None or ``{}``: exact); unknown keys are an error."""
        entry = dict(entry or {})
        unknown = sorted(set(entry) - {field.name for field in fields(cls)})
        if unknown:
            raise ParameterError(f"retrieval has unknown key(s) {unknown}; known: {[f.name for f in fields(cls)]}")
        return cls(**entry)

    @property
    def family(self) -> str:
        """``flat``, ``ivf`` or ``hnsw``: what the index's search parameters mean."""
        return "flat" if self.index == "Flat" else "ivf" if self.index.startswith("IVF") else "hnsw"

    @property
    def nlist(self) -> int | None:
        """The number of lists of an IVF index, None for the other families."""
        match = _INDEX.match(self.index)
        return int(match["nlist"]) if match and match["nlist"] else None

    @property
    def is_exact(self) -> bool:
        return self.backend == "exact"

    def recorded(self) -> dict[str, Any]:
        """The settings that decide a ranking: the backend, and for FAISS the index and its search parameter
        (``nprobe`` of an IVF index, ``ef_search`` of an HNSW one). What a ranking job is told and what its
        recommendations record; :meth:`from_config` reads it back."""
        if self.is_exact:
            return {"backend": self.backend}
        knob = {"ivf": {"nprobe": self.nprobe}, "hnsw": {"ef_search": self.ef_search}}.get(self.family, {})
        return {"backend": self.backend, "index": self.index, **knob}

    def describe(self) -> str:
        """One line for logs: the backend and, for FAISS, the index and its search parameter."""
        if self.is_exact:
            return "exact"
        knob = {"ivf": f", nprobe {self.nprobe}", "hnsw": f", efSearch {self.ef_search}"}.get(self.family, "")
        return f"faiss {self.index}{knob}"

    def check_installed(self) -> None:
        """Raise unless the backend can run here: for ``faiss``, the faiss package must be importable."""
        if not self.is_exact and importlib.util.find_spec("faiss") is None:
            raise ParameterError(
                f"retrieval.backend 'faiss' needs the faiss package, which is not installed: {INSTALL_HINT}"
            )


EXACT = RetrievalOptions()
"""The default: exact retrieval, as every model ranked before the setting existed."""
