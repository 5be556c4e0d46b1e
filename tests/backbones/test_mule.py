"""MULE: parity with the original TensorFlow code (front end, slicing, every stage, track vector), reading the
released ``.keras`` format, strict loading, windows on short and long audio, determinism, the contract.

``tests/fixtures/mule`` holds what the original code (PandoraMedia/music-audio-representations, tensorflow 2.13.1)
computed with a small network of its own class and random weights, and that network saved as the release was
(``make_reference.py`` beside it). Everything runs on that tiny size.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from audiorec.backbones import BACKBONES, build_backbone
from audiorec.backbones.mule import MuleBackbone, log_mel, slice_starts
from audiorec.backbones.mule_keras import KerasFile, state_dict_from_keras
from audiorec.backbones.mule_model import MuleArchitecture, SFNFNet, WSConv2d, same_padding, stage_betas
from audiorec.backbones.options import MuleOptions
from audiorec.backbones.shipped import shipped_config
from audiorec.errors import AudiorecError, ParameterError
from audiorec.storage.published_weights import resolve_backbone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mule"
TINY_KERAS = FIXTURES / "tiny.keras"
SR = 16000
STAGES = [f"{path}_stage_{i}" for path in ("slow", "fast") for i in range(1, 5)]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "tiny_reference.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def loaded() -> MuleBackbone:
    return MuleBackbone(MuleOptions(size="tiny", weights=str(TINY_KERAS), device="cpu"))


def assert_relative(actual: np.ndarray, expected: np.ndarray, tolerance: float = 1e-5) -> None:
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= tolerance * np.abs(expected).max()


# Parity with the original ----------------------------------------------------------------------------------------


def test_log_mel_and_slices_match_the_original_front_end(reference, loaded):
    assert_relative(log_mel(reference["waveform"], SR, loaded.spec["mel"]), reference["mel"])
    assert_relative(loaded.windows(reference["waveform"]), reference["slices"])


def test_slice_starts_match_the_original_chunked_extraction():
    """Centres every 200 frames, moved inside the ends, and none on a multiple of the 8000-frame chunk."""
    expected = json.loads((FIXTURES / "windows.json").read_text())
    slices = shipped_config("mule", "f0")["slices"]
    for frames, starts in expected.items():
        assert slice_starts(int(frames), slices) == starts, frames
    assert slice_starts(8001, slices)[-1] == 7650  # the centre 8000 (clamped, 7851) is skipped: a chunk starts there


def test_every_stage_and_the_embedding_match_the_original_network(reference, loaded):
    with torch.no_grad():
        slow, fast, embedding = loaded.model(torch.from_numpy(reference["slices"]))
    for name, maps in zip(STAGES, [*slow, *fast], strict=True):
        assert_relative(maps.permute(0, 2, 3, 1).numpy(), reference[name])  # the original is channels-last
    assert_relative(embedding.numpy(), reference["embedding"])
    assert_relative(embedding.numpy(), reference["window_embeddings"])


def test_track_vectors_match_the_original_timeline_average_and_its_sum(reference, loaded):
    out = loaded.embed_batch([reference["waveform"]])
    assert_relative(out["embedding"][0], reference["mean"])
    summed = MuleBackbone(MuleOptions(size="tiny", weights=str(TINY_KERAS), pooling="sum", device="cpu"))
    assert_relative(summed.embed_batch([reference["waveform"]])["embedding"][0], reference["sum"])
    assert set(out) == {*STAGES, "embedding"}
    slices = torch.from_numpy(reference["slices"])
    with torch.no_grad():
        slow, _, _ = loaded.model(slices)
    np.testing.assert_allclose(out["slow_stage_1"][0], slow[0].mean(dim=(0, 2, 3)).numpy(), rtol=1e-5, atol=1e-6)


# The released format -----------------------------------------------------------------------------------------------


def test_keras_group_names_count_weighted_layers_twice():
    """Hand-computed: Keras walks each weighted layer twice, advancing its class's counter."""
    layers = [
        ("InputLayer", {}),
        ("WeightStandardization", {}),
        ("Activation", {}),
        ("WeightStandardization", {}),
        ("ScalarMultiply", {"learnable": False}),
        ("ScalarMultiply", {"learnable": True}),
        ("ScalarMultiply", {"learnable": True}),
        ("Dense", {}),
    ]
    keras = KerasFile.__new__(KerasFile)
    keras.config = {
        "config": {"layers": [{"class_name": c, "name": f"l{i}", "config": cfg} for i, (c, cfg) in enumerate(layers)]}
    }
    assert list(keras.group_names().values()) == [
        "input_layer",
        "weight_standardization",
        "activation",
        "weight_standardization_2",
        "scalar_multiply",
        "scalar_multiply_1",
        "scalar_multiply_3",
        "dense",
    ]


def test_a_keras_folder_loads_like_the_zip_and_the_digest_is_the_files(tmp_path, loaded):
    with zipfile.ZipFile(TINY_KERAS) as archive:
        archive.extractall(tmp_path)
    folder = MuleBackbone(MuleOptions(size="tiny", weights=str(tmp_path), device="cpu"))
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(folder.model.state_dict()[key], value), key
    assert loaded.weights_sha256 == hashlib.sha256(TINY_KERAS.read_bytes()).hexdigest()


