"""MusiCNN: parity with the original TensorFlow model and extractor, strict loading, input pipeline, layers,
patching, determinism.

Parity and real-weight tests need the checkpoints of the ``musicnn`` wheel
(``python -m pip install --no-deps musicnn==0.1.0``; ``.ci/run`` installs it) and are skipped without it.
Everything else runs on tiny random networks of the same class.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import librosa
import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from tf_checkpoint_writer import write_checkpoint
from tiny_musicnn import TINY

from audiorec.backbones import build_backbone, file_sha256
from audiorec.backbones.musicnn import MusiCNNBackbone, packaged_checkpoint
from audiorec.backbones.musicnn_model import (
    FrontEndBlock,
    MusiCNN,
    MusiCNNArchitecture,
    tf_same_padding,
    tf_variable_map,
)
from audiorec.backbones.options import MusiCNNConfig
from audiorec.backbones.tf_checkpoint import TFCheckpoint
from audiorec.errors import AudiorecError, ParameterError
from audiorec.extraction.embed import extract

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "musicnn"
TRACK_REFERENCE = FIXTURES / "track_reference.npz"
"""The original extractor on synthetic clips (see ``make_track_reference.py`` beside it)."""
HOP = 256
HAS_MUSICNN = importlib.util.find_spec("musicnn") is not None
needs_musicnn = pytest.mark.skipif(not HAS_MUSICNN, reason="musicnn wheel not installed (pip install --no-deps)")


def randomised(model: MusiCNN, seed: int = 0) -> MusiCNN:
    """Random weights *and* batch-norm statistics, with negative scales, so every loaded tensor matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype != torch.float32:
                continue
            values = torch.randn(tensor.shape, generator=generator)
            tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values * 0.5)
    return model.eval()


def tiny_backbone(seed: int = 0, **options) -> MusiCNNBackbone:
    backbone = MusiCNNBackbone(MusiCNNConfig(device="cpu", **options), TINY, load=False)
    randomised(backbone.model, seed)
    return backbone


def to_tf(model: MusiCNN) -> dict[str, np.ndarray]:
    """The model's weights under TensorFlow's names and layouts, with Adam slots as in the real checkpoints."""
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    tensors = {"beta1_power": np.float32(0.9), "beta2_power": np.float32(0.999)}
    for tf_name, module, layer_type in tf_variable_map(model.architecture):
        if layer_type == "bn":
            pairs = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
            variables = {tf: state[f"{module}.{pt}"] for tf, pt in pairs.items()}
        else:
            weight = state[f"{module}.weight"]
            kernel = {
                "conv2d": lambda w: w.transpose(2, 3, 1, 0),
                "conv1d": lambda w: w.transpose(2, 1, 0)[:, :, None, :],
                "dense": lambda w: w.T,
            }[layer_type](weight)
            variables = {"kernel": kernel, "bias": state[f"{module}.bias"]}
        for variable, value in variables.items():
            tensors[f"{tf_name}/{variable}"] = np.ascontiguousarray(value, dtype=np.float32)
            if variable not in ("moving_mean", "moving_variance"):
                tensors[f"{tf_name}/{variable}/Adam"] = np.zeros_like(value, dtype=np.float32)
                tensors[f"{tf_name}/{variable}/Adam_1"] = np.zeros_like(value, dtype=np.float32)
    return tensors


def outputs(model: MusiCNN, patches: torch.Tensor) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = model(patches)
    return {
        "logits": out.logits.numpy(),
        "penultimate": out.penultimate.numpy(),
        "mean_pool": out.mean_pool.numpy(),
        "max_pool": out.max_pool.numpy(),
        "timbral": out.timbral.numpy(),
        "temporal": out.temporal.numpy(),
        "cnn3": out.midend[2].unsqueeze(-1).numpy(),
    }


