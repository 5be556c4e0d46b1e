"""The ``journal`` section of ``gpu_check.py``: one epoch each of the journal version's trained kinds on the GPU.

ELSA (768 factors, batches of 128 users), the Hybrid (ELSA whose factors an MLP maps from 768-d audio vectors) and
the Bimodal net (towers of 768 over the audio vectors and ELSA's initial factors, DCL on batches of 10000 items),
each through the workflow's trainer on the Onion-shaped log of the ``bert4rec`` section, at the journal's default
options: the seconds of the training pass and of the epoch's validation, and the peak GPU memory. On two CPU cores
an ELSA epoch takes minutes and a Bimodal epoch about two (``elsa_epoch.py``, ``bimodal_epoch.py``): these are the
figures a GPU is expected to shrink, measured where the rest of the check runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from gpu_check_sections import Sizes, epoch_figures, peak_memory_gb, synchronize, synthetic_log

from audiorec.recommenders.audio_elsa import AudioELSA
from audiorec.recommenders.base import TrainData
from audiorec.recommenders.bimodal import BimodalNet, BimodalTask
from audiorec.recommenders.elsa import ELSA, ELSATask
from audiorec.recommenders.options import AudioELSAOptions, BimodalOptions, ELSAOptions, TrainingOptions
from audiorec.recommenders.trainer import TrainingTask
from audiorec.recommenders.trainer import train as train_task

Built = tuple[TrainingTask, TrainingOptions]
"""A task ready for the trainer and the options it trains with."""
Measure = Callable[[TrainData, TrainData, Sizes, torch.device], Built]


def elsa_task(train: TrainData, validation: TrainData, sizes: Sizes, device: torch.device) -> Built:
    options = ELSAOptions(factors=sizes.journal_width, max_epochs=1)
    module = ELSA(train.heard.shape[1], options.factors).to(device)
    return ELSATask(module, train.heard, validation.heard, options), options


def hybrid_task(train: TrainData, validation: TrainData, sizes: Sizes, device: torch.device) -> Built:
    options = AudioELSAOptions(factors=sizes.journal_width, max_epochs=1)
    audio = torch.randn(train.heard.shape[1], sizes.journal_width)
    module = AudioELSA(audio, options.factors).to(device)
    return ELSATask(module, train.heard, validation.heard, options), options


def bimodal_task(train: TrainData, validation: TrainData, sizes: Sizes, device: torch.device) -> Built:
    options = BimodalOptions(max_epochs=1, hidden_dim=sizes.journal_width, batch_size=sizes.bimodal_batch)
    audio = torch.randn(train.heard.shape[1], sizes.journal_width)
    factors = ELSA(train.heard.shape[1], sizes.journal_width).factors.detach()  # ELSA's initial table
    module = BimodalNet(audio, factors, options.hidden_dim).to(device)
    return BimodalTask(module, train, validation, options, "content"), options


KINDS: dict[str, Measure] = {"elsa": elsa_task, "hybrid": hybrid_task, "bimodal": bimodal_task}


def journal_epoch(kind: str, sizes: Sizes, device: torch.device) -> dict[str, Any]:
    """One epoch of ``kind`` (a key of :data:`KINDS`) on the Onion-shaped log, through the trainer."""
    train, validation = synthetic_log(sizes.users, sizes.items, sizes.pairs_per_user)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    task, options = KINDS[kind](train, validation, sizes, device)
    result = train_task(task, options, seed=0, progress=False)
    synchronize(device)
    epoch = result.history[-1]
    return {
        **epoch_figures(sizes, train, options.batch_size, epoch),
        "width": sizes.journal_width,
        **peak_memory_gb(device),
    }
