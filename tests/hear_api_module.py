"""A tiny model behind the HEAR 2021 API, the reference the ``hear`` backbone's tests run against.

It follows the API exactly (``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings``; a model with
``sample_rate``, ``scene_embedding_size`` and ``timestamp_embedding_size``) with a fixed random projection of
25-ms frames, so the tests run in milliseconds and every number is reproducible. A published package cannot serve
here: ``hearbaseline`` 2021.1.1, the API's own baseline, pins numpy 1.19 and TensorFlow, and its ``naive`` module
calls ``librosa.filters.mel(sr, ...)`` positionally, which librosa >= 0.10 refuses.
"""

from __future__ import annotations

import torch
from torch import nn

SAMPLE_RATE = 16000
FRAME = 400
"""25 ms at 16 kHz."""
HOP = 160
"""10 ms at 16 kHz."""
EMBEDDING_SIZE = 12


class FrameProjection(nn.Module):
    """Frames of 25 ms every 10 ms → a fixed linear projection → tanh; a sound shorter than a frame is padded."""

    sample_rate = SAMPLE_RATE
    scene_embedding_size = EMBEDDING_SIZE
    timestamp_embedding_size = EMBEDDING_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.projection = nn.Linear(FRAME, EMBEDDING_SIZE)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``(n_sounds, n_samples)`` → ``(n_sounds, n_frames, EMBEDDING_SIZE)``."""
        if audio.shape[1] < FRAME:
            audio = nn.functional.pad(audio, (0, FRAME - audio.shape[1]))
        return torch.tanh(self.projection(audio.unfold(1, FRAME, HOP)))


def load_model(model_file_path: str = "") -> FrameProjection:
    """The model with its seeded initialisation, or with the state dict saved at ``model_file_path``.

    The seed is set inside a forked RNG state, so loading the model leaves the caller's random stream alone.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = FrameProjection()
    if model_file_path:
        model.load_state_dict(torch.load(model_file_path, map_location="cpu", weights_only=True))
    return model


def get_timestamp_embeddings(audio: torch.Tensor, model: FrameProjection) -> tuple[torch.Tensor, torch.Tensor]:
    """One embedding per frame, and the frames' centres in milliseconds."""
    embeddings = model(audio)
    centres = (torch.arange(embeddings.shape[1], device=audio.device) * HOP + FRAME / 2) * 1000 / SAMPLE_RATE
    return embeddings, centres.expand(audio.shape[0], -1)


def get_scene_embeddings(audio: torch.Tensor, model: FrameProjection) -> torch.Tensor:
    """The root mean square over frames: unlike the timestamps' mean, so the tests tell the two apart."""
    return model(audio).pow(2).mean(dim=1).sqrt()
