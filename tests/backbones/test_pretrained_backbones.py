"""MERT, Music2Vec, MusicFM, MuQ and EncodecMAE: tiny random models of the real classes, full sizes on meta.

Each family's checkpoint is saved in the layout its release uses (key prefixes, legacy weight-norm names,
training-only heads, a Hugging Face directory with config.json) and must load strictly into a fresh backbone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_embed import make_bad_collection

from audiorec.backbones import backbone_class, build_backbone
from audiorec.backbones.base import file_sha256
from audiorec.backbones.encodecmae import HeadsLastAttention
from audiorec.backbones.pretrained import PretrainedBackbone
from audiorec.backbones.shipped import shipped_config
from audiorec.cli import main as cli_main
from audiorec.errors import ParameterError
from audiorec.extraction.embed import extract
from audiorec.storage.tables import read_embeddings

KINDS = ["mert", "music2vec", "musicfm", "muq", "encodecmae"]


def tiny(kind: str, **options) -> PretrainedBackbone:
    return build_backbone(kind, {"size": "tiny", "device": "cpu", **options})


def noise_windows(backbone: PretrainedBackbone, n: int = 2, seed: int = 0) -> torch.Tensor:
    samples = round(backbone.clip_seconds * backbone.sample_rate)
    return torch.from_numpy(np.random.default_rng(seed).normal(0, 0.1, (n, samples)).astype(np.float32))


def perturbed_state(backbone: PretrainedBackbone) -> dict[str, torch.Tensor]:
    """The backbone's state moved away from its initialisation (derived rotary frequencies excepted)."""
    generator = torch.Generator().manual_seed(7)
    return {
        key: value + 0.05 * torch.randn(value.shape, generator=generator)
        if value.is_floating_point() and not key.endswith("inv_freq")
        else value.clone()
        for key, value in backbone.model.state_dict().items()
    }


