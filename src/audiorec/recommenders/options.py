"""Options of every model kind, in a module that imports no model code.

The workflow validates each model's ``options`` against these dataclasses while it builds its DAG (see
:mod:`audiorec.plan`), before any job runs and without importing torch; the models build themselves from the
same classes, so a misspelt key such as ``lr`` for ``learning_rate`` fails at once, naming the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audiorec.common.validation import check_float, check_int
from audiorec.errors import ParameterError


@dataclass(frozen=True)
class NoOptions:
    """The baselines have no hyper-parameters; an empty dataclass still rejects misspelt keys."""


@dataclass(frozen=True)
class KNNConfig:
    """``standardize`` z-scores every embedding dimension over the catalogue before the cosine.

    The paper uses raw embeddings (False); with hand-crafted features such as MFCC statistics, whose
    dimensions differ in scale by orders of magnitude, standardising lets every dimension count.
    """

    standardize: bool = False


@dataclass(frozen=True)
class TrainingOptions:
    """Optimisation settings shared by the trained recommenders (keys of their ``options`` block).

    Defaults follow the paper's Shallow Net (Adam, lr 1e-3, at most 100 epochs); each model's options class
    overrides what differs. ``validation_k`` is the cut-off of the validation HitRate written to the log.
    ``restore_best: false`` keeps the last epoch's state instead of the best-validated one, for comparisons
    "after the same number of epochs" (the validation loss may bottom out early while ranking keeps improving).
    ``max_batches_per_epoch`` cuts every epoch short after that many batches (None: whole epochs). It exists to
    time paper-sized runs on small machines: the training log records the batches trained and the batches of a
    whole epoch, from which the time of full training is projected; numbers from a cut run are not the model's.
    """

    max_epochs: int = 100
    max_batches_per_epoch: int | None = None
    batch_size: int = 1024
    learning_rate: float = 1e-3
    lr_patience: int = 5
    lr_factor: float = 0.1
    early_stopping_patience: int = 16
    validation_k: int = 50
    amp: bool = True
    restore_best: bool = True

    def __post_init__(self) -> None:
        for name in ("max_epochs", "batch_size", "lr_patience", "early_stopping_patience", "validation_k"):
            check_int(name, getattr(self, name), minimum=1 if name != "lr_patience" else 0)
        if self.max_batches_per_epoch is not None:
            check_int("max_batches_per_epoch", self.max_batches_per_epoch, minimum=1)
        check_float("learning_rate", self.learning_rate, low=0.0, high=math.inf)
        check_float("lr_factor", self.lr_factor, low=0.0, high=1.0)


@dataclass(frozen=True)
class ShallowCommonOptions(TrainingOptions):
    """Options of both Shallow Net variants (on top of :class:`TrainingOptions`).

    ``margin`` and ``n_negatives`` are the hinge margin and the negative users per positive pair (the paper:
    20); ``separate_towers`` gives users and items their own fully connected layer instead of a shared one.
    """

    margin: float = 0.2
    n_negatives: int = 20
    separate_towers: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_float("margin", self.margin, low=0.0, high=2.0)
        check_int("n_negatives", self.n_negatives, minimum=1)


@dataclass(frozen=True)
class ShallowNetOptions(ShallowCommonOptions):
    """``standardize`` z-scores the frozen table per dimension first (the paper: raw embeddings)."""

    standardize: bool = False


@dataclass(frozen=True)
class RandomShallowNetOptions(ShallowCommonOptions):
    """``item_dim`` is the size of the randomly initialised item (and user) vectors."""

    item_dim: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("item_dim", self.item_dim, minimum=1)


@dataclass(frozen=True)
class Bert4RecCommonOptions(TrainingOptions):
    """Options of both BERT4Rec variants (on top of :class:`TrainingOptions`).

    ``hidden_size`` defaults to the item embedding size, as in the paper; it must be divisible by
    ``n_heads``. ``dropout`` applies to embeddings and residual branches, ``attention_dropout`` to attention
    weights (BERT's two rates). On a CPU, attention dropout forces the unfused attention kernel and costs
    about ten times the attention without it, so CPU demos may set it to 0. ``last_item_probability`` is the
    share of training batches that mask only each sequence's last track: Sun et al. (2019, sec. 3.6) add such
    samples because they match the prediction task, and RecBole's ``ft_ratio`` does the same (0.5). Without
    them, training after a few epochs is several points of NDCG behind and varies much more with the seed.
    """

    max_epochs: int = 200
    batch_size: int = 128
    max_len: int = 300
    mask_probability: float = 0.2
    last_item_probability: float = 0.5
    n_layers: int = 2
    n_heads: int = 2
    feedforward_dim: int = 256
    dropout: float = 0.1
    attention_dropout: float = 0.1
    hidden_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("max_len", self.max_len, minimum=2)
        check_float("mask_probability", self.mask_probability, low=0.0, high=1.0)
        if isinstance(self.last_item_probability, bool) or not 0 <= self.last_item_probability <= 1:
            raise ParameterError(f"option last_item_probability must be in [0, 1], got {self.last_item_probability!r}")
        for name in ("n_layers", "n_heads", "feedforward_dim"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("dropout", "attention_dropout"):
            if getattr(self, name) != 0:
                check_float(name, getattr(self, name), low=0.0, high=1.0)
        if self.hidden_size is not None:
            check_int("hidden_size", self.hidden_size, minimum=1)


@dataclass(frozen=True)
class Bert4RecOptions(Bert4RecCommonOptions):
    """``standardize`` z-scores the frozen table per dimension first (the paper: raw embeddings)."""

    standardize: bool = False


@dataclass(frozen=True)
class RandomBert4RecOptions(Bert4RecCommonOptions):
    """``item_dim`` is the size of the randomly initialised item vectors."""

    item_dim: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("item_dim", self.item_dim, minimum=1)
