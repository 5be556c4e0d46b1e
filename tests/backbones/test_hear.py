"""The ``hear`` backbone: any HEAR 2021 module, run unchanged; tests/hear_api_module.py is the reference model."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import hear_api_module
import numpy as np
import pytest
import torch
from audio_fixtures import write_tone

from audiorec.audio.decode import load_audio
from audiorec.backbones import BACKBONES, build_backbone
from audiorec.backbones.hear import HearBackbone
from audiorec.backbones.options import HearOptions
from audiorec.errors import ParameterError
from audiorec.extraction.embed import extract, write_shard
from audiorec.plan.models import BackbonePlan
from audiorec.storage.tables import read_metadata

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TESTS = Path(__file__).resolve().parents[1]
SR = hear_api_module.SAMPLE_RATE


def hear(**options) -> HearBackbone:
    return build_backbone("hear", {"module": "hear_api_module", "device": "cpu", **options})


def signals(rng: np.random.Generator) -> list[np.ndarray]:
    """Tracks of 1 s, 2.5 s and 0.1 s (shorter than many models' window), in [-1, 1]."""
    return [np.clip(rng.normal(0, 0.3, round(s * SR)), -1, 1).astype(np.float32) for s in (1.0, 2.5, 0.1)]


def module_scene(signal: np.ndarray, weights: str = "") -> np.ndarray:
    """What the module itself returns for this one sound."""
    model = hear_api_module.load_model(weights)
    with torch.no_grad():
        return hear_api_module.get_scene_embeddings(torch.from_numpy(signal)[None], model)[0].numpy()


def replaced_module(monkeypatch, name: str, **functions) -> None:
    """Install, as module ``name``, the reference module with some of its functions replaced or removed (None)."""
    module = types.ModuleType(name)
    for function in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        value = functions.get(function, getattr(hear_api_module, function))
        if value is not None:
            setattr(module, function, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_scene_vectors_equal_the_modules_own_per_track_embeddings(rng):
    backbone = hear()
    tracks = signals(rng)
    vectors = backbone.embed_batch(tracks)["scene"]
    assert vectors.dtype == np.float32 and vectors.shape == (3, hear_api_module.EMBEDDING_SIZE)
    for vector, track in zip(vectors, tracks, strict=True):  # each alone: no padding to the batch's longest
        np.testing.assert_allclose(vector, module_scene(track), rtol=1e-6, atol=1e-7)
    assert backbone.embed_batch([])["scene"].shape == (0, hear_api_module.EMBEDDING_SIZE)


def test_timestamp_mean_is_the_mean_of_the_modules_timestamp_embeddings(rng):
    backbone = hear(embedding="timestamp_mean")
    tracks = signals(rng)
    vectors = backbone.embed_batch(tracks)["timestamp_mean"]
    model = hear_api_module.load_model()
    for vector, track in zip(vectors, tracks, strict=True):
        with torch.no_grad():
            frames, times = hear_api_module.get_timestamp_embeddings(torch.from_numpy(track)[None], model)
        assert frames.shape[1] == times.shape[1] >= 1
        np.testing.assert_allclose(vector, frames[0].mean(dim=0).numpy(), rtol=1e-5, atol=1e-6)
        assert not np.allclose(vector, module_scene(track))  # the scene embedding is another vector
    assert backbone.pooling == "mean over HEAR timestamp embeddings of hear_api_module"


def test_sample_rate_and_layer_come_from_the_model():
    scene, frames = hear(), hear(embedding="timestamp_mean", max_duration_s=None)
    assert scene.sample_rate == frames.sample_rate == SR
    assert scene.layer_dims == {"scene": 12} and frames.layer_dims == {"timestamp_mean": 12}
    assert scene.clip_policy.max_duration_s == 30.0 and frames.clip_policy.max_duration_s is None
    assert scene.weights_sha256 is None and scene.device_description == "cpu"
    assert scene.pooling == "HEAR scene embedding of hear_api_module"
    assert BACKBONES.traits("hear").uses_gpu


def test_a_weights_file_is_loaded_and_its_digest_recorded(tmp_path, rng):
    model = hear_api_module.load_model()
    with torch.no_grad():
        model.projection.weight.mul_(-2.0)
    weights = tmp_path / "projection.pt"
    torch.save(model.state_dict(), weights)
    backbone = hear(weights=str(weights))
    assert backbone.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    track = signals(rng)[0]
    vector = backbone.embed_batch([track])["scene"][0]
    np.testing.assert_allclose(vector, module_scene(track, str(weights)), rtol=1e-6, atol=1e-7)
    assert not np.allclose(vector, module_scene(track))
    with pytest.raises(ParameterError, match=r"option weights: .*missing\.pt is not a file"):
        hear(weights=str(tmp_path / "missing.pt"))


def test_the_extraction_driver_embeds_wav_files(tmp_path):
    tones = [(1.0, 220.0), (1.7, 330.0), (0.1, 440.0)]  # the second is cropped to 1.5 s
    paths = [write_tone(tmp_path / f"t{i}.wav", seconds, 22050, freq=freq) for i, (seconds, freq) in enumerate(tones)]
    backbone = hear(max_duration_s=1.5)
    result = extract(["a", "b", "c"], paths, backbone, batch_size=2, progress=False)
    assert result.track_ids == ["a", "b", "c"] and result.failures == []
    matrix = result.layer_matrices(backbone)["scene"]
    for row, path in zip(matrix, paths, strict=True):
        signal = load_audio(path, SR, max_duration_s=1.5)  # decoded and cropped as the driver does
        np.testing.assert_allclose(row, module_scene(signal), rtol=1e-5, atol=1e-6)
    write_shard(result, backbone, tmp_path / "shard.parquet", tmp_path / "failures.parquet")
    metadata = read_metadata(tmp_path / "shard.parquet")
    assert metadata["backbone_kind"] == "hear" and metadata["sample_rate"] == SR and metadata["layers"] == ["scene"]
    assert metadata["pooling"] == "HEAR scene embedding of hear_api_module"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"embedding": "frames"}, r"option embedding must be one of \['scene', 'timestamp_mean'\], got 'frames'"),
        ({"module": "not a module"}, "option module must be a dotted module name, got 'not a module'"),
        ({"max_duration_s": 0}, "option max_duration_s must be positive, got 0"),
        ({"weights": None}, "option weights must be a file path or empty, got None"),
        ({"layer": 3}, r"unknown option\(s\) \['layer'\]"),
    ],
    ids=["embedding", "module", "max_duration", "weights", "unknown"],
)
def test_options_are_validated_naming_the_option(options, message):
    with pytest.raises(ParameterError, match=message):
        hear(**options)


