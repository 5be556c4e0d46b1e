"""Options of every model kind, in a module that imports no model code.

The workflow validates each model's ``options`` against these dataclasses while it builds its DAG (see
:mod:`audiorec.plan`), before any job runs and without importing torch; the models build themselves from the
same classes, so a misspelt key such as ``lr`` for ``learning_rate`` fails at once, naming the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from audiorec.common.validation import check_float, check_int, check_positive
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


def _check_non_negative(name: str, value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ParameterError(f"{where} option {name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class EASEOptions:
    """EASE (Steck 2019): ``l2`` is λ, the weight of the L2 penalty on the item weights; ``max_items`` is the largest
    catalogue it fits (items² × 12 bytes in float64: 10.1 GiB at 30k items, 35.3 GiB at the Onion's 56k); ``dtype``
    of the solve, ``float64`` (exact) or ``float32`` (items² × 4 bytes)."""

    l2: float = 500.0
    max_items: int = 30000
    dtype: str = "float64"

    def __post_init__(self) -> None:
        check_positive("l2", self.l2, where="model ease")
        check_int("max_items", self.max_items, minimum=1, where="model ease")
        if self.dtype not in ("float64", "float32"):
            raise ParameterError(f"model ease option dtype must be 'float64' or 'float32', got {self.dtype!r}")


@dataclass(frozen=True)
class ItemKNNOptions:
    """Item-based kNN: the ``neighbours`` most similar items kept per item, and the cosine's ``shrink`` term."""

    neighbours: int = 100
    shrink: float = 0.0

    def __post_init__(self) -> None:
        check_int("neighbours", self.neighbours, minimum=1, where="model itemknn")
        _check_non_negative("shrink", self.shrink, "model itemknn")


@dataclass(frozen=True)
class IALSOptions:
    """Implicit ALS (Hu et al. 2008): ``factors`` per user and item, L2 ``regularization``, confidence 1 + ``alpha``
    of every train pair, ``iterations`` of alternating solves, ``num_threads`` of the solver (0: torch's count)."""

    where: ClassVar[str] = "model ials"
    factors: int = 64
    regularization: float = 0.01
    alpha: float = 1.0
    iterations: int = 15
    num_threads: int = 0

    def __post_init__(self) -> None:
        check_int("factors", self.factors, minimum=1, where=self.where)
        check_positive("regularization", self.regularization, where=self.where)
        _check_non_negative("alpha", self.alpha, self.where)
        check_int("iterations", self.iterations, minimum=1, where=self.where)
        check_int("num_threads", self.num_threads, minimum=0, where=self.where)


@dataclass(frozen=True)
class CFHybridOptions(IALSOptions):
    """The cold-start hybrid: iALS's options, then the map from audio to its item factors. ``mapping`` is
    ``ridge`` (closed form, penalty ``ridge_l2``) or ``mlp`` (``hidden`` units, Adam at ``learning_rate`` for at
    most ``epochs`` of ``batch_size`` items, stopped after ``patience`` epochs without a lower error on the
    held-out ``validation_fraction`` of the items)."""

    where: ClassVar[str] = "model cf_hybrid"
    mapping: str = "ridge"
    ridge_l2: float = 1.0
    hidden: int = 256
    epochs: int = 100
    learning_rate: float = 1e-3
    batch_size: int = 256
    patience: int = 10
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mapping not in ("ridge", "mlp"):
            raise ParameterError(f"{self.where} option mapping must be 'ridge' or 'mlp', got {self.mapping!r}")
        check_positive("ridge_l2", self.ridge_l2, where=self.where)
        for name in ("hidden", "epochs", "batch_size", "patience"):
            check_int(name, getattr(self, name), minimum=1, where=self.where)
        check_positive("learning_rate", self.learning_rate, where=self.where)
        check_float("validation_fraction", self.validation_fraction, low=0.0, high=1.0, where=self.where)


BIMODAL_LOSSES = ("dcl", "dclw", "sdcl", "sdclw", "adcl", "adclw")
"""The contrastive losses of the Bimodal kinds (:mod:`audiorec.recommenders.contrastive` defines each)."""


@dataclass(frozen=True)
class BimodalOptions(TrainingOptions):
    """The Bimodal kinds (``bimodal_content``, ``bimodal_collaborative``, ``bimodal_average``); the defaults are the
    original's (Tamm & Aljanaki, journal version): towers of ``hidden_dim`` 768, ``loss`` ``dcl`` at
    ``temperature`` 0.1 (``sigma`` 0.5 weights the ``*w`` variants), batches of 10000 items, Adam at 1e-3 in full
    precision (``amp`` false), at most 100 epochs, ``selection`` ``train_loss`` (the original selects on the
    epoch's training loss; ``val_hitrate``: on the validation HitRate). ``unit_items`` normalises the item vectors
    before scoring (the original scores with raw tower outputs). ``standardize`` z-scores the audio table.
    ``elsa_*`` set the ELSA fit whose item factors the collaborative tower reads (its other options are
    :class:`ELSAOptions`' defaults, the original's)."""

    where: ClassVar[str] = "model bimodal"
    batch_size: int = 10000
    amp: bool = False
    hidden_dim: int = 768
    loss: str = "dcl"
    temperature: float = 0.1
    sigma: float = 0.5
    selection: str = "train_loss"
    unit_items: bool = False
    standardize: bool = False
    elsa_factors: int = 768
    elsa_max_epochs: int = 10
    elsa_batch_size: int = 128
    elsa_learning_rate: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hidden_dim", "elsa_factors", "elsa_max_epochs", "elsa_batch_size"):
            check_int(name, getattr(self, name), minimum=1, where=self.where)
        if self.loss not in BIMODAL_LOSSES:
            raise ParameterError(f"{self.where} option loss must be one of {list(BIMODAL_LOSSES)}, got {self.loss!r}")
        if self.selection not in ("train_loss", "val_hitrate"):
            raise ParameterError(
                f"{self.where} option selection must be 'train_loss' or 'val_hitrate', got {self.selection!r}"
            )
        for name in ("temperature", "sigma", "elsa_learning_rate"):
            check_positive(name, getattr(self, name), where=self.where)

    def elsa_options(self) -> ELSAOptions:
        """The options of the ELSA fit: the ``elsa_*`` values over ELSA's defaults, and the run's
        ``max_batches_per_epoch`` (a cost probe cuts every epoch it trains, the ELSA fit's included)."""
        return ELSAOptions(
            factors=self.elsa_factors,
            max_epochs=self.elsa_max_epochs,
            batch_size=self.elsa_batch_size,
            learning_rate=self.elsa_learning_rate,
            max_batches_per_epoch=self.max_batches_per_epoch,
        )


NEVER = 1_000_000
"""A patience no run reaches: ELSA's reference training has neither a plateau schedule nor early stopping."""


@dataclass(frozen=True)
class ELSAOptions(TrainingOptions):
    """ELSA (Vančura et al. 2022) as the journal version of Tamm & Aljanaki trains it with ``elsarec``: ``factors``
    per item, NAdam at lr 0.01 for a fixed 10 epochs of 128 users in row order (``shuffle: false``, elsarec's
    ``fit`` default), full precision, and the last epoch kept (no plateau schedule, no early stopping: the
    patiences default to :data:`NEVER`). ``optimizer`` is ``nadam`` (elsarec's) or ``adam``."""

    factors: int = 768
    max_epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 0.01
    lr_patience: int = NEVER
    early_stopping_patience: int = NEVER
    amp: bool = False
    restore_best: bool = False
    optimizer: str = "nadam"
    shuffle: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("factors", self.factors, minimum=1)
        if self.optimizer not in ("adam", "nadam"):
            raise ParameterError(f"option optimizer must be 'adam' or 'nadam', got {self.optimizer!r}")
        if not isinstance(self.shuffle, bool):
            raise ParameterError(f"option shuffle must be true or false, got {self.shuffle!r}")


@dataclass(frozen=True)
class AudioELSAOptions(ELSAOptions):
    """The journal's Hybrid: ELSA whose item factors are an MLP of the audio embedding, Linear(d, ``factors``) →
    ReLU → Linear(``factors``, ``factors``) (the original's ``hidden_dim`` sets both widths). Its training script's
    defaults: Adam at lr 0.01, batches of 128 users shuffled every epoch, at most 200 epochs, the learning rate
    divided by 10 after 5 epochs without a lower validation loss and training stopped after 16, the best epoch
    kept. ``standardize`` z-scores the embeddings per dimension first (the original feeds them raw)."""

    max_epochs: int = 200
    lr_patience: int = 5
    early_stopping_patience: int = 16
    restore_best: bool = True
    optimizer: str = "adam"
    shuffle: bool = True
    standardize: bool = False
