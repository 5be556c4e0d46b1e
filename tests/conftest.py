"""Shared fixtures."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every randomised test is reproducible."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny kernels: one CPU thread is fastest, and on a busy machine several threads only spin.

    Modules of tiny-model tests use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def neural_world(tmp_path_factory):
    """The trained recommenders' small demo world (tests/neural_world.py), generated once per session."""
    from neural_world import build_world

    return build_world(tmp_path_factory)
