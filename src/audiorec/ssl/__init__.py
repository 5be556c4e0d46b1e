"""Contrastive self-supervised encoders of music audio (Choi et al., 2022), trained by the workflow itself.

Siamese encoders learn from an anchor segment and one positive (an augmented copy, the adjacent segment, or a
random segment of the same track) with InfoNCE, on the last block or summed over all five blocks; MelCPC learns
to predict the next segments of a 12-s window from a GRU context. Trained encoders become ``kind: ssl``
backbones (:mod:`audiorec.backbones.ssl`).
"""

from audiorec.ssl.config import LOSSES, POSITIVES, SSLConfig
from audiorec.ssl.data import training_track_ids
from audiorec.ssl.losses import cpc_loss, info_nce, multi_level_info_nce
from audiorec.ssl.model import EncoderOutput, MelEncoder, SSLModel
from audiorec.ssl.trainer import TrainingHistory, save_checkpoint, train

__all__ = [
    "LOSSES",
    "POSITIVES",
    "EncoderOutput",
    "MelEncoder",
    "SSLConfig",
    "SSLModel",
    "TrainingHistory",
    "cpc_loss",
    "info_nce",
    "multi_level_info_nce",
    "save_checkpoint",
    "train",
    "training_track_ids",
]
