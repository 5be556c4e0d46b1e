"""Finding, reading and adapting local checkpoints; the hidden-state hooks."""

from __future__ import annotations

import json
import pickle
import socket

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from audiorec.backbones.base import file_sha256
from audiorec.backbones.checkpoints import (
    adapt_keys,
    forbid_hub_access,
    load_pretrained,
    read_checkpoint,
    weight_files,
    weights_digest,
)
from audiorec.backbones.hidden_states import capture_hidden_states
from audiorec.errors import ParameterError


class Normed(nn.Module):
    """A weight-normalised conv (torch parametrizations) and a derived buffer, as in the Conformer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(2, 3, 3), name="weight", dim=2)
        self.register_buffer("inv_freq", torch.arange(3.0))
        self.head = nn.Linear(3, 1)


def test_weight_files_of_a_directory_prefer_safetensors_and_follow_shard_indexes(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    assert weight_files(tmp_path) == [tmp_path / "pytorch_model.bin"]
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert weight_files(tmp_path) == [tmp_path / "model.safetensors"]
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    shards = ["model-00001.safetensors", "model-00002.safetensors", "model-00001.safetensors"]
    index = {"weight_map": dict(zip("abc", shards, strict=True))}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    assert weight_files(sharded) == [sharded / "model-00001.safetensors", sharded / "model-00002.safetensors"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParameterError, match="holds none of"):
        weight_files(empty)
    with pytest.raises(ParameterError, match="does not exist"):
        weight_files(tmp_path / "absent")


def test_a_sharded_checkpoint_reads_as_one_state_and_has_one_digest(tmp_path):
    save_file({"a": torch.ones(2)}, str(tmp_path / "one.safetensors"))
    save_file({"b": torch.zeros(3)}, str(tmp_path / "two.safetensors"))
    files = [tmp_path / "one.safetensors", tmp_path / "two.safetensors"]
    state = read_checkpoint(files)
    assert set(state) == {"a", "b"}
    assert weights_digest(files[:1]) == file_sha256(files[0])
    assert weights_digest(files) != weights_digest(files[::-1]) and len(weights_digest(files)) == 64


def test_legacy_weight_norm_names_load_and_missing_derived_buffers_are_filled_in(tmp_path):
    module = Normed()
    legacy = {
        "model.conv.weight_g": torch.full((1, 1, 3), 2.0),
        "model.conv.weight_v": torch.ones(3, 2, 3),
        "model.conv.bias": torch.zeros(3),
        "model.head.weight": torch.zeros(1, 3),
        "model.head.bias": torch.zeros(1),
    }
    adapted = adapt_keys(legacy, module, prefix="model.")
    assert set(adapted) == {key.removeprefix("model.") for key in legacy} | {"inv_freq"}
    assert torch.equal(adapted["inv_freq"], torch.arange(3.0))
    torch.save(legacy, tmp_path / "legacy.pt")
    load_pretrained(module, tmp_path / "legacy.pt", prefix="model.")
    assert torch.equal(module.conv.parametrizations.weight.original0, torch.full((1, 1, 3), 2.0))


def test_load_pretrained_is_strict_except_for_ignored_parts(tmp_path):
    source = Normed()
    state = {f"model.{k}": v + 1 for k, v in source.state_dict().items()}
    torch.save({"state_dict": {**state, "model.quantizer.codebook": torch.zeros(4)}}, tmp_path / "ok.pt")
    target = Normed()
    digest = load_pretrained(target, tmp_path / "ok.pt", prefix="model.", ignore=("quantizer.",))
    assert digest == file_sha256(tmp_path / "ok.pt")
    assert torch.equal(target.head.bias, source.head.bias + 1)
    with pytest.raises(ParameterError, match=r"unexpected keys \['quantizer.codebook'\]"):
        load_pretrained(Normed(), tmp_path / "ok.pt", prefix="model.")
    del state["model.head.bias"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(ParameterError, match=r"missing keys \['head.bias'\]"):
        load_pretrained(Normed(), tmp_path / "missing.pt", prefix="model.")


def test_a_pickle_of_python_objects_is_refused_with_a_way_out(tmp_path):
    path = tmp_path / "lightning.ckpt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": {}, "hyper_parameters": Normed}, handle, protocol=2)
    with pytest.raises(ParameterError, match="Re-save its state dict"):
        read_checkpoint([path])


def test_hub_access_is_switched_off(monkeypatch, tmp_path):
    import huggingface_hub
    import huggingface_hub.constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    # Recorded first, so that the switch is undone after this test and later tests start online.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    forbid_hub_access()
    for name in ("getaddrinfo", "create_connection"):
        monkeypatch.setattr(socket, name, lambda *a, **k: pytest.fail("network access attempted"))
    with pytest.raises(LocalEntryNotFoundError):
        huggingface_hub.hf_hub_download("m-a-p/MERT-v1-95M", "config.json", cache_dir=tmp_path)


def test_hidden_states_are_the_first_input_the_inner_outputs_and_the_final_output():
    blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
    final_norm = nn.LayerNorm(4)
    x = torch.randn(2, 5, 4)

    def run() -> torch.Tensor:
        h = x
        for block in blocks:
            h = block(h)
        return final_norm(h)

    hidden = capture_hidden_states(blocks, run)
    expected = [x, blocks[0](x), blocks[1](blocks[0](x)), run()]
    assert len(hidden) == 4
    for got, want in zip(hidden, expected, strict=True):
        torch.testing.assert_close(got, want)
    assert not blocks[0]._forward_pre_hooks and not blocks[1]._forward_hooks  # hooks are removed
