"""Options of the example's kinds, in a module that imports neither torch nor numpy.

audiorec checks every config entry's options while Snakemake builds its DAG, by importing the options class a
descriptor names. Keeping them here, apart from the models, is what keeps a dry run fast for users of the plugin.
"""

from __future__ import annotations

from dataclasses import dataclass

from audiorec.common.validation import check_int, check_positive
from audiorec.errors import ParameterError


@dataclass(frozen=True)
class TinyCNNOptions:
    """A two-block CNN on log-mel spectrograms with seeded random weights (a stand-in for your trained model)."""

    sample_rate: int = 16000
    n_mels: int = 48
    channels: tuple[int, int] = (16, 32)
    seed: int = 0
    max_duration_s: float | None = 30.0
    device: str | None = None

    def __post_init__(self) -> None:
        check_int("sample_rate", self.sample_rate, 8000, where="backbone tiny_cnn")
        check_int("n_mels", self.n_mels, 8, where="backbone tiny_cnn")
        check_int("seed", self.seed, 0, where="backbone tiny_cnn")
        object.__setattr__(self, "channels", tuple(self.channels))
        if len(self.channels) != 2:
            raise ParameterError(f"backbone tiny_cnn option channels must name two widths, got {self.channels!r}")
        for width in self.channels:
            check_int("channels", width, 1, where="backbone tiny_cnn")
        if self.max_duration_s is not None:
            check_positive("max_duration_s", self.max_duration_s, where="backbone tiny_cnn")


@dataclass(frozen=True)
class RP3betaOptions:
    """RP3beta's walk: each transition probability raised to ``alpha``, target items discounted by their
    popularity to the power ``beta``, and the ``neighbours`` strongest targets kept per item."""

    alpha: float = 1.0
    beta: float = 0.5
    neighbours: int = 100

    def __post_init__(self) -> None:
        check_positive("alpha", self.alpha, where="model rp3beta")
        if isinstance(self.beta, bool) or not isinstance(self.beta, int | float) or not 0 <= self.beta <= 2:
            raise ParameterError(f"model rp3beta option beta must be a number in [0, 2], got {self.beta!r}")
        check_int("neighbours", self.neighbours, 1, where="model rp3beta")