def test_an_unknown_module_is_named():
    with pytest.raises(ParameterError, match="cannot import module 'no_such_hear_model'"):
        hear(module="no_such_hear_model")


def test_a_module_missing_an_api_function_is_named(monkeypatch):
    replaced_module(monkeypatch, "hear_without_scene", get_scene_embeddings=None)
    with pytest.raises(ParameterError, match=r"'hear_without_scene' .* lacks \['get_scene_embeddings'\]"):
        hear(module="hear_without_scene")


def test_a_model_without_its_declared_sizes_is_refused(monkeypatch):
    def load_model(model_file_path: str = "") -> torch.nn.Module:
        model = hear_api_module.load_model(model_file_path)
        model.scene_embedding_size = "12"  # shadows the class attribute
        return model

    replaced_module(monkeypatch, "hear_bad_size", load_model=load_model)
    with pytest.raises(ParameterError, match="'hear_bad_size' must have a positive integer scene_embedding_size"):
        hear(module="hear_bad_size")


@pytest.mark.parametrize("embedding", ["scene", "timestamp_mean"])
def test_a_model_returning_another_width_than_it_declares_is_refused(monkeypatch, rng, embedding):
    def scene(audio: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
        return hear_api_module.get_scene_embeddings(audio, model)[:, :11]

    def frames(audio: torch.Tensor, model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings, times = hear_api_module.get_timestamp_embeddings(audio, model)
        return embeddings[..., :11], times

    replaced_module(monkeypatch, "hear_narrow", get_scene_embeddings=scene, get_timestamp_embeddings=frames)
    backbone = hear(module="hear_narrow", embedding=embedding)
    with pytest.raises(ParameterError, match=r"hear_narrow\.get_\w+_embeddings returned shape \(1, .*11\) .* declares"):
        backbone.embed_batch(signals(rng))


def test_options_are_checked_without_importing_torch_or_the_module():
    code = """
    import sys
    from audiorec.backbones import BACKBONES
    from audiorec.errors import ParameterError
    checked = BACKBONES.check_options("hear", {"module": "hear_api_module", "embedding": "timestamp_mean"}, "here")
    print("CHECKED", checked.module, checked.embedding, checked.weights == "")
    try:
        BACKBONES.check_options("hear", {"module": "hear_api_module", "embedding": "frames"}, "backbones.h.options")
    except ParameterError as error:
        print("ERROR", error)
    print("IMPORTED", [name for name in ("torch", "hear_api_module", "audiorec.backbones.hear") if name in sys.modules])
    """
    # Run from tests/, where the module is importable: checking options must still leave it alone.
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=TESTS, capture_output=True, text=True, check=True
    )
    assert "CHECKED hear_api_module timestamp_mean True" in process.stdout
    assert "ERROR backbones.h.options: backbone hear option embedding must be one of" in process.stdout
    assert "IMPORTED []" in process.stdout
    assert HearOptions(module="hear_api_module").embedding == "scene"


def test_the_plan_turns_a_pinned_weights_source_into_the_local_file_load_model_reads():
    source = {"files": {"model.pt": {"sha256": "0" * 64, "url": "https://example.org/model.pt"}}, "weights": "model.pt"}
    plan = BackbonePlan.from_entry("h", {"kind": "hear", "options": {"module": "hear_api_module", "weights": source}})
    assert plan.checked.weights == "resources/weights/h/model.pt" and plan.weights_files == [plan.checked.weights]
    assert plan.traits.uses_gpu and "hear_api_module" in plan.spec["options"]["module"]


def test_the_modules_code_is_part_of_the_extraction_parameters_so_an_update_reruns_it(tmp_path, monkeypatch):
    from audiorec.common.plugins import modules_code_version
    from audiorec.plan.models import BackbonePlan

    (tmp_path / "my_hear_model.py").write_text((Path(__file__).parents[1] / "hear_api_module.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = {"kind": "hear", "options": {"module": "my_hear_model"}}
    first = BackbonePlan.from_entry("h", entry).spec["code"]
    assert first["target"] == "my_hear_model" and len(first["sources_sha256"]) == 64
    (tmp_path / "my_hear_model.py").write_text((tmp_path / "my_hear_model.py").read_text() + "\n# updated\n")
    modules_code_version.cache_clear()  # a new Snakemake process reads the module afresh
    assert BackbonePlan.from_entry("h", entry).spec["code"]["sources_sha256"] != first["sources_sha256"]
