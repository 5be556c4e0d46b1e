"""Training states are written reproducibly: the same state gives the same bytes, whatever run writes it."""

from __future__ import annotations

import torch

from audiorec.storage.checkpointing import load_state, save_state


def test_the_same_state_is_written_as_the_same_bytes_every_time(tmp_path):
    """A resumed run's checkpoint must equal an uninterrupted run's byte for byte; each write goes through its
    own randomly named temporary file, which must leave no trace in the archive."""
    state = {"module": {"weight": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "fingerprint": "abc"}
    first, second = tmp_path / "first" / "checkpoint.pt", tmp_path / "second" / "checkpoint.pt"
    save_state(state, first)
    save_state(state, second)
    assert first.read_bytes() == second.read_bytes()
    save_state(state, first)  # rewritten in place, as after every epoch
    assert first.read_bytes() == second.read_bytes()


def test_a_written_state_reads_back_only_with_its_fingerprint(tmp_path):
    path = tmp_path / "last.pt"
    save_state({"module": {"weight": torch.ones(2)}, "epoch": 1, "fingerprint": "abc"}, path)
    loaded = load_state(path, "abc")
    assert loaded is not None and loaded["epoch"] == 1
    assert torch.equal(loaded["module"]["weight"], torch.ones(2))
    assert load_state(path, "other") is None