def test_a_release_of_another_size_is_refused_naming_the_mismatch(tmp_path):
    spec = shipped_config("mule", "tiny")
    spec["architecture"]["depths"] = [1, 2, 2, 2]
    other = tmp_path / "deeper.json"
    other.write_text(json.dumps(spec))
    with pytest.raises(ParameterError, match=r"convolutions and .* dense layers, but the architecture has"):
        MuleBackbone(MuleOptions(size=str(other), weights=str(TINY_KERAS), device="cpu"))
    spec = shipped_config("mule", "tiny")
    spec["architecture"]["fusion"][0] = [8, 24]
    other.write_text(json.dumps(spec))
    with pytest.raises(ParameterError, match="has shape"):
        MuleBackbone(MuleOptions(size=str(other), weights=str(TINY_KERAS), device="cpu"))


def test_a_torch_state_dict_loads_strictly_and_a_missing_key_is_named(tmp_path, loaded, reference):
    state = loaded.model.state_dict()
    torch.save(state, tmp_path / "mule.pt")
    again = MuleBackbone(MuleOptions(size="tiny", weights=str(tmp_path / "mule.pt"), device="cpu"))
    assert_relative(again.embed_batch([reference["waveform"]])["embedding"][0], reference["mean"])
    del state["slow_stages.2.1.skip_gain"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ParameterError, match=r"missing keys \['slow_stages.2.1.skip_gain'\]"):
        MuleBackbone(MuleOptions(size="tiny", weights=str(tmp_path / "partial.pt"), device="cpu"))


def test_every_loaded_tensor_matters(reference):
    """Each skip gain comes from its own block: swapping two (found through the graph) changes the output."""
    keras = KerasFile(TINY_KERAS)
    model = SFNFNet(MuleArchitecture.from_spec(shipped_config("mule", "tiny"), "tiny"))
    state = state_dict_from_keras(keras, model)
    gains = [key for key in state if key.endswith("skip_gain")]
    assert len(gains) == 12 and len({float(state[key]) for key in gains}) == 12
    state[gains[0]], state[gains[1]] = state[gains[1]], state[gains[0]]
    model.load_state_dict(state)
    with torch.no_grad():
        embedding = model(torch.from_numpy(reference["slices"]))[2].numpy()
    assert np.abs(embedding - reference["embedding"]).max() > 1e-3