def save_release(kind: str, state: dict[str, torch.Tensor], folder: Path) -> Path:
    """Write ``state`` the way each family's release stores its weights; returns the ``weights`` path."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = shipped_config(kind, "tiny")
    if kind == "mert":  # HF directory, pytorch_model.bin saved before torch's weight-norm parametrizations
        legacy = {
            key.replace("parametrizations.weight.original0", "weight_g").replace(
                "parametrizations.weight.original1", "weight_v"
            ): value
            for key, value in state.items()
        }
        torch.save(legacy, folder / "pytorch_model.bin")
        (folder / "config.json").write_text(json.dumps({"model_type": "mert_model", **spec["model"]}))
        return folder
    if kind == "music2vec":  # HF directory whose config.json has a path as vocab_size, as the release's does
        save_file(state, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps({"vocab_size": "/home/someone/dict.txt", **spec["model"]}))
        return folder
    if kind == "musicfm":  # one .pt with a Lightning-style "model." prefix, heads and no rotary buffer
        extras = {"linear.weight": torch.zeros(4, 32), "quantizer_melspec_2048_0.codebook": torch.zeros(4, 4)}
        kept = {key: value for key, value in {**state, **extras}.items() if not key.endswith("inv_freq")}
        torch.save({"state_dict": {f"model.{key}": value for key, value in kept.items()}}, folder / "musicfm.pt")
        return folder / "musicfm.pt"
    if kind == "muq":  # HF-hub-mixin directory: model.safetensors with "model." keys, config.json with stats
        extras = {"rvq.quantizers.0.codebook.weight": torch.zeros(4, 4), "cls_token": torch.zeros(32)}
        save_file(
            {f"model.{key}": value for key, value in {**state, **extras}.items()}, str(folder / "model.safetensors")
        )
        release = {
            "label_rate": 25,
            "hop_length": 240,
            "n_mels": 16,
            "conv_dim": 8,
            "encoder_dim": 32,
            "encoder_depth": 2,
            "stat": {"melspec_2048_mean": 1.5, "melspec_2048_std": 20.0},
            "w2v2_config": {**spec["conformer"], "hidden_size": 1024, "num_hidden_layers": 24},
        }
        (folder / "config.json").write_text(json.dumps(release))
        return folder
    # encodecmae: a Lightning checkpoint's state_dict with decoder and head, feed-forward keys under every layer
    extras = {"decoder_projector.weight": torch.zeros(32, 32), "head.ln.weight": torch.zeros(32)}
    torch.save({"state_dict": {**state, **extras}}, folder / "model.pt")
    return folder / "model.pt"


@pytest.mark.parametrize("kind", KINDS)
def test_hidden_layers_have_the_declared_shapes(kind):
    backbone = tiny(kind)
    windows = noise_windows(backbone, n=3)
    layers = backbone.forward_layers(windows)
    assert len(layers) == len(backbone.layers) == 3
    frames = {layer.shape[1] for layer in layers}
    assert len(frames) == 1 and frames.pop() > 1
    for layer, dim in zip(layers, backbone.layer_dims.values(), strict=True):
        assert layer.shape[0] == 3 and layer.shape[2] == dim
    pooled = backbone.embed_batch([windows[0].numpy(), np.zeros(1000, np.float32)])
    assert list(pooled) == [f"layer_{i}" for i in range(3)]
    for name, dim in backbone.layer_dims.items():
        assert pooled[name].shape == (2, dim) and np.all(np.isfinite(pooled[name]))
    (window,) = backbone.windows(windows[0].numpy())  # normalised for MERT and Music2Vec
    expected = backbone.forward_layers(torch.from_numpy(window)[None])[2][0].mean(dim=0)
    np.testing.assert_allclose(pooled["layer_2"][0], expected.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kind", "size", "n_layers", "dim", "seconds", "frames"),
    [
        ("mert", "v1-95M", 13, 768, 5.0, 374),  # 75 frames/s
        ("mert", "v1-330M", 25, 1024, 5.0, 374),
        ("music2vec", "v1", 13, 768, 30.0, 1499),  # 50 frames/s
        ("musicfm", "25hz", 13, 1024, 30.0, 750),  # 25 frames/s
        ("muq", "large", 13, 1024, 30.0, 750),
        ("encodecmae", "base", 11, 768, 1.0, 75),  # 75 frames/s
    ],
)
def test_full_size_architectures_have_the_published_layers_and_frame_rates(kind, size, n_layers, dim, seconds, frames):
    cls = backbone_class(kind)
    spec = shipped_config(kind, size)
    assert cls.hidden_sizes(spec) == [dim] * n_layers
    with torch.device("meta"):  # shapes only: no memory, no compute
        model = cls.build_model(spec).eval()
        layers = cls.hidden_states(model, torch.zeros(2, round(seconds * spec["sample_rate"])))
    assert [tuple(layer.shape) for layer in layers] == [(2, frames, dim)] * n_layers


@pytest.mark.parametrize(
    ("kind", "size", "expected"),
    [
        ("mert", "v1-95M", 94_371_712),
        ("mert", "v1-330M", 315_428_992),
        ("music2vec", "v1", 93_164_288),
        ("musicfm", "25hz", 324_733_056),
        ("muq", "large", 324_733_056),
        ("encodecmae", "base", 37_446_401),
    ],
)
def test_full_size_configs_build_the_published_parameter_counts(kind, size, expected):
    spec = shipped_config(kind, size)
    with torch.device("meta"):
        model = backbone_class(kind).build_model(spec)
    count = sum(parameter.numel() for parameter in model.parameters())
    assert count == expected
    if "published_parameters" in spec:  # the releases round: 95M, 330M (MusicFM's includes its 4.2M-weight head)
        assert abs(count - spec["published_parameters"]) / spec["published_parameters"] < 0.05


def test_encodecmae_shares_one_feed_forward_block_and_splits_heads_channel_minor():
    spec = shipped_config("encodecmae", "base")
    with torch.device("meta"):
        model = backbone_class("encodecmae").build_model(spec)
    feed_forwards = {id(layer.ff_layer) for layer in model.visible_encoder.encoder_layers}
    assert len(feed_forwards) == 1 and len(model.visible_encoder.encoder_layers) == 10
    attention = HeadsLastAttention(8, num_heads=2)
    x = torch.randn(1, 5, 8)
    q, k, v = (
        w(x).view(1, 5, 4, 2).permute(0, 3, 1, 2).reshape(2, 5, 4) for w in (attention.wq, attention.wk, attention.wv)
    )
    mixed = torch.softmax(q @ k.transpose(-2, -1) * 4**-0.5, dim=-1) @ v  # the release's formulation
    expected = attention.wo(mixed.view(1, 2, 5, 4).permute(0, 2, 3, 1).reshape(1, 5, 8))
    torch.testing.assert_close(attention(x), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_a_release_checkpoint_loads_strictly_and_is_used(kind, tmp_path):
    fresh = tiny(kind)
    state = perturbed_state(fresh)
    weights = save_release(kind, state, tmp_path / kind)
    loaded = tiny(kind, weights=str(weights))
    reference = tiny(kind, **({"stats": str(_stats_file(tmp_path, 1.5, 20.0))} if kind == "muq" else {}))
    reference.model.load_state_dict(state)
    windows = noise_windows(fresh)
    with torch.inference_mode():
        got, want, before = (b.forward_layers(windows) for b in (loaded, reference, fresh))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(got[-1], before[-1])
    files = sorted(weights.glob("*.safetensors")) + sorted(weights.glob("*.bin")) if weights.is_dir() else [weights]
    assert loaded.weights_sha256 == file_sha256(files[0]) and fresh.weights_sha256 is None


def _stats_file(folder: Path, mean: float, std: float) -> Path:
    path = folder / "stats.json"
    path.write_text(json.dumps({"melspec_2048_mean": mean, "melspec_2048_std": std}))
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_or_renamed_key_fails_naming_it(kind, tmp_path):
    state = perturbed_state(tiny(kind))
    dropped = sorted(key for key in state if key.endswith(".bias"))[0]
    renamed = sorted(key for key in state if key.endswith(".weight") and key != dropped)[-1]
    state.pop(dropped)
    state[renamed + "_renamed"] = state.pop(renamed)
    weights = save_release(kind, state, tmp_path / kind)
    with pytest.raises(ParameterError, match="do not match") as info:
        tiny(kind, weights=str(weights))
    message = str(info.value)
    assert dropped in message and renamed in message and f"{renamed}_renamed" in message and str(weights) in message


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_input_gives_the_same_embedding(kind):
    signal = noise_windows(tiny(kind), n=1, seed=3)[0].numpy()
    signal = np.concatenate([signal, signal[: len(signal) // 2]])
    first = tiny(kind).embed_batch([signal])
    second_backbone = tiny(kind)
    second = second_backbone.embed_batch([signal])
    again = second_backbone.embed_batch([signal])
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
        np.testing.assert_array_equal(second[name], again[name])


@pytest.mark.parametrize("stable", [False, True], ids=["post-norm (95M)", "stable layer norm (330M)"])
def test_mert_layers_equal_the_hidden_states_of_the_release_era(stable, tmp_path):
    """Inner layers equal transformers' own ``hidden_states``; the last is the final output, layer norm included.

    That is what ``output_hidden_states`` returned in the transformers versions MERT was published with;
    transformers 5 returns the last block's output before the closing norm for the 330M layout instead.
    """
    spec = shipped_config("mert", "tiny")
    spec["model"]["do_stable_layer_norm"] = stable
    config = tmp_path / "mert.json"
    config.write_text(json.dumps(spec))
    backbone = build_backbone("mert", {"size": str(config), "device": "cpu", "normalize_waveform": False})
    windows = noise_windows(backbone)
    with torch.inference_mode():
        ours = backbone.forward_layers(windows)
        theirs = backbone.model(windows, output_hidden_states=True)
    assert len(ours) == len(theirs.hidden_states) == 3
    for a, b in zip(ours[:-1], theirs.hidden_states[:-1], strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(ours[-1], theirs.last_hidden_state)
    if stable:
        torch.testing.assert_close(ours[-1], backbone.model.encoder.layer_norm(theirs.hidden_states[-1]))


def test_waveform_normalisation_makes_mert_blind_to_gain():
    normalised, raw = tiny("mert"), tiny("mert", normalize_waveform=False)
    signal = noise_windows(normalised, n=1)[0].numpy()
    for backbone, invariant in ((normalised, True), (raw, False)):
        loud, quiet = backbone.embed_batch([signal, signal * 0.1])["layer_2"]
        assert np.allclose(loud, quiet, atol=1e-4) is invariant


def test_musicfm_normalises_with_the_chosen_statistics(tmp_path):
    msd = tiny("musicfm")
    assert (msd.model.mean, msd.model.std) == (6.768444971712967, 18.417922652295623)
    fma = tiny("musicfm", stats=str(_stats_file(tmp_path, 7.0, 19.0)))
    assert (fma.model.mean, fma.model.std) == (7.0, 19.0)
    windows = noise_windows(msd)
    log_mel = msd.model.mel(windows)[..., :-1]
    torch.testing.assert_close(fma.model.features(windows), (log_mel - 7.0) / 19.0)
    with pytest.raises(ParameterError, match="stats='fma' is neither"):
        tiny("musicfm", stats="fma")


def test_musicfm_refuses_statistics_of_the_other_training_set(tmp_path):
    state = perturbed_state(tiny("musicfm"))
    fma = save_release("musicfm", state, tmp_path / "fma").rename(tmp_path / "fma" / "pretrained_fma.pt")
    msd = save_release("musicfm", state, tmp_path / "msd").rename(tmp_path / "msd" / "pretrained_msd.pt")
    fma_stats = _stats_file(tmp_path, 7.0, 19.0).rename(tmp_path / "fma_stats.json")
    with pytest.raises(ParameterError, match="FMA checkpoint but stats='msd' are MSD statistics"):
        tiny("musicfm", weights=str(fma))  # the shipped default is MSD's
    with pytest.raises(ParameterError, match=r"MSD checkpoint .* FMA statistics: set stats to the release's msd_"):
        tiny("musicfm", weights=str(msd), stats=str(fma_stats))
    assert tiny("musicfm", weights=str(fma), stats=str(fma_stats)).model.std == 19.0
    assert tiny("musicfm", weights=str(msd)).model.std == 18.417922652295623


def test_muq_takes_the_release_statistics_and_refuses_a_different_architecture(tmp_path):
    weights = save_release("muq", perturbed_state(tiny("muq")), tmp_path / "muq")
    loaded = tiny("muq", weights=str(weights))
    assert (loaded.model.mean, loaded.model.std) == (1.5, 20.0)
    release = json.loads((weights / "config.json").read_text())
    for key, value, message in [
        ("encoder_depth", 12, "encoder_depth=12"),
        ("hop_length", 320, r"hop_length=240 .* hop_length=320"),
        ("n_mels", 128, r"n_mels=16 .* n_mels=128"),
        ("label_rate", 50, r"label_rate=25.0 .* label_rate=50"),
    ]:
        (weights / "config.json").write_text(json.dumps({**release, key: value}))
        with pytest.raises(ParameterError, match=message):
            tiny("muq", weights=str(weights))
    built = tiny("muq")
    assert built.label_rate_pairs(50)[1] == ("conv time strides", [2, 2], [2, 1])  # 50 Hz halves time once


def test_a_weights_directory_of_another_size_is_refused(tmp_path):
    weights = save_release("mert", perturbed_state(tiny("mert")), tmp_path / "mert")
    config = json.loads((weights / "config.json").read_text())
    (weights / "config.json").write_text(json.dumps({**config, "hidden_size": 1024}))
    with pytest.raises(ParameterError, match=r"hidden_size=32 .* hidden_size=1024"):
        tiny("mert", weights=str(weights))


def test_options_are_checked():
    with pytest.raises(ParameterError, match="shipped sizes are"):
        build_backbone("mert", {"size": "v2-1B"})
    with pytest.raises(ParameterError, match="unknown option"):
        build_backbone("mert", {"size": "tiny", "layers": 3})
    with pytest.raises(ParameterError, match="clip_seconds must be positive"):
        build_backbone("mert", {"size": "tiny", "clip_seconds": 0})
    with pytest.raises(ParameterError, match="does not exist"):
        tiny("encodecmae", weights="/nonexistent/model.pt")


def test_a_shard_of_bad_files_keeps_every_good_track(tmp_path):
    track_ids, paths = make_bad_collection(tmp_path / "audio")
    backbone = tiny("mert")
    result = extract(track_ids, paths, backbone, batch_size=3, progress=False)
    assert result.track_ids == ["good0", "good1", "good2", "silent", "six_channel_8k"]
    assert {row["track_id"] for row in result.failures} == {"corrupt", "empty", "missing"}
    assert result.silent == [False, False, False, True, False]
    vectors = result.layer_matrices(backbone)
    assert all(matrix.shape == (5, 32) and np.all(np.isfinite(matrix)) for matrix in vectors.values())


def test_cli_embeds_a_folder_with_a_pretrained_backbone(tmp_path):
    make_bad_collection(tmp_path / "audio")
    out = tmp_path / "mert.parquet"
    options = json.dumps({"size": "tiny", "device": "cpu"})
    code = cli_main(
        [
            "embed",
            str(tmp_path / "audio"),
            "--backbone",
            "mert",
            "--options",
            options,
            "--layer",
            "0",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    ids, vectors = read_embeddings(out)
    assert len(ids) == 5 and vectors.shape == (5, 32)


def test_captured_layers_match_a_manual_conformer_pass():
    backbone = tiny("musicfm")
    windows = noise_windows(backbone)
    with torch.inference_mode():
        ours = backbone.forward_layers(windows)
        tokens = backbone.model.conv(backbone.model.features(windows))
        encoder = backbone.model.conformer
        rotary = encoder.embed_positions(tokens)
        manual = [tokens]
        hidden = tokens
        for layer in encoder.layers:
            hidden = layer(hidden, relative_position_embeddings=rotary)
            manual.append(hidden)
        manual[-1] = encoder.layer_norm(hidden)
    for a, b in zip(ours, manual, strict=True):
        torch.testing.assert_close(a, b)


def test_the_example_config_is_valid_and_names_shipped_sizes():
    import yaml
    from snakemake.utils import validate

    from audiorec.common.config import dataclass_from_mapping

    root = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((root / "config/examples/pretrained_backbones.yaml").read_text())
    validate(config, str(root / "config/schema.yaml"))
    assert {entry["kind"] for entry in config["backbones"].values()} == {*KINDS, "muq_mulan", "mule"}
    for name, entry in config["backbones"].items():
        cls = backbone_class(entry["kind"])
        options = dataclass_from_mapping(cls.options_class, entry["options"], name)
        assert shipped_config(cls.family, options.size)["sample_rate"] in (16000, 24000)
