"""Options of a self-supervised backbone: its architecture, its pretext task and its training schedule."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audiorec.audio.windows import check_short_audio
from audiorec.common.config import dataclass_from_mapping
from audiorec.common.validation import check_float, check_int, check_positive
from audiorec.errors import ParameterError

LOSSES = ("infonce", "multi", "cpc")
"""``infonce``: siamese InfoNCE on segment vectors; ``multi``: InfoNCE summed over the 5 block levels;
``cpc``: MelCPC, a GRU over consecutive segments predicting the next ones."""
POSITIVES = ("self", "adjacent", "random")
"""Where the positive of an anchor segment comes from: an augmented copy of it, the next segment after a 0.5 s
gap, or another segment anywhere in the same track."""
N_BLOCKS = 5
SIMILARITIES = ("dot", "cosine")
"""How InfoNCE scores a pair: ``dot``, the paper's ``exp(y_aᵀ y_p)``; ``cosine``, ``exp(cos(y_a, y_p) / τ)``."""
DEFAULT_COSINE_TEMPERATURE = 0.1

WHERE = "backbone ssl"


@dataclass(frozen=True)
class SSLConfig:
    """Every hyper-parameter of a self-supervised backbone (the ``options`` of a ``kind: ssl`` backbone).

    Attributes
    ----------
    loss
        One of :data:`LOSSES`.
    positive
        One of :data:`POSITIVES` for ``infonce`` and ``multi``; must stay unset for ``cpc``, whose positives are
        the future segments of the same window.
    similarity
        How InfoNCE scores a pair: ``dot``, the raw dot product of eq. (1) (the paper), or ``cosine``, the cosine
        divided by ``temperature`` (a departure: bounded logits, no reward for growing norms, as in SimCLR).
    temperature
        Softmax temperature of the ``cosine`` similarity (0.1 when unset); the dot product takes none.
    channels
        Output channels of the 5 convolutional blocks (the paper's: 128, 256, 256, 512, 512).
    embedding_dim
        Size of a segment vector (per level for ``multi``: 5 × 128 = 640 in the paper's Table 3).
    context_dim
        Size of MelCPC's GRU state and outputs, the vectors its track embedding summarises (the paper's
        Table 3: 256).
    cpc_segments
        Consecutive 3-s segments in one MelCPC training window (4: the paper's 12 s).
    cpc_steps
        MelCPC predicts 1 to ``cpc_steps`` segments ahead of each context step; a window of ``cpc_segments``
        holds targets up to ``cpc_segments - 1`` steps ahead.
    epochs, batch_size, learning_rate
        Training schedule (Adam). One epoch draws one training example from every training track.
    lr_patience, lr_factor, min_lr
        The learning rate is multiplied by ``lr_factor`` after ``lr_patience`` epochs without a lower training
        loss; training stops once it falls below ``min_lr``.
    seed
        Seeds the initialisation and every random choice of training (segments, augmentations, batches).
    weights
        Checkpoint written by training; the workflow fills it in from rule ``ssl_train``.
    max_duration_s
        Crop tracks to their first seconds at extraction (None: every segment of the track, the paper's protocol).
    device
        ``cpu``, ``cuda``, ``cuda:N``, or None / ``auto`` for the GPU when one is visible.
    short_audio
        At extraction, a track shorter than one 3-s segment, which the encoder cannot read: ``skip`` (the default)
        records it in the failures table as "shorter than one window (3 s)"; ``pad`` zero-pads it to one segment.
    """

    loss: str = "infonce"
    positive: str | None = None
    similarity: str = "dot"
    temperature: float | None = None
    channels: tuple[int, ...] = (128, 256, 256, 512, 512)
    embedding_dim: int = 128
    context_dim: int = 256
    cpc_segments: int = 4
    cpc_steps: int = 3
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_patience: int = 3
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    seed: int = 0
    weights: str | None = None
    max_duration_s: float | None = None
    device: str | None = None
    short_audio: str = "skip"

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        check_short_audio(self.short_audio, WHERE)
        if self.loss not in LOSSES:
            raise ParameterError(f"{WHERE} option loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.loss == "cpc" and self.positive is not None:
            raise ParameterError(
                f"{WHERE} option positive must be unset for loss 'cpc' (its positives are future segments), "
                f"got {self.positive!r}"
            )
        if self.loss != "cpc" and self.positive not in POSITIVES:
            raise ParameterError(
                f"{WHERE} option positive must be one of {list(POSITIVES)} for loss {self.loss!r}, "
                f"got {self.positive!r}"
            )
        if len(self.channels) != N_BLOCKS or any(not isinstance(c, int) or c <= 0 for c in self.channels):
            raise ParameterError(f"{WHERE} option channels must be {N_BLOCKS} positive integers, got {self.channels}")
        if self.similarity not in SIMILARITIES:
            raise ParameterError(
                f"{WHERE} option similarity must be one of {list(SIMILARITIES)}, got {self.similarity!r}"
            )
        if self.similarity == "dot" and self.temperature is not None:
            raise ParameterError(
                f"{WHERE} option temperature applies to similarity 'cosine' only; the paper's dot product has none"
            )
        if self.similarity == "cosine" and self.temperature is None:
            object.__setattr__(self, "temperature", DEFAULT_COSINE_TEMPERATURE)
        sizes = ("embedding_dim", "context_dim", "epochs", "batch_size", "lr_patience", "cpc_segments", "cpc_steps")
        for name in sizes:
            check_int(name, getattr(self, name), minimum=1, where=WHERE)
        if self.batch_size < 2:
            raise ParameterError(
                f"{WHERE} option batch_size must be at least 2 (in-batch negatives), got {self.batch_size}"
            )
        if self.loss == "cpc" and self.cpc_steps >= self.cpc_segments:
            raise ParameterError(
                f"{WHERE} option cpc_steps ({self.cpc_steps}) must be smaller than cpc_segments ({self.cpc_segments}): "
                "a window of n segments holds targets at most n - 1 steps ahead"
            )
        for name in ("learning_rate", "min_lr", *(("temperature",) if self.similarity == "cosine" else ())):
            check_positive(name, getattr(self, name), where=WHERE)
        check_float("lr_factor", self.lr_factor, low=0.0, high=1.0, where=WHERE)
        if self.max_duration_s is not None:
            check_positive("max_duration_s", self.max_duration_s, where=WHERE)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> SSLConfig:
        """Build from a config block, rejecting unknown keys."""
        return dataclass_from_mapping(cls, options, WHERE)

    @property
    def multi_level(self) -> bool:
        """Whether the encoder has one head per block (the ``multi`` loss) instead of one on the last block."""
        return self.loss == "multi"

    def architecture(self) -> dict[str, Any]:
        """The fields that decide the network's parameters; a checkpoint must match them to be loaded."""
        return {
            "loss": self.loss,
            "channels": list(self.channels),
            "embedding_dim": self.embedding_dim,
            "context_dim": self.context_dim if self.loss == "cpc" else 0,
            "cpc_steps": self.cpc_steps if self.loss == "cpc" else 0,
        }

    @property
    def output_dim(self) -> int:
        """Width of what the encoder outputs per segment, as the paper's Table 3 lists it (before the mean and
        standard deviation over segments double it): 128 for InfoNCE, 5 × 128 = 640 for the multi-level loss,
        the GRU's 256 for MelCPC."""
        if self.loss == "multi":
            return N_BLOCKS * self.embedding_dim
        return self.context_dim if self.loss == "cpc" else self.embedding_dim

    def training_fingerprint(self) -> dict[str, Any]:
        """What a resumable training state depends on: everything but where and how long it runs."""
        ignored = {"weights", "device", "max_duration_s", "epochs"}
        values = dataclasses.asdict(self)
        values["channels"] = list(self.channels)
        return {name: value for name, value in values.items() if name not in ignored}