@needs_musicnn
@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_musicnn"])
def test_port_reproduces_the_tensorflow_model(model):
    backbone = build_backbone("musicnn", {"model": model, "device": "cpu"})
    reference = np.load(FIXTURES / f"ref_{model}.npz")
    got = outputs(backbone.model, torch.from_numpy(np.load(FIXTURES / "ref_input.npy")))
    for name in reference.files:
        assert got[name].shape == reference[name].shape, name
        np.testing.assert_allclose(got[name], reference[name], rtol=1e-5, atol=2e-4, err_msg=name)
    assert backbone.weights_sha256 == file_sha256(packaged_checkpoint(model) / ".data-00000-of-00001")


def reference_clip(reference: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    """A fixture clip as ``librosa.load`` gave it to the extractor: int16 PCM scaled by 1/32768."""
    return reference[f"{name}_int16"].astype(np.float32) / 32768


@needs_musicnn
@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_musicnn"])
def test_track_vector_is_the_original_extractors_mean_over_whole_patches(model):
    reference = np.load(TRACK_REFERENCE)
    backbone = build_backbone("musicnn", {"model": model, "device": "cpu"})
    signal = reference_clip(reference, "multi")
    assert backbone.windows(signal).shape == (3, 187, 96)  # 657 frames: the last 96 do not fill a patch
    got = backbone.embed_batch([signal])
    for layer in backbone.layers:
        # ``batched/``: every patch's own penultimate (the extractor as shipped repeats the first one's).
        expected = reference[f"batched/{model}/{layer}"].mean(axis=0)
        np.testing.assert_allclose(got[layer][0], expected, rtol=1e-5, atol=2e-4, err_msg=layer)


@needs_musicnn
def test_padding_option_averages_the_padded_last_patch_in():
    reference = np.load(TRACK_REFERENCE)
    backbone = build_backbone("musicnn", {"device": "cpu", "pad_last_patch": True})
    signal = reference_clip(reference, "multi")
    patches = backbone.windows(signal)
    assert patches.shape == (4, 187, 96) and not patches[3, 96:].any()
    last = outputs(backbone.model, torch.from_numpy(patches[3:]))
    got = backbone.embed_batch([signal])
    for layer in backbone.layers:
        whole = reference[f"batched/MSD_musicnn/{layer}"]
        expected = (whole.sum(axis=0) + last[layer][0]) / 4
        np.testing.assert_allclose(got[layer][0], expected, rtol=1e-5, atol=2e-4, err_msg=layer)
        assert not np.allclose(got[layer][0], whole.mean(axis=0), rtol=1e-3, atol=1e-3), layer


def test_a_track_shorter_than_one_patch_has_no_vector_as_in_the_original_unless_padded():
    reference = np.load(TRACK_REFERENCE)
    for model in ("MSD_musicnn", "MTT_musicnn"):  # the extractor cuts no patch and fails
        assert str(reference[f"{model}/short_error"]).startswith("UnboundLocalError"), model
    short = reference_clip(reference, "short")
    with pytest.raises(AudiorecError, match=r"126 mel frames \(2\.00 s\) hold no whole 187-frame patch"):
        MusiCNNBackbone(MusiCNNConfig(device="cpu"), load=False).windows(short)
    padded = MusiCNNBackbone(MusiCNNConfig(device="cpu", short_audio="pad"), load=False).windows(short)
    assert padded.shape == (1, 187, 96) and not padded[0, 126:].any()


def test_extraction_records_a_track_shorter_than_one_patch_as_a_failure(tmp_path, rng):
    paths = write_tracks(tmp_path, rng, (1.0, 0.2))  # the tiny network's patch is 24 frames, 0.38 s
    result = extract(["long", "short"], paths, tiny_backbone(), batch_size=2, progress=False)
    assert result.track_ids == ["long"] and [f["track_id"] for f in result.failures] == ["short"]
    assert result.failures[0]["error"] == "shorter than one patch (0.4 s)"
    padded = extract(["long", "short"], paths, tiny_backbone(short_audio="pad"), batch_size=2, progress=False)
    assert padded.track_ids == ["long", "short"] and not padded.failures


@needs_musicnn
def test_published_architecture_uses_every_checkpoint_tensor_but_adam_state():
    checkpoint = TFCheckpoint(packaged_checkpoint("MSD_musicnn"))
    used = {f"{name}/{v}" for name, _, kind in tf_variable_map(MusiCNNArchitecture()) for v in _variables(kind)}
    assert used <= set(checkpoint.entries)
    assert all("Adam" in name or name.startswith("beta") for name in set(checkpoint.entries) - used)
    assert MusiCNNArchitecture().frontend_channels == 561 and MusiCNNArchitecture().midend_channels == 753


def _variables(kind: str) -> tuple[str, ...]:
    return ("gamma", "beta", "moving_mean", "moving_variance") if kind == "bn" else ("kernel", "bias")


def test_tiny_model_loads_strictly_from_a_tensorflow_checkpoint(tmp_path):
    source = randomised(MusiCNN(TINY), seed=1)
    tensors = to_tf(source)
    write_checkpoint(tmp_path / "tiny", tensors, records_per_block=16)
    backbone = MusiCNNBackbone(MusiCNNConfig(weights=str(tmp_path / "tiny"), device="cpu"), TINY)
    for name, value in source.state_dict().items():
        torch.testing.assert_close(backbone.model.state_dict()[name], value, rtol=0, atol=0, msg=name)
    assert backbone.weights_sha256 == file_sha256(tmp_path / "tiny.data-00000-of-00001")

    missing = {k: v for k, v in tensors.items() if k != "conv2d_3/kernel"}
    write_checkpoint(tmp_path / "missing", missing)
    with pytest.raises(ParameterError, match=r"missing tensors \['conv2d_3/kernel'\]"):
        MusiCNNBackbone(MusiCNNConfig(weights=str(tmp_path / "missing")), TINY)
    write_checkpoint(tmp_path / "extra", {**tensors, "dense_2/kernel": np.ones((3, 3), np.float32)})
    with pytest.raises(ParameterError, match=r"unexpected tensors \['dense_2/kernel'\]"):
        MusiCNNBackbone(MusiCNNConfig(weights=str(tmp_path / "extra")), TINY)
    write_checkpoint(tmp_path / "shape", {**tensors, "dense/kernel": tensors["dense/kernel"].T.copy()})
    with pytest.raises(
        ParameterError, match=r"mis-shaped tensors \['dense/kernel \(64, 7\) for dense.weight \(7, 64\)"
    ):
        MusiCNNBackbone(MusiCNNConfig(weights=str(tmp_path / "shape")), TINY)


def test_tiny_model_loads_strictly_from_a_saved_state_dict(tmp_path):
    source = randomised(MusiCNN(TINY), seed=2)
    torch.save(source.state_dict(), tmp_path / "tiny.pt")
    backbone = MusiCNNBackbone(MusiCNNConfig(weights=str(tmp_path / "tiny.pt"), device="cpu"), TINY)
    patches = torch.randn(2, TINY.patch_frames, TINY.n_mels)
    np.testing.assert_array_equal(outputs(backbone.model, patches)["logits"], outputs(source, patches)["logits"])
    assert backbone.weights_sha256 == file_sha256(tmp_path / "tiny.pt")
    broken = source.state_dict()
    broken.pop("dense_norm.running_mean")
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(ParameterError, match=r"missing keys \['dense_norm.running_mean'\]"):
        MusiCNNBackbone(MusiCNNConfig(weights=str(tmp_path / "broken.pt")), TINY)


def test_frontend_pools_before_the_norm_exactly_as_after_it():
    torch.manual_seed(0)
    block = FrontEndBlock(6, (7, 5), (3, 3))
    with torch.no_grad():
        block.norm.weight.copy_(torch.tensor([1.5, -0.7, 0.0, 2.0, -3.0, 0.3]))
        block.norm.running_mean.normal_()
        block.norm.running_var.uniform_(0.5, 2.0)
        block.norm.bias.normal_()
    block.eval()
    x = torch.randn(3, 1, 20, 16)
    with torch.no_grad():
        reference = block.norm(torch.relu(block.conv(torch.nn.functional.pad(x, (0, 0, 3, 3))))).amax(dim=3)
        torch.testing.assert_close(block(x), reference, rtol=1e-6, atol=1e-6)
        block.train()
        torch.testing.assert_close(block(x).shape, reference.shape)


def test_tensorflow_same_padding_puts_the_extra_frame_after():
    assert tf_same_padding(128) == (63, 64)
    assert tf_same_padding(7) == (3, 3)
    assert tf_same_padding(1) == (0, 0)


def test_log_mel_follows_the_musicnn_recipe_and_saturates_instead_of_overflowing(rng):
    backbone = tiny_backbone()
    signal = rng.normal(0, 0.1, 16000 * 2).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=signal, sr=16000, n_fft=512, hop_length=256, n_mels=96).T
    expected = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    np.testing.assert_array_equal(backbone.log_mel(signal), expected)
    loud = backbone.log_mel(np.full(16000, 50.0, np.float32))
    assert np.all(np.isfinite(loud)) and loud.max() == pytest.approx(np.log10(10000 * 65504.0 + 1), rel=1e-6)