def test_an_embedding_taken_before_the_activation_follows_the_file(tmp_path, loaded, reference):
    """A release cut at the concatenation (no final activation) gives the pooled paths unactivated."""
    with zipfile.ZipFile(TINY_KERAS) as archive:
        archive.extractall(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    layers = config["config"]["layers"]
    concatenate = next(layer["name"] for layer in reversed(layers) if layer["class_name"] == "Concatenate")
    config["config"]["layers"] = layers[:-1]
    config["config"]["output_layers"] = [[concatenate, 0, 0]]
    (tmp_path / "config.json").write_text(json.dumps(config))
    cut = MuleBackbone(MuleOptions(size="tiny", weights=str(tmp_path), device="cpu"))
    assert not cut.activate_embedding
    slices = torch.from_numpy(reference["slices"])
    with torch.no_grad():
        raw = cut.forward_layers(slices)[-1][:, 0].numpy()
        activated = loaded.forward_layers(slices)[-1][:, 0].numpy()
    np.testing.assert_allclose(
        torch.nn.functional.gelu(torch.from_numpy(raw)).numpy() * 1.7015043497085571, activated, rtol=1e-5, atol=1e-6
    )


# Building blocks, hand-computed ------------------------------------------------------------------------------------


def test_tensorflow_same_padding_puts_the_odd_pixel_after():
    assert same_padding(300, 3, 8) == (0, 0)  # 38 outputs reach sample 37 * 8 + 3 = 299 < 300
    assert same_padding(96, 3, 2) == (0, 1)
    assert same_padding(75, 7, 4) == (2, 2)
    assert same_padding(19, 3, 1) == (1, 1)
    assert same_padding(3, 2, 2) == (0, 1)  # the 2x1 pooling of an odd band count


def test_weight_standardisation_gives_zero_mean_and_the_gain_as_norm():
    conv = WSConv2d(3, 2, (3, 1))
    with torch.no_grad():
        conv.weight.copy_(torch.arange(18.0).reshape(2, 3, 3, 1) ** 2)
        conv.gain.copy_(torch.tensor([2.0, 0.5]))
        w = conv.standardised_weight()
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(w.square().sum(dim=(1, 2, 3)), torch.tensor([4.0, 0.25]), rtol=1e-5)
    with torch.no_grad():
        conv.weight.fill_(1.0)  # zero variance: the floor 1e-4 keeps it finite (weights - mean = 0)
    assert torch.equal(conv.standardised_weight(), torch.zeros(2, 3, 3, 1))


def test_block_betas_follow_the_expected_variance():
    assert stage_betas(3, 0.2, 1.0) == pytest.approx([1.0, 1.04**-0.5, 1.08**-0.5])
    assert stage_betas(1, 0.2, 1.04**0.5) == pytest.approx([1.04**-0.5])


# Windows, shapes, determinism ------------------------------------------------------------------------------------


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    return (0.2 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def test_short_audio_is_refused_and_one_slice_is_enough(loaded):
    shortest = 299 * 160  # 1 + n // 160 = 300 frames
    assert loaded.windows(signal(shortest / SR)).shape == (1, 96, 300)
    with pytest.raises(AudiorecError, match="fewer than one 300-frame MULE slice"):
        loaded.windows(signal((shortest - 160) / SR))


def test_long_audio_gets_a_slice_every_two_seconds(loaded):
    assert loaded.windows(signal(10.0)).shape == (5, 96, 300)  # centres 200..800, and 1000 moved to 851
    assert len(slice_starts(1 + 100 * SR // 160, loaded.spec["slices"])) == 49  # 50 centres, 8000 skipped


def test_random_init_is_seeded_layers_have_their_widths_and_tracks_are_independent():
    options = {"size": "tiny", "device": "cpu"}
    first, second = build_backbone("mule", options), build_backbone("mule", options)
    tracks = [signal(4.0, 1), signal(6.5, 2)]
    together, again = first.embed_batch(tracks), second.embed_batch(tracks)
    alone = first.embed_batch(tracks[1:])
    assert first.layer_dims == {**dict(zip(STAGES, [32, 32, 64, 64, 8, 8, 16, 16], strict=True)), "embedding": 80}
    for name, width in first.layer_dims.items():
        assert together[name].shape == (2, width) and together[name].dtype == np.float32
        np.testing.assert_array_equal(together[name], again[name])
        np.testing.assert_allclose(alone[name][0], together[name][1], rtol=1e-5, atol=1e-6)


def test_the_published_architecture_is_sf_nfnet_f0():
    """62.3 M parameters (the original's note: 62 M, against the paper's 63 M) and a 1728-d embedding; the
    release's 251,054,764 bytes are these in float32 plus the graph."""
    arch = MuleArchitecture.from_spec(shipped_config("mule", "f0"), "f0")
    with torch.device("meta"):
        model = SFNFNet(arch)
        slow, fast, embedding = model(torch.empty(2, 96, 300, device="meta"))
    assert arch.embedding_dim == 1728 and embedding.shape == (2, 1728)
    assert [tuple(m.shape[1:]) for m in slow] == [(256, 24, 19), (512, 12, 19), (1536, 6, 19), (1536, 3, 19)]
    assert [tuple(m.shape[1:]) for m in fast] == [(32, 24, 75), (64, 12, 75), (192, 6, 75), (192, 3, 75)]
    assert sum(p.numel() for p in model.parameters()) == 62_345_742


# Options, registry, published weights (the contract: tests/plugins/test_contract_checks.py) --------------------------


def test_options_are_checked_naming_the_option():
    with pytest.raises(ParameterError, match="pooling must be one of"):
        BACKBONES.check_options("mule", {"size": "f0", "pooling": "max"}, "backbones.m.options")
    with pytest.raises(ParameterError, match="max_duration_s"):
        MuleOptions(size="f0", max_duration_s=0)
    with pytest.raises(ParameterError, match="backbone mule option precision"):
        MuleOptions(size="f0", precision="fp8")
    with pytest.raises(ParameterError, match="no config"):
        MuleBackbone(MuleOptions(size="f1", device="cpu"))


def test_the_release_is_pinned_by_the_sha256_of_its_lfs_pointer():
    source, options = resolve_backbone("m", "mule", {"size": "f0"})
    assert source is not None and source.name == "mule-f0"
    (file,) = source.files
    assert file.sha256 == "1da111d619bac0d422e41f153cbfb903f7ec3c5d3b2768f5d68f04452ed18180"
    assert file.size == 251054764 and "f90a472" in file.url
    assert options["weights"] == "resources/weights/mule-f0/model.keras"


FULL_REFERENCE = os.environ.get("AUDIOREC_MULE_FULL_REFERENCE")


@pytest.mark.skipif(not FULL_REFERENCE, reason="set AUDIOREC_MULE_FULL_REFERENCE to make_reference.py's --full folder")
def test_the_full_size_network_matches_the_original():
    """One-off local check on the full SF-NFNet-F0 (its random model.keras is 250 MB, so it is not a fixture)."""
    folder = Path(str(FULL_REFERENCE))
    with np.load(folder / "full_reference.npz") as data:
        reference = {key: data[key] for key in data.files}
    backbone = MuleBackbone(MuleOptions(size="f0", weights=str(folder / "model.keras"), device="cpu"))
    with torch.no_grad():
        slow, fast, embedding = backbone.model(torch.from_numpy(reference["slices"]))
    for name, maps in zip(STAGES, [*slow, *fast], strict=True):
        assert_relative(maps.permute(0, 2, 3, 1).numpy(), reference[name])
    assert_relative(embedding.numpy(), reference["embedding"])
    assert_relative(backbone.embed_batch([reference["waveform"]])["embedding"][0], reference["mean"])
