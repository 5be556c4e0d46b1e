"""Jukebox: the tiny config of the real classes on the CPU, the 5B config on the meta device, real weights if given.

The published checkpoints are imitated in their own format (a legacy pickle whose ``"model"`` holds the state
dict behind a ``module.`` prefix, float16 dense weights, the blocks past 36, the output layer, the other VQ-VAE
levels and decoders). ``AUDIOREC_JUKEBOX_WEIGHTS`` may name the folder of the real ``vqvae.pth.tar`` and
``prior_level_2.pth.tar`` to check the codes against the ones transformers' Jukebox port was tested with.

On the CPU a backbone computes in float32 whatever its recipe asks, so the tests that pin the model's outputs pin
JukeMIR's float32 arithmetic (``fp16=False``); the fp16 tests run jukemirlib's float16 prior on the CPU on purpose
(``reduced_precision_on_cpu``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from audiorec.backbones import BACKBONES, backbone_class, build_backbone
from audiorec.backbones.base import file_sha256
from audiorec.backbones.jukebox import JukeboxBackbone, conditioning_ids
from audiorec.backbones.jukebox_model import (
    ATTENTION_CYCLE,
    Codebook,
    TopEncoder,
    factored_attention,
    store_projections_in,
)
from audiorec.backbones.jukebox_weights import PUBLISHED_FILES, converted_name, read_published
from audiorec.backbones.options import JukeboxOptions
from audiorec.backbones.shipped import shipped_config
from audiorec.errors import AudiorecError, ParameterError

REAL_WEIGHTS = os.environ.get("AUDIOREC_JUKEBOX_WEIGHTS")
needs_real_weights = pytest.mark.skipif(
    not REAL_WEIGHTS, reason="set AUDIOREC_JUKEBOX_WEIGHTS to the folder of vqvae.pth.tar and prior_level_2.pth.tar"
)

EXPECTED_TOP_CODES = [
    390, 1160, 1002, 1907, 1788, 1788, 1788, 1907, 1002, 1002, 1854, 1002,
    1002, 1002, 1002, 1002, 1002, 1160, 1160, 1606, 596, 596, 1160, 1002,
    1516, 596, 1002, 1002, 1002, 1907, 1788, 1788, 1788, 1854, 1788, 1907,
    1907, 1788, 596, 1626,
]  # fmt: skip
"""Top-level codes of ``torch.manual_seed(0); torch.rand(1, 5120, 1)`` (transformers' Jukebox tests)."""


def tiny(**options) -> JukeboxBackbone:
    return build_backbone("jukebox", {"size": "tiny", "device": "cpu", **options})


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, round(seconds * 44100)).astype(np.float32)


def dense_oracle(q, k, v, kind: str, heads: int, block_ctx: int) -> torch.Tensor:
    """Attention over all positions with the type's mask written out position by position."""
    length = q.shape[1]
    i, j = torch.arange(length).view(-1, 1), torch.arange(length).view(1, -1)
    allowed = {
        "block": (i // block_ctx == j // block_ctx) & (j <= i),
        "transpose": (i % block_ctx == j % block_ctx) & (j <= i),
        "previous": j // block_ctx == i // block_ctx - 1,
    }[kind]
    split = [t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v)]
    scores = split[0] @ split[1].transpose(-1, -2) / split[0].shape[-1] ** 0.5
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)
    return (weights @ split[2]).transpose(1, 2).flatten(-2)  # rows without keys (block 0, previous) are 0


@pytest.mark.parametrize("kind", ATTENTION_CYCLE)
def test_each_attention_type_equals_its_dense_masked_definition(kind):
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 2, 48, 12).unbind(0)
    got = factored_attention(q, k, v, kind, heads=3, block_ctx=8)
    torch.testing.assert_close(got, dense_oracle(q, k, v, kind, 3, 8))
    if kind == "previous":  # the first block attends to zero keys and values
        assert torch.count_nonzero(got[:, :8]) == 0


def perturbed_state(backbone: JukeboxBackbone, seed: int = 5) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        key: value + 0.05 * torch.randn(value.shape, generator=generator) if value.is_floating_point() else value
        for key, value in backbone.model.state_dict().items()
    }


