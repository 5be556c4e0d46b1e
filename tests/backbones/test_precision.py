"""The ``precision`` option: what each value computes, which flags it sets and restores, what it records and costs."""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from audiorec.backbones import BACKBONES
from audiorec.backbones.musicnn import MusiCNNBackbone
from audiorec.backbones.options import PRECISIONS, MusiCNNConfig
from audiorec.backbones.precision import effective_precision, measure_precision_drift, precision_scope, tf32_flags
from audiorec.backbones.ssl import SSLBackbone
from audiorec.backbones.torch_base import TorchBackbone
from audiorec.common.config import canonical_json
from audiorec.errors import ParameterError
from audiorec.extraction.embed import ShardResult, write_shard
from audiorec.ssl.config import SSLConfig
from audiorec.storage.tables import read_metadata

REPO = Path(__file__).resolve().parents[2]
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


class FrameNet(nn.Module):
    """Frames of 256 samples → 64 → GELU → 64: activations of order one, as a real model's."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.first = nn.Linear(256, 64)
        self.second = nn.Linear(64, 64)
        with torch.no_grad():
            for layer in (self.first, self.second):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) / layer.in_features**0.5)
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))


class FrameBackbone(TorchBackbone):
    kind = "frames-test"

    def __init__(self, precision: str | None = None, device: str = "cpu") -> None:
        super().__init__(device=device, precision=precision)
        self.model = FrameNet()
        self.sample_rate = 2560
        self.clip_seconds = 1.0
        self.layer_dims = {"first": 64, "second": 64}
        self.prepare()

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> FrameBackbone:
        return cls(**options)

    def forward_layers(self, clips: torch.Tensor) -> list[torch.Tensor]:
        frames = clips.reshape(clips.shape[0], -1, 256)
        first = nn.functional.gelu(self.model.first(frames))
        return [first, self.model.second(first)]


class BF16Plugin(FrameBackbone):
    """A subclass written before the option, declaring its reduced precision the old way."""

    kind = "bf16-plugin-test"
    autocast_dtype: ClassVar[torch.dtype | None] = torch.bfloat16


def clips(count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(2560 * 2).astype(np.float32) for _ in range(count)]


def on_cpu_too(precision: str) -> FrameBackbone:
    backbone = FrameBackbone(precision)
    backbone.reduced_precision_on_cpu = True
    return backbone


@pytest.fixture
def tf32_on():
    """TF32 switched on before the test, as another library might leave it; the previous state after it."""
    with tf32_flags(True):
        yield


def flags() -> tuple[bool, bool, str]:
    return torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()


@pytest.mark.parametrize(
    ("requested", "device", "allow_cpu", "used"),
    [
        ("float32", CUDA, False, "float32"),
        ("tf32", CUDA, False, "tf32"),
        ("bf16", CUDA, False, "bf16"),
        ("fp16", CUDA, False, "fp16"),
        ("tf32", CPU, False, "float32"),  # a CPU has no TF32
        ("bf16", CPU, False, "float32"),
        ("fp16", CPU, False, "float32"),
        ("bf16", CPU, True, "bf16"),
        ("tf32", CPU, True, "float32"),
        ("fp16", torch.device("meta"), True, "float32"),
    ],
)
def test_a_gpu_computes_what_was_asked_and_a_cpu_float32(requested, device, allow_cpu, used):
    assert effective_precision(requested, device, allow_cpu=allow_cpu) == used


def test_an_unknown_precision_is_refused_naming_the_option_and_the_values():
    with pytest.raises(ParameterError, match=r"option precision must be one of \['float32', 'tf32', 'bf16', 'fp16'\]"):
        FrameBackbone("half")
    for kind in ("musicnn", "mert", "music2vec", "musicfm", "muq", "encodecmae", "jukebox"):
        options = {} if kind == "musicnn" else {"size": "tiny"}
        with pytest.raises(ParameterError, match="precision must be one of"):
            BACKBONES.check_options(kind, options | {"precision": "half"}, f"backbones.{kind}.options")


def test_float32_switches_tf32_off_inside_the_job_and_restores_it(tf32_on):
    backbone = FrameBackbone("float32")
    inside: list[tuple[bool, bool, str]] = []
    handle = backbone.model.first.register_forward_hook(lambda _m, _a, _out: inside.append(flags()))
    backbone.embed_batch(clips(2))
    handle.remove()
    assert inside == [(False, False, "highest")]
    assert flags() == (True, True, "high")


def test_the_self_supervised_encoders_run_in_ieee_float32_too(tf32_on):
    config = SSLConfig(positive="adjacent", channels=(4, 4, 4, 4, 4), embedding_dim=4, device="cpu")
    backbone = SSLBackbone(config, load=False)
    inside: list[tuple[bool, bool, str]] = []
    convolution = next(module for module in backbone.model.modules() if isinstance(module, (nn.Conv1d, nn.Conv2d)))
    handle = convolution.register_forward_pre_hook(lambda _m, _a: inside.append(flags()))
    backbone.embed_batch([np.random.default_rng(1).standard_normal(4 * 16000).astype(np.float32)])  # 4 s at 16 kHz
    handle.remove()
    assert inside and set(inside) == {(False, False, "highest")}
    assert flags() == (True, True, "high")


def test_the_flags_come_back_when_a_forward_pass_fails(tf32_on):
    backbone = FrameBackbone("float32")

    def fail(*_args: Any) -> None:
        raise RuntimeError("out of memory")

    backbone.model.first.register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        backbone.embed_batch(clips(1))
    assert flags() == (True, True, "high")


def test_tf32_switches_it_on_and_the_half_precisions_autocast():
    with tf32_flags(False):
        with precision_scope("tf32", CPU):
            assert flags() == (True, True, "high")
        assert flags() == (False, False, "highest")
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with precision_scope(precision, CPU):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == dtype
            assert flags()[:2] == (False, False)  # the float32 parts stay IEEE
        with precision_scope(precision, CPU, autocast=False):  # a model's own recipe
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_drift_from_float32_grows_as_mantissa_bits_shrink_and_float32_is_bit_identical():
    """bf16 keeps 8 mantissa bits, fp16 11: on activations of order one bf16 drifts about 8 times further. tf32 on
    a CPU computes in float32, so it does not drift at all."""
    drift = measure_precision_drift(on_cpu_too, clips(), PRECISIONS)
    assert list(drift) == ["float32", "tf32", "bf16", "fp16"]
    assert drift["float32"]["relative_error_vs_float32"] == 0.0
    assert drift["float32"]["cosine_vs_float32"] == pytest.approx(1.0, abs=1e-12)
    assert drift["tf32"]["relative_error_vs_float32"] == 0.0
    bf16, fp16 = drift["bf16"]["relative_error_vs_float32"], drift["fp16"]["relative_error_vs_float32"]
    assert 1e-5 < fp16 < 2e-3 and 4 * fp16 < bf16 < 2e-2
    assert drift["bf16"]["cosine_vs_float32"] < drift["fp16"]["cosine_vs_float32"] < 1.0
    assert drift["bf16"]["cosine_vs_float32"] > 0.9999
    assert all(row["seconds_per_clip"] > 0 for row in drift.values())
    first, second = FrameBackbone("float32").embed_batch(clips()), FrameBackbone("float32").embed_batch(clips())
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_the_metadata_records_the_precision_used_and_the_one_requested(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="audiorec.backbones.precision")
    backbone = FrameBackbone("bf16")
    assert [record.getMessage() for record in caplog.records] == [
        "frames-test: precision bf16 was asked for, but this device computes in float32"
    ]
    vectors = backbone.embed_batch(clips(1))
    result = ShardResult(["a"], {name: [matrix[0]] for name, matrix in vectors.items()}, [False])
    write_shard(result, backbone, tmp_path / "vectors.parquet", tmp_path / "failures.parquet")
    metadata = read_metadata(tmp_path / "vectors.parquet")
    assert (metadata["precision"], metadata["precision_requested"]) == ("float32", "bf16")
    backbone.device = CUDA  # what a GPU would record (the description only reads the device type)
    assert backbone.precision == "bfloat16 autocast"
    caplog.clear()
    FrameBackbone("float32")
    assert not caplog.records


def test_every_backbone_defaults_to_float32_except_jukebox_and_old_style_plugins_keep_theirs():
    for kind in ("musicnn", "mert", "music2vec", "musicfm", "muq", "encodecmae"):
        defaults = {field.name: field.default for field in dataclasses.fields(BACKBONES.options_class(kind))}
        assert defaults["precision"] == "float32", kind
    assert BACKBONES.check_options("jukebox", {"size": "5b"}, "jukebox").precision == "fp16"
    assert MusiCNNBackbone.declared_precision() == SSLBackbone.declared_precision() == "float32"
    assert FrameBackbone().requested_precision == "float32"
    plugin = BF16Plugin()
    assert plugin.requested_precision == "bf16" and plugin.precision == "float32"
    plugin.device = CUDA
    assert plugin.precision == "bfloat16 autocast"
    musicnn = MusiCNNBackbone(MusiCNNConfig(device="cpu", precision="tf32"), load=False)
    assert musicnn.requested_precision == "tf32" and musicnn.precision == "float32"


def test_changing_one_backbones_precision_changes_only_that_backbones_extraction_params():
    """What embed_shard's params hold for each backbone (its ``spec``): Snakemake reruns a job whose params
    changed, so only the edited backbone extracts again."""
    from snakemake.utils import validate

    from audiorec.plan import Plan

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))
    config["backbones"] |= {
        "mert_a": {"kind": "mert", "options": {"size": "tiny"}},
        "mert_b": {"kind": "mert", "options": {"size": "tiny"}},
        "jukebox_tiny": {"kind": "jukebox", "options": {"size": "tiny"}},
    }
    edited = copy.deepcopy(config)
    edited["backbones"]["mert_a"]["options"]["precision"] = "bf16"
    edited["backbones"]["jukebox_tiny"]["options"] |= {"precision": "bf16", "max_duration_s": 30.0}
    before, after = Plan.from_config(config), Plan.from_config(edited)
    changed = {
        name
        for name in before.backbones
        if canonical_json(before.backbones[name].spec) != canonical_json(after.backbones[name].spec)
    }
    assert changed == {"mert_a", "jukebox_tiny"}
    assert after.backbones["mert_a"].checked.precision == "bf16"
    assert before.backbones["jukebox_tiny"].checked.max_duration_s == 24.0


def test_the_resolved_precision_is_in_the_extraction_params_when_the_config_leaves_it_out():
    """A new default (bf16 → float32, Jukebox's jukemirlib recipe) must rerun vectors made the old way."""
    from audiorec.plan.models import BackbonePlan

    mert = BackbonePlan.from_entry("mert", {"kind": "mert", "options": {"size": "tiny"}})
    assert mert.spec["numerics"] == {"precision": "float32"}
    jukebox = BackbonePlan.from_entry("jukebox", {"kind": "jukebox", "options": {"size": "tiny"}})
    assert jukebox.spec["numerics"] == {"precision": "fp16", "recipe": "jukemirlib"}
    jukemir = BackbonePlan.from_entry("jukebox", {"kind": "jukebox", "options": {"size": "tiny", "recipe": "jukemir"}})
    assert jukemir.spec["numerics"] == {"precision": "float32", "recipe": "jukemir"}
    musicnn = BackbonePlan.from_entry("musicnn", {"kind": "musicnn"})
    assert musicnn.spec["numerics"] == {"precision": "float32", "short_audio": "skip"}
    assert "numerics" not in BackbonePlan.from_entry("mfcc", {"kind": "mfcc"}).spec
