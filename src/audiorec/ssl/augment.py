"""The self-augmentation positive: pitch shift, time stretch, reverb and noise.

The chain follows Choi et al. (2022, sec. 2.3.1), built from maintained libraries: ``audiomentations`` for the
chain and most transforms, ``pedalboard``'s Freeverb for the reverb. Every transform keeps the segment's length.

The paper also lists polarity inversion (after Kharitonov et al. 2021, who augment raw waveforms). The encoders
here, like the paper's, read a power mel-spectrogram, and ``|STFT(-x)| = |STFT(x)|``: inverting the polarity
changes no input value, so the chain leaves it out rather than spend a random draw on a no-op
(``tests/test_ssl.py`` checks that the spectrogram is identical).

``audiomentations`` draws its parameters from Python's ``random`` and NumPy's global generator, so
:func:`augment` seeds both from the generator it is given (and restores them afterwards): an augmented copy is a
pure function of that generator's state.
"""

from __future__ import annotations

import functools
import random

import numpy as np
from audiomentations import AddGaussianSNR, Compose, OneOf, PitchShift, TimeStretch
from audiomentations.core.transforms_interface import BaseWaveformTransform
from pedalboard import Reverb as Freeverb

SEMITONES = (-2, -1, 1, 2)
STRETCH_RATES = (0.8, 1.2)
SNR_DB = (10.0, 30.0)
"""Signal-to-noise range of the added white noise (the paper gives no figure)."""
REVERB_ROOM_SIZES = (0.2, 0.9)


class Reverb(BaseWaveformTransform):
    """Algorithmic room reverb with a random room size and wet level; the output keeps the input's length."""

    supports_multichannel = False

    def randomize_parameters(self, samples: np.ndarray, sample_rate: int) -> None:
        super().randomize_parameters(samples, sample_rate)
        if self.parameters["should_apply"]:
            self.parameters["room_size"] = random.uniform(*REVERB_ROOM_SIZES)
            self.parameters["wet_level"] = random.uniform(0.2, 0.5)

    def apply(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        effect = Freeverb(
            room_size=self.parameters["room_size"],
            wet_level=self.parameters["wet_level"],
            dry_level=1.0 - self.parameters["wet_level"],
        )
        return effect(np.asarray(samples, dtype=np.float32), sample_rate)


@functools.cache
def augmentation_chain() -> Compose:
    """Pitch shift by ±1 or ±2 semitones, time stretch 0.8–1.2, reverb (p = 0.5) and noise (p = 0.5), applied in
    this order (polarity inversion, a no-op on the spectrogram, is left out: see the module docstring)."""
    return Compose(
        [
            OneOf([PitchShift(min_semitones=s, max_semitones=s, p=1.0) for s in SEMITONES]),
            TimeStretch(min_rate=STRETCH_RATES[0], max_rate=STRETCH_RATES[1], leave_length_unchanged=True, p=1.0),
            Reverb(p=0.5),
            AddGaussianSNR(min_snr_db=SNR_DB[0], max_snr_db=SNR_DB[1], p=0.5),
        ]
    )


def augment(segment: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """An augmented copy of a mono float32 ``segment``, of the same length, determined by ``rng``."""
    seed = int(rng.integers(2**32))
    saved = random.getstate(), np.random.get_state()  # noqa: NPY002
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - audiomentations draws its noise from NumPy's global generator
    try:
        out = augmentation_chain()(samples=np.asarray(segment, dtype=np.float32), sample_rate=sample_rate)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])  # noqa: NPY002
    return np.ascontiguousarray(out, dtype=np.float32)
