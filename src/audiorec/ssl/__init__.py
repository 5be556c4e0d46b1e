"""Contrastive self-supervised encoders of music audio (Choi et al., 2022), trained by the workflow itself.

Siamese encoders learn from an anchor segment and one positive (an augmented copy, the adjacent segment, or a
random segment of the same track) with InfoNCE, on the last block or summed over all five blocks; MelCPC learns
to predict the next segments of a 12-s window from a GRU context. Trained encoders become ``kind: ssl``
backbones (:mod:`audiorec.backbones.ssl`).

Names are imported on first use (:mod:`audiorec.common.lazy`): the workflow reads :mod:`audiorec.ssl.config` while it
builds its DAG, and must not import torch for it.
"""

from audiorec.common.lazy import lazy_exports

_EXPORTS = {
    "LOSSES": "audiorec.ssl.config",
    "POSITIVES": "audiorec.ssl.config",
    "SSLConfig": "audiorec.ssl.config",
    "training_track_ids": "audiorec.ssl.data",
    "cpc_loss": "audiorec.ssl.losses",
    "info_nce": "audiorec.ssl.losses",
    "multi_level_info_nce": "audiorec.ssl.losses",
    "EncoderOutput": "audiorec.ssl.model",
    "MelEncoder": "audiorec.ssl.model",
    "SSLModel": "audiorec.ssl.model",
    "TrainingHistory": "audiorec.ssl.trainer",
    "save_checkpoint": "audiorec.ssl.trainer",
    "train": "audiorec.ssl.trainer",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