def test_the_prior_is_causal_and_padding_to_whole_blocks_changes_nothing():
    model = tiny().model
    model.load_state_dict(perturbed_state(tiny()))
    codes = torch.randint(0, 32, (2, 100), generator=torch.Generator().manual_seed(2))
    changed = codes.clone()
    changed[:, 60] = (codes[:, 60] + 1) % 32
    with torch.inference_mode():
        before, after = list(model.layers(codes)), list(model.layers(changed))
        short = list(model.layers(codes[:, :37]))  # 37 codes: padded to 48 inside
    for layer_before, layer_after, layer_short in zip(before, after, short, strict=True):
        torch.testing.assert_close(layer_before[:, :61], layer_after[:, :61], rtol=0, atol=0)
        torch.testing.assert_close(layer_short, layer_before[:, :37], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(before[-1][:, 61:], after[-1][:, 61:])  # the changed code reaches later positions


def test_the_prior_reads_shifted_codes_behind_the_start_token_with_position_and_timing():
    model = tiny().model
    codes = torch.randint(0, 32, (1, 20))
    with torch.inference_mode():
        first = next(model.layers(codes))[0]
        start, timing = model.y_emb()
    labels = model.y_emb
    torch.testing.assert_close(start, labels.artist_emb.emb.weight[0] + labels.bow_genre_emb.emb.weight[0])
    bins = conditioning_ids(shipped_config("jukebox", "tiny"))
    expected_timing = (
        labels.total_length_emb.emb.weight[bins.total_length_bin]
        + labels.absolute_pos_emb.emb.weight[bins.absolute_bins]
        + labels.relative_pos_emb.emb.weight[bins.relative_bins]
    )
    torch.testing.assert_close(timing, expected_timing)
    inputs = torch.cat([start[None], model.prior.x_emb.weight[codes[0, :-1]]])
    torch.testing.assert_close(first, inputs + model.prior.pos_emb.pos_emb[:20] + timing[:20])


def test_conditioning_ids_are_jukemirs_setting():
    ids = conditioning_ids(shipped_config("jukebox", "5b"))
    assert (ids.total_length, ids.sample_length) == (2_734_080, 8192 * 128)  # 62 s rounded down to the hop
    assert (ids.artist, ids.genres, ids.total_length_bin) == (0, (0, -1, -1, -1, -1), 0)
    position = np.arange(8192)
    absolute = np.floor(128 * (128.0 * position) / (600 * 44100))
    relative = np.floor(128 * (1_048_576 / 2_734_080) * position / 8192)
    np.testing.assert_array_equal(ids.absolute_bins.numpy(), absolute)
    np.testing.assert_array_equal(ids.relative_bins.numpy(), relative)
    assert (ids.absolute_bins[-1], ids.relative_bins[-1]) == (5, 49)


def test_the_5b_config_builds_the_published_shapes_and_code_counts():
    spec = shipped_config("jukebox", "5b")
    cls = backbone_class("jukebox")
    assert cls.hidden_sizes(spec) == [4800] * 37 and cls.min_window_samples(spec) == 128
    with torch.device("meta"):
        model = cls.build_model(spec)
        counts = [model.encoders["2"](torch.zeros(1, 1, n)).shape[-1] for n in (1_102_500, 1_048_576, 5120)]
        layers = cls.hidden_states(model, torch.zeros(1, 1_102_500))
    assert counts == [8613, 8192, 40]
    assert [tuple(layer.shape) for layer in layers] == [(1, 8192, 4800)] * 37  # codes cut to the context
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes["bottleneck.level_blocks.2.k"] == (2048, 64) and shapes["prior.pos_emb.pos_emb"] == (8192, 4800)
    assert shapes["prior.transformer._attn_mods.35.attn.c_attn.w"] == (4800, 3600)
    assert shapes["prior.transformer._attn_mods.35.attn.c_proj.w"] == (1200, 4800)
    assert shapes["y_emb.artist_emb.emb.weight"] == (4111, 4800)
    assert "prior.transformer._attn_mods.36.ln_0.weight" not in shapes
    assert sum(parameter.numel() for parameter in model.parameters()) == 2_561_131_424


def test_a_track_is_its_first_clip_peak_normalised_and_a_short_one_keeps_its_own_codes():
    backbone = tiny()
    backbone.model.load_state_dict(perturbed_state(backbone))
    long, short = noise(2.5, seed=1), noise(0.3, seed=2)
    vectors = backbone.embed_batch([long, short])
    quiet = backbone.embed_batch([long * 0.1, short * 0.1])
    tail_changed = long.copy()
    tail_changed[44100:] *= 0.5  # after the 1 s clip, and below the peak
    for name in backbone.layers:
        np.testing.assert_allclose(quiet[name], vectors[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backbone.embed_batch([tail_changed])["layer_3"][0], vectors["layer_3"][0], rtol=1e-6)
    clip = torch.from_numpy(short / np.abs(short).max())
    with torch.inference_mode():
        codes = backbone.model.encode(clip)
        expected = list(backbone.model.layers(codes[None]))[-1][0].mean(dim=0)
    assert codes.shape == (0.3 * 44100 // 128,)
    np.testing.assert_allclose(vectors["layer_3"][1], expected.numpy(), rtol=1e-5, atol=1e-6)
    assert all(np.all(np.isfinite(matrix)) for matrix in vectors.values())


def save_published(state: dict[str, torch.Tensor], folder: Path) -> None:
    """Both checkpoints in the release's layout, legacy serialisation, unused parts included."""
    folder.mkdir(parents=True, exist_ok=True)
    vqvae = {key: value for key, value in state.items() if key.startswith(("encoders.", "bottleneck."))}
    vqvae |= {
        "encoders.0.level_blocks.0.model.0.0.weight": torch.zeros(16, 1, 4),
        "bottleneck.level_blocks.1.k": torch.zeros(32, 8),
        "decoders.2.out.weight": torch.zeros(1, 8, 3),
    }
    prior = {key: value for key, value in state.items() if key.startswith(("prior.", "y_emb."))}
    prior = {key: value.half() if key.endswith(".w") else value for key, value in prior.items()}
    for block in range(3, 6):  # the blocks past the kept ones
        prior |= {f"prior.transformer._attn_mods.{block}.mlp.c_fc.w": torch.zeros(32, 32, dtype=torch.float16)}
    prior["prior.x_out.weight"] = torch.zeros(32, 32)
    for name, part in zip(PUBLISHED_FILES, (vqvae, prior), strict=True):
        checkpoint = {"hps": {"sr": 44100, "downs_t": (3, 2, 2)}, "model": {f"module.{k}": v for k, v in part.items()}}
        torch.save(checkpoint, folder / name, _use_new_zipfile_serialization=False)


def test_published_checkpoints_convert_once_and_load_strictly(tmp_path):
    fresh = tiny()
    state = perturbed_state(fresh)
    save_published(state, tmp_path / "5b")
    loaded = tiny(weights=str(tmp_path / "5b"))
    converted = tmp_path / "5b" / converted_name(shipped_config("jukebox", "tiny"))
    assert loaded.weights_sha256 == file_sha256(converted) and fresh.weights_sha256 is None
    reference = tiny()
    reference.model.load_state_dict({k: v.half().float() if k.endswith(".w") else v for k, v in state.items()})
    windows = torch.from_numpy(noise(1.0)[None])
    with torch.inference_mode():
        got, want, before = (b.forward_layers(windows) for b in (loaded, reference, fresh))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(got[-1], before[-1])
    for name in PUBLISHED_FILES:  # later loads read the conversion only
        (tmp_path / "5b" / name).write_bytes(b"gone")
    for weights in (tmp_path / "5b", converted):
        again = tiny(weights=str(weights))
        assert again.weights_sha256 == loaded.weights_sha256
        torch.testing.assert_close(again.forward_layers(windows)[-1], got[-1])


def test_the_conversion_goes_where_the_option_says(tmp_path):
    save_published(perturbed_state(tiny()), tmp_path / "release")
    target = tmp_path / "converted" / "jukebox.safetensors"
    loaded = tiny(weights=str(tmp_path / "release"), converted=str(target))
    assert target.is_file() and loaded.weights_sha256 == file_sha256(target)
    assert not list((tmp_path / "release").glob("*.safetensors"))


@pytest.mark.parametrize(
    ("change", "problem", "key"),
    [
        ("drop", "missing keys", "prior.transformer._attn_mods.1.ln_0.bias"),
        ("add", "unknown keys", "prior.transformer._attn_mods.6.attn.c_attn.w"),  # past the config's 6 blocks
        ("add", "unknown keys", "prior.start_token"),
        ("reshape", "misshaped keys", "y_emb.artist_emb.emb.weight"),
    ],
)
def test_a_missing_unknown_or_misshaped_key_fails_naming_it(tmp_path, change, problem, key):
    state = perturbed_state(tiny())
    if change == "drop":
        del state[key]
    elif change == "add":
        state[key] = torch.zeros(32, 48)
    else:
        state[key] = torch.zeros(7, 32)
    save_published(state, tmp_path / "5b")
    with pytest.raises(ParameterError, match=problem) as info:
        tiny(weights=str(tmp_path / "5b"))
    assert key in str(info.value) and str(tmp_path / "5b") in str(info.value)
    assert not list((tmp_path / "5b").glob("*.safetensors"))  # nothing is written from a bad checkpoint


def test_options_registry_and_precision(tmp_path):
    assert BACKBONES.traits("jukebox").uses_gpu
    with pytest.raises(ParameterError, match="unknown option"):
        tiny(layers=3)
    with pytest.raises(ParameterError, match="must be the folder holding"):
        tiny(weights=str(tmp_path / "prior_level_2.pth.tar"))
    (tmp_path / "vqvae.pth.tar").write_bytes(b"")
    with pytest.raises(ParameterError, match="lacks"):
        tiny(weights=str(tmp_path))
    backbone = tiny()
    assert backbone.precision == "float32" and backbone.requested_precision == "fp16"  # a CPU computes in float32
    backbone.device = torch.device("cuda")  # the precision only reads the device type
    assert backbone.precision == "float16 residual stream and prior projections (jukemirlib), VQ-VAE encoder in float32"
    assert tiny(precision="bf16").requested_precision == "bf16"
    backbone.requested_precision = "bf16"
    assert backbone.precision == "bfloat16 autocast, VQ-VAE encoder in float32"


def _real_vq_state() -> dict[str, torch.Tensor]:
    path = Path(REAL_WEIGHTS or "")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return read_published(path / "vqvae.pth.tar")


@needs_real_weights
def test_real_vqvae_gives_the_published_top_level_codes():
    spec = shipped_config("jukebox", "5b")
    state = _real_vq_state()
    encoder, codebook = TopEncoder(spec["vqvae"]), Codebook(2048, 64)
    encoder.load_state_dict({k.removeprefix("encoders.2."): v for k, v in state.items() if k.startswith("encoders.2.")})
    codebook.load_state_dict({"k": state["bottleneck.level_blocks.2.k"]})
    torch.manual_seed(0)
    audio = torch.rand(1, 5120, 1)
    with torch.inference_mode():
        codes = codebook.quantise(encoder(audio.transpose(1, 2)))
    assert codes[0].tolist() == EXPECTED_TOP_CODES


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the 36 real blocks need a GPU")
@needs_real_weights
def test_real_weights_give_finite_block_36_vectors():
    backbone = build_backbone("jukebox", {"size": "5b", "weights": REAL_WEIGHTS, "device": "cuda"})
    vectors = backbone.embed_batch([noise(3.0)])
    assert vectors["layer_36"].shape == (1, 4800) and np.all(np.isfinite(vectors["layer_36"]))
    assert backbone.precision.startswith("float16 residual stream")  # jukemirlib's fp16, the default
    assert backbone.model.prior.transformer._attn_mods[0].mlp.c_fc.w.dtype == torch.float16


def test_recipes_default_to_the_first_papers_jukemirlib_call_or_to_jukemirs_own_extraction():
    """``jukemirlib.extract(fpath, fp16=True, layers=[36], duration=24)`` (the first paper's jb.py), and
    JukeMIR's representations/jukebox/main.py (``fp16=False``, the whole file loaded)."""
    first_paper, jukemir = JukeboxOptions(size="5b"), JukeboxOptions(size="5b", recipe="jukemir")
    assert (first_paper.recipe, first_paper.precision, first_paper.max_duration_s) == ("jukemirlib", "fp16", 24.0)
    assert (jukemir.precision, jukemir.max_duration_s) == ("float32", None)
    before = JukeboxOptions(size="5b", precision="bf16", max_duration_s=30.0)  # this backbone's earlier behaviour
    assert (before.precision, before.max_duration_s) == ("bf16", 30.0)
    with pytest.raises(ParameterError, match="option recipe must be one of"):
        JukeboxOptions(size="5b", recipe="openai")
    with pytest.raises(ParameterError, match="option precision must be one of"):
        tiny(precision="half")


def test_each_recipe_divides_by_the_peak_of_the_audio_it_loads():
    """jukemirlib's ``load_audio(duration=24)`` normalises the 24 s it loaded and keeps all of them (``[:25 s]``);
    JukeMIR's ``load_audio_from_file`` normalises by the whole file's peak; ``max_duration_s: 30`` by the first 30 s."""
    track = np.full(30 * 44100, 0.25, dtype=np.float32)
    track[10 * 44100], track[26 * 44100] = 0.5, 0.9

    def first_window(**options) -> np.ndarray:
        backbone = tiny(clip_seconds=25.0, **options)
        return backbone.windows(backbone.clip_policy.apply(track, 44100))[0]

    default = first_window()
    assert default.shape == (24 * 44100,) and np.isclose(default[0], 0.5)  # 0.25 / 0.5, the first 24 s' peak
    whole_file = first_window(recipe="jukemir")
    assert whole_file.shape == (25 * 44100,) and np.isclose(whole_file[0], 0.25 / 0.9)
    assert np.isclose(first_window(precision="bf16", max_duration_s=30.0)[0], 0.25 / 0.9)


def test_the_jukemir_recipe_refuses_a_track_shorter_than_the_context_and_jukemirlib_embeds_it():
    context = 256 * 128  # the tiny config's n_ctx codes of 128 samples
    short, enough = noise((context - 1) / 44100), noise(context / 44100)
    with pytest.raises(AudiorecError, match=r"needs 0\.74 s of audio \(256 codes\)"):
        tiny(recipe="jukemir").windows(short)
    assert len(tiny(recipe="jukemir").windows(enough)) == 1
    assert tiny().windows(short)[0].shape == (context - 1,)


def test_fp16_runs_the_prior_in_float16_as_jukemirlib_and_the_encoder_in_ieee_float32():
    """jukemirlib casts the prior's input to float16 (``x = x.half()``); Jukebox's Conv1D then runs
    ``addmm(b.type_as(x), x, w.type_as(x))`` on the float16 weights the release stores, and its LayerNorm
    normalises ``x.float()`` and returns ``type_as(x)``; the VQ-VAE encodes in float32."""
    reference, backbone = tiny(precision="float32"), tiny(precision="fp16")
    state = perturbed_state(reference)
    reference.model.load_state_dict(state)
    backbone.model.load_state_dict(state)
    backbone.reduced_precision_on_cpu = True  # a CPU would compute in float32 otherwise
    seen: dict[str, list] = {"block": [], "ln": [], "encoder": []}
    model = backbone.model
    block = model.prior.transformer._attn_mods[1]
    hooks = [
        block.register_forward_hook(lambda m, a, out: seen["block"].append(out.dtype)),
        block.ln_0.register_forward_hook(lambda m, a, out: seen["ln"].append(out.dtype)),
        model.encoders[model.level].register_forward_hook(
            lambda m, a, out: seen["encoder"].append((out.dtype, torch.backends.cudnn.allow_tf32))
        ),
    ]
    clip = noise(0.8, seed=3)
    got, want = backbone.embed_batch([clip]), reference.embed_batch([clip])
    for hook in hooks:
        hook.remove()
    assert seen == {"block": [torch.float16], "ln": [torch.float16], "encoder": [(torch.float32, False)]}
    assert model.prior.transformer._attn_mods[0].mlp.c_fc.w.dtype == torch.float16
    assert model.prior.transformer._attn_mods[0].mlp.c_fc.b.dtype == torch.float32  # the release halves w only
    with torch.inference_mode():  # the prior's input: summed in float32, then cast
        first = next(reference.model.layers(reference.model.encode(torch.from_numpy(clip / np.abs(clip).max()))[None]))
    np.testing.assert_allclose(got["layer_0"][0], first[0].half().float().mean(0).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got["layer_0"], want["layer_0"], rtol=1e-5, atol=1e-6)
    drift = np.linalg.norm(got["layer_3"] - want["layer_3"]) / np.linalg.norm(want["layer_3"])
    assert 1e-5 < drift < 1e-2
    projection, norm = model.prior.transformer._attn_mods[0].mlp.c_fc, model.prior.transformer._attn_mods[0].ln_0
    x = torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(4)).half()
    with torch.inference_mode():
        torch.testing.assert_close(
            projection(x), torch.addmm(projection.b.half(), x.view(10, 32), projection.w).view(2, 5, 32), rtol=0, atol=0
        )
        expected_norm = torch.nn.functional.layer_norm(x.float(), (32,), norm.weight, norm.bias, 1e-5).half()
        torch.testing.assert_close(norm(x), expected_norm, rtol=0, atol=0)


def test_fp16_keeps_the_5b_priors_projections_in_float16_on_the_device():
    """36 blocks of 69.12 M projection weights in 2 bytes, biases and layer norms in 4: 4.98 GB, not 9.96."""
    spec = shipped_config("jukebox", "5b")
    with torch.device("meta"):
        model = backbone_class("jukebox").build_model(spec)

    def nbytes() -> int:
        return sum(parameter.numel() * parameter.element_size() for parameter in model.prior.transformer.parameters())

    assert nbytes() == 9_958_636_800
    store_projections_in(model.prior, torch.float16)
    assert nbytes() == 36 * (69_120_000 * 2 + 18_000 * 4 + 4 * 4800 * 4) == 4_981_996_800