def test_layers_have_the_declared_shapes(rng):
    backbone = tiny_backbone()
    assert backbone.layer_dims == {"mean_pool": 4 * 2 + 3 * 3 + 5 * 3, "max_pool": 32, "penultimate": 7}
    signals = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 8000, 40000)]
    out = backbone.embed_batch(signals)
    assert {name: v.shape for name, v in out.items()} == {
        "mean_pool": (3, 32),
        "max_pool": (3, 32),
        "penultimate": (3, 7),
    }
    for name, matrix in out.items():
        assert matrix.dtype == np.float32 and np.all(np.isfinite(matrix)), name


def frames_signal(n_frames: int) -> np.ndarray:
    """Silence that librosa's centred STFT turns into exactly ``n_frames`` mel frames."""
    return np.zeros(HOP * (n_frames - 1), np.float32)


@pytest.mark.parametrize(
    ("n_frames", "whole", "padded"),
    [
        (2 * TINY.patch_frames + TINY.patch_frames // 2, 2, 3),  # the rest is half a patch: padded in
        (2 * TINY.patch_frames + TINY.patch_frames // 2 - 1, 2, 2),  # just under half: dropped either way
        (2 * TINY.patch_frames, 2, 2),
        (4, 0, 1),  # shorter than a patch: only short_audio: pad pads it
    ],
)
def test_patches_are_whole_by_default_and_the_option_pads_the_last(n_frames, whole, padded):
    patches = tiny_backbone(pad_last_patch=True, short_audio="pad").windows(frames_signal(n_frames))
    assert patches.shape == (padded, TINY.patch_frames, 96) and patches.dtype == np.float32
    if whole:
        assert tiny_backbone().windows(frames_signal(n_frames)).shape == (whole, TINY.patch_frames, 96)
    else:
        with pytest.raises(AudiorecError, match=rf"{n_frames} mel frames .* no whole {TINY.patch_frames}-frame"):
            tiny_backbone().windows(frames_signal(n_frames))


def test_track_vector_is_the_mean_of_patch_vectors(rng):
    backbone = tiny_backbone()
    signal = rng.normal(0, 0.1, 16000 * 2).astype(np.float32)
    patches = torch.from_numpy(backbone.windows(signal))
    per_patch = outputs(backbone.model, patches)
    out = backbone.embed_batch([signal, signal[:8000]])
    np.testing.assert_allclose(out["penultimate"][0], per_patch["penultimate"].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["max_pool"][0], per_patch["max_pool"].mean(0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out["penultimate"][0], out["penultimate"][1])


def test_options_are_validated_and_a_missing_package_is_named(monkeypatch, tmp_path):
    with pytest.raises(ParameterError, match=r"model must be one of.*got 'MSD_vgg'"):
        build_backbone("musicnn", {"model": "MSD_vgg"})
    with pytest.raises(ParameterError, match="unknown option"):
        build_backbone("musicnn", {"layer": 3})
    with pytest.raises(ParameterError, match="max_duration_s must be positive"):
        MusiCNNConfig(max_duration_s=0)
    with pytest.raises(ParameterError, match="pad_last_patch must be true or false, got 'yes'"):
        build_backbone("musicnn", {"pad_last_patch": "yes"})
    with pytest.raises(ParameterError, match=r"weights file .*absent\.pt does not exist"):
        MusiCNNBackbone(MusiCNNConfig(weights=str(tmp_path / "absent.pt")), TINY)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ParameterError, match=r"musicnn is not installed.*pip install --no-deps musicnn==0\.1\.0"):
        build_backbone("musicnn", {})


def write_tracks(folder: Path, rng: np.random.Generator, seconds: tuple[float, ...]) -> list[Path]:
    paths = []
    for index, length in enumerate(seconds):
        paths.append(folder / f"t{index}.flac")
        sf.write(paths[-1], rng.normal(0, 0.1, (round(length * 22050), 2)).astype(np.float32), 22050)
    return paths


@needs_musicnn
def test_extraction_with_real_weights_is_deterministic(tmp_path, rng):
    paths = write_tracks(tmp_path, rng, (3.5, 7.0, 3.2))
    ids = ["a", "b", "c"]
    backbone = build_backbone("musicnn", {"device": "cpu"})
    first = extract(ids, paths, backbone, batch_size=2, progress=False).layer_matrices(backbone)
    again = extract(ids, paths, build_backbone("musicnn", {"device": "cpu"}), batch_size=2, progress=False)
    rebatched = extract(ids, paths, backbone, batch_size=1, num_workers=1, progress=False)
    for name in backbone.layers:
        np.testing.assert_array_equal(first[name], again.layer_matrices(backbone)[name], err_msg=name)
        # Another batch size takes other float32 convolution kernels: equal up to accumulation order (a 1e-5
        # tolerance failed once at 1.8e-5 on a value of 0.34, after six layers).
        np.testing.assert_allclose(first[name], rebatched.layer_matrices(backbone)[name], rtol=1e-4, atol=1e-4)
    assert first["penultimate"].shape == (3, 200) and np.all(np.isfinite(first["penultimate"]))


@needs_musicnn
def test_shard_stores_every_layer_and_gather_selects_one_without_recomputing(tmp_path, rng):
    from audiorec.stages import embed_shard, gather_embeddings
    from audiorec.storage.tables import read_embeddings, read_metadata, write_table

    paths = write_tracks(tmp_path, rng, (3.5, 3.2))
    tracks = pl.DataFrame({"track_id": ["a", "b"], "audio_path": [p.name for p in paths], "duration_s": [3.5, 3.2]})
    write_table(tracks, tmp_path / "tracks.parquet", kind="tracks")
    shard = (tmp_path / "shard0.vectors.parquet", tmp_path / "shard0.failures.parquet")
    spec = {"kind": "musicnn", "options": {"model": "MTT_musicnn", "device": "cpu"}}
    embed_shard(tmp_path / "tracks.parquet", spec, 0, 10, *shard, progress=False)
    stamp = shard[0].stat().st_mtime_ns

    sha = file_sha256(packaged_checkpoint("MTT_musicnn") / ".data-00000-of-00001")
    for layer, dim in [("last", 200), ("max_pool", 753), (0, 753)]:
        out = tmp_path / f"musicnn_{layer}.parquet"
        gather_embeddings([shard[0]], [shard[1]], "musicnn", layer, out, tmp_path / "failures.parquet")
        ids, vectors = read_embeddings(out)
        assert ids == ["a", "b"] and vectors.shape == (2, dim)
        metadata = read_metadata(out)
        assert metadata["weights_sha256"] == sha and metadata["layer"] == layer and metadata["sample_rate"] == 16000
        assert metadata["layers"] == ["mean_pool", "max_pool", "penultimate"] and metadata["precision"] == "float32"
        assert metadata["device"] == "cpu"
    assert shard[0].stat().st_mtime_ns == stamp
    with pytest.raises(ParameterError, match="layer 'mean' needs layers of one size"):
        gather_embeddings([shard[0]], [shard[1]], "musicnn", "mean", tmp_path / "m.parquet", tmp_path / "f.parquet")
