"""MuQ-MuLan's audio embedding against the original ``muq`` 0.1.0 code (``tests/fixtures/muq_mulan/``).

The fixture is the original ``MuQMuLan`` at the shipped tiny size with seeded random weights: its checkpoint
in the release's layout (text tower, loss and pre-training heads included), and its outputs, clip by clip and
layer by layer, on a track shorter than half a clip, one between half a clip and a clip, and one of several.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from audiorec.backbones import backbone_class, build_backbone
from audiorec.backbones.muq_mulan import MuQMuLanBackbone, wrapped_clips
from audiorec.backbones.shipped import shipped_config
from audiorec.errors import ParameterError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "muq_mulan"
TRACKS = ("short", "medium", "long")
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "reference.npz") as arrays:
        return dict(arrays)


@pytest.fixture(scope="module")
def loaded() -> MuQMuLanBackbone:
    return tiny(weights=str(FIXTURE))


def tiny(**options) -> MuQMuLanBackbone:
    return build_backbone("muq_mulan", {"size": "tiny", "device": "cpu", **options})


def n_clips(reference: dict[str, np.ndarray], track: str) -> int:
    return len({key.split("/")[1] for key in reference if key.startswith(f"{track}/clip_")})


@pytest.mark.parametrize("track", TRACKS)
def test_every_layer_of_every_clip_matches_the_original(loaded, reference, track):
    clips = loaded.windows(reference[f"{track}/input"])
    assert len(clips) == n_clips(reference, track) == {"short": 1, "medium": 1, "long": 3}[track]
    for index, clip in enumerate(clips):
        prefix = f"{track}/clip_{index}/"
        theirs = {key.removeprefix(prefix): value for key, value in reference.items() if key.startswith(prefix)}
        np.testing.assert_array_equal(clip, theirs["samples"])
        waveform = torch.from_numpy(clip)[None]
        with torch.inference_mode():
            hidden = loaded.model.encoder(waveform)
            head = loaded.model.audio(waveform)
            pooled = loaded.forward_layers(waveform)
        assert len(hidden) == 3 and len(head) == 3 and len(pooled) == 4
        for layer, ours in enumerate(hidden):
            np.testing.assert_allclose(ours[0].numpy(), theirs[f"muq_hidden_{layer}"], **TOLERANCE)
        np.testing.assert_allclose(head[0][0].numpy(), theirs["projection"], **TOLERANCE)
        for block, ours in enumerate(head[1:]):
            np.testing.assert_allclose(ours[0].numpy(), theirs[f"block_{block}"], **TOLERANCE)
        np.testing.assert_allclose(pooled[-2][0, 0].numpy(), theirs["pooled"], **TOLERANCE)
        np.testing.assert_allclose(pooled[-1][0, 0].numpy(), theirs["latent"], **TOLERANCE)
        assert abs(np.linalg.norm(theirs["latent"]) - 1) < 1e-5


def test_track_embeddings_match_the_original_whatever_the_batch(loaded, reference):
    inputs = [reference[f"{track}/input"] for track in TRACKS]
    together = loaded.embed_batch(inputs)
    assert list(together) == ["layer_0", "layer_1", "layer_2", "layer_3"]
    for row, track in enumerate(TRACKS):
        alone = loaded.embed_batch([inputs[row]])
        for name in together:
            np.testing.assert_allclose(together[name][row], alone[name][0], rtol=1e-6, atol=1e-6)
        # The embedding is the mean of the clips' unit latents, serial or parallel in the original.
        np.testing.assert_allclose(together["layer_3"][row], reference[f"{track}/embedding"], **TOLERANCE)
        np.testing.assert_allclose(together["layer_3"][row], reference[f"{track}/embedding_parallel"], **TOLERANCE)
        # Every other layer: the mean over clips of each clip's mean over frames.
        clips = range(n_clips(reference, track))
        for name, key in (("layer_0", "projection"), ("layer_1", "block_0"), ("layer_2", "block_1")):
            expected = np.mean([reference[f"{track}/clip_{i}/{key}"].mean(axis=0) for i in clips], axis=0)
            np.testing.assert_allclose(together[name][row], expected, **TOLERANCE)


def test_clips_wrap_around_to_the_start_of_the_track():
    signal = np.arange(1, 11, dtype=np.float32)
    assert [clip.tolist() for clip in wrapped_clips(signal, 4, 2)] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 1, 2]]
    assert [clip.tolist() for clip in wrapped_clips(signal[:8], 4, 2)] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert [clip.tolist() for clip in wrapped_clips(signal[:3], 8, 2)] == [[1, 2, 3, 1, 2, 3]]  # doubled
    assert [clip.tolist() for clip in wrapped_clips(signal[:1], 8, 5)] == [[1, 1, 0, 0, 0]]  # padded to a frame
    assert [clip.tolist() for clip in wrapped_clips(signal[:0], 8, 3)] == [[0, 0, 0]]
    backbone = tiny()
    assert [len(clip) for clip in backbone.windows(np.ones(300, np.float32))] == [1025]
    embedded = backbone.embed_batch([np.ones(300, np.float32)])
    assert all(np.all(np.isfinite(vectors)) for vectors in embedded.values())


def test_the_full_size_model_has_the_release_shapes_and_parameters():
    cls = backbone_class("muq_mulan")
    spec = shipped_config("muq_mulan", "large")
    assert cls.hidden_sizes(spec) == [768] * 9 + [512]
    with torch.device("meta"):
        model = cls.build_model(spec).eval()
        layers = cls.hidden_states(model, torch.zeros(2, 10 * 24000))
    assert [tuple(layer.shape) for layer in layers] == [(2, 1, 768)] * 9 + [(2, 1, 512)]
    # MuQ's encoder (324,733,056), 8 blocks of 6,293,120, proj 1024x768+768, audio_to_latents 768x512+512.
    assert sum(parameter.numel() for parameter in model.parameters()) == 376_258_944


def test_loading_is_strict_and_names_the_keys(tmp_path):
    state = load_file(str(FIXTURE / "model.safetensors"))
    # Buffers a release trained with the hierarchical loss would add: not part of the audio tower.
    indices = {f"mulan.{side}_layers_indices": torch.tensor([0]) for side in ("audio", "text")}
    save_file({**state, **indices}, str(tmp_path / "model.safetensors"))
    assert tiny(weights=str(tmp_path)).weights_sha256 is not None
    state.pop("mulan.audio.transformer.layers.1.0.q_scale")
    state["mulan.audio.transformer.layers.1.0.extra"] = torch.zeros(1)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ParameterError, match="do not match") as info:
        tiny(weights=str(tmp_path))
    assert "audio.transformer.layers.1.0.q_scale" in str(info.value)
    assert "audio.transformer.layers.1.0.extra" in str(info.value)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("audio_transformer", "tf_depth", 8, r"audio_transformer.tf_depth=2 .* audio_transformer.tf_depth=8"),
        ("mulan", "clip_secs", 10, r"mulan.clip_secs=1 .* mulan.clip_secs=10"),
        ("audio_model", "use_layer_idx", 6, "use_layer_idx=6"),
        ("audio_model", "name", "m-a-p/MERT-v1-330M", "is not a MuQ model"),
    ],
)
def test_a_release_config_of_another_architecture_is_refused(tmp_path, section, key, value, message):
    folder = tmp_path / "release"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("*.npz", "*.py", "*.md"))
    config = json.loads((folder / "config.json").read_text())
    config[section][key] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ParameterError, match=message):
        tiny(weights=str(folder))


def test_statistics_come_from_the_shipped_set_or_a_muq_release_config(tmp_path):
    assert (tiny().model.encoder.mean, tiny().model.encoder.std) == (6.768444971712967, 18.417922652295623)
    release = tmp_path / "config.json"
    release.write_text(json.dumps({"stat": {"melspec_2048_mean": 1.5, "melspec_2048_std": 20.0}}))
    assert tiny(stats=str(release)).model.encoder.std == 20.0
    with pytest.raises(ParameterError, match="stats='fma' is neither"):
        tiny(stats="fma")


def test_the_same_input_gives_the_same_embedding(reference):
    signal = reference["long/input"]
    first, second = tiny().embed_batch([signal]), tiny().embed_batch([signal])
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_under_autocast_only_the_conformer_leaves_float32(reference):
    backbone = tiny()
    dtypes: dict[str, set[torch.dtype]] = {"front": set(), "conformer": set(), "head": set()}
    parts = {"front": backbone.model.encoder.conv, "conformer": backbone.model.encoder.conformer}
    parts["head"] = backbone.model.audio.transformer
    handles = [
        module.register_forward_hook(lambda _m, _a, output, part=part: dtypes[part].add(output.dtype))
        for part, root in parts.items()
        for module in root.modules()
        if isinstance(module, torch.nn.Linear)
    ]
    handles.append(
        backbone.model.audio_to_latents.register_forward_hook(lambda _m, _a, out: dtypes["head"].add(out.dtype))
    )
    clip = torch.from_numpy(reference["medium/clip_0/samples"])[None]
    try:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            layers = backbone.forward_layers(clip)
    finally:
        for handle in handles:
            handle.remove()
    assert dtypes == {"front": {torch.float32}, "conformer": {torch.bfloat16}, "head": {torch.float32}}
    assert {layer.dtype for layer in layers} == {torch.float32}
    backbone.device = torch.device("cuda")  # the precision only reads the device type
    backbone.requested_precision = "bf16"
    assert backbone.precision == "bfloat16 autocast, log-mel and conv front end and the MuLan head in float32"
