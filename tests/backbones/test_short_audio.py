"""The ``short_audio`` policy of the windowed backbones (musicnn, ssl, mule): a track shorter than one window is skipped
into the failures table with a fixed reason, or zero-padded to one window and counted in the metadata; backbones
that read any length refuse the option."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_musicnn import TINY

from audiorec.backbones import build_backbone
from audiorec.backbones.mule import MuleBackbone, standardised_slices
from audiorec.backbones.mule import log_mel as mule_log_mel
from audiorec.backbones.musicnn import HOP_LENGTH, MusiCNNBackbone
from audiorec.backbones.options import (
    JukeboxOptions,
    MuleOptions,
    MusiCNNConfig,
    PretrainedOptions,
    WaveformTransformerOptions,
)
from audiorec.backbones.shipped import shipped_config
from audiorec.backbones.ssl import SSLBackbone, mean_and_std
from audiorec.errors import AudiorecError, ParameterError
from audiorec.extraction.embed import extract, gather_shards, write_shard
from audiorec.ssl.config import SSLConfig
from audiorec.ssl.features import SEGMENT_SAMPLES, log_mel
from audiorec.storage.tables import read_embeddings, read_metadata, read_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000
"""The windowed backbones read 16 kHz audio; the test files are written at that rate, so nothing is resampled."""
TINY_MULE_KERAS = Path(__file__).resolve().parents[1] / "fixtures" / "mule" / "tiny.keras"
MULE_SHORTEST = 299 * 160
"""Samples of the shortest track whose log-mel holds one 300-frame MULE slice (1 + n // 160 = 300 frames)."""


def musicnn(short_audio: str) -> MusiCNNBackbone:
    torch.manual_seed(0)
    return MusiCNNBackbone(MusiCNNConfig(device="cpu", short_audio=short_audio), TINY, load=False)


def ssl(short_audio: str) -> SSLBackbone:
    torch.manual_seed(0)
    options = {"channels": [2, 4, 4, 8, 8], "embedding_dim": 8, "positive": "self", "device": "cpu"}
    options["short_audio"] = short_audio
    return SSLBackbone(SSLConfig.from_mapping(options), load=False)


def mule(short_audio: str, pooling: str = "mean") -> MuleBackbone:
    weights = str(TINY_MULE_KERAS)
    return MuleBackbone(
        MuleOptions(size="tiny", weights=weights, pooling=pooling, short_audio=short_audio, device="cpu")
    )


BACKBONES = {
    "musicnn": (musicnn, 1.0, "shorter than one patch (0.4 s)"),
    "ssl": (ssl, 6.5, "shorter than one window (3 s)"),
    "mule": (mule, 4.5, "shorter than one slice (3 s)"),
}
"""Name → (factory, seconds of a long track, the failure reason of the tiny configuration)."""


def signals(long_s: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        name: rng.normal(0, 0.1, round(seconds * RATE)).astype(np.float32)
        for name, seconds in (("long_a", long_s), ("short", 0.3), ("long_b", long_s + 0.4))
    }


def write_files(folder: Path, tracks: dict[str, np.ndarray]) -> list[Path]:
    paths = []
    for name, signal in tracks.items():
        paths.append(folder / f"{name}.wav")
        sf.write(paths[-1], signal, RATE, subtype="FLOAT")
    return paths


def test_the_full_size_reasons_name_the_window():
    assert MusiCNNBackbone(MusiCNNConfig(device="cpu"), load=False).short_audio_reason == "shorter than one patch (3 s)"
    assert ssl("skip").short_audio_reason == "shorter than one window (3 s)"
    tiny, full = shipped_config("mule", "tiny"), shipped_config("mule", "f0")
    assert (tiny["slices"], tiny["mel"], tiny["sample_rate"]) == (full["slices"], full["mel"], full["sample_rate"])
    assert mule("skip").short_audio_reason == "shorter than one slice (3 s)"  # so the published size's too


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_skip_puts_a_short_track_in_the_failures_table_and_leaves_the_others_alone(kind, tmp_path):
    factory, long_s, reason = BACKBONES[kind]
    tracks = signals(long_s)
    paths = write_files(tmp_path, tracks)
    backbone = factory("skip")
    result = extract(list(tracks), paths, backbone, batch_size=3, progress=False)
    assert result.track_ids == ["long_a", "long_b"]
    assert result.failures == [{"track_id": "short", "audio_path": str(paths[1]), "error": reason}]
    alone = backbone.embed_batch([tracks["long_a"], tracks["long_b"]])
    padded = extract(list(tracks), paths, factory("pad"), batch_size=3, progress=False)
    for name in backbone.layers:
        np.testing.assert_allclose(np.stack(result.layers[name]), alone[name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            np.stack(padded.layers[name])[[0, 2]], alone[name], rtol=1e-5, atol=1e-6, err_msg=name
        )
    with pytest.raises(AudiorecError, match="^" + re.escape(reason) + ": "):
        backbone.embed_batch([tracks["short"]])  # called directly (a plugin contract check), it refuses too


def test_pad_gives_musicnn_the_model_on_one_zero_padded_patch():
    backbone = musicnn("pad")
    short = signals(1.0)["short"]
    window = np.concatenate([short, np.zeros(24 * HOP_LENGTH - short.size, np.float32)])
    patch = torch.from_numpy(backbone.log_mel(window)[:24][None])
    with torch.inference_mode():
        out = backbone.model(patch)
    got = backbone.embed_batch([short])
    np.testing.assert_allclose(got["penultimate"][0], out.penultimate[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["mean_pool"][0], out.mean_pool[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["max_pool"][0], out.max_pool[0].numpy(), rtol=1e-5, atol=1e-6)
    assert "zero-padded" in backbone.pooling and "zero-padded" not in musicnn("skip").pooling


def test_pad_gives_ssl_the_encoder_on_one_zero_padded_segment():
    backbone = ssl("pad")
    short = signals(1.0)["short"]
    window = np.concatenate([short, np.zeros(SEGMENT_SAMPLES - short.size, np.float32)])
    with torch.inference_mode():
        (segment,) = backbone.model.segment_levels(torch.from_numpy(log_mel(window[None])))
    expected = mean_and_std(segment).numpy()  # one segment: its vector, then a standard deviation of zeros
    np.testing.assert_allclose(backbone.embed_batch([short])["segment"][0], expected, rtol=1e-5, atol=1e-6)
    assert not expected[8:].any()


def test_pad_gives_mule_the_network_on_one_slice_of_the_track_followed_by_silence():
    backbone = mule("pad")
    short = signals(1.0)["short"]
    window = np.concatenate([short, np.zeros(MULE_SHORTEST - short.size, np.float32)])
    log_mels = mule_log_mel(window, RATE, backbone.spec["mel"])
    assert log_mels.shape == (96, 300)  # exactly one slice, starting at the track's first frame
    with torch.inference_mode():
        slow, fast, embedding = backbone.model(torch.from_numpy(standardised_slices(log_mels, [0], 300)))
    got = backbone.embed_batch([short])
    np.testing.assert_allclose(got["embedding"][0], embedding[0].numpy(), rtol=1e-5, atol=1e-6)
    for name, stage in zip(backbone.layers[:-1], (*slow, *fast), strict=True):
        np.testing.assert_allclose(got[name][0], stage[0].mean(dim=(1, 2)).numpy(), rtol=1e-5, atol=1e-6)
    summed = mule("pad", pooling="sum").embed_batch([short])  # one slice: the sum is that slice's vector
    np.testing.assert_allclose(summed["embedding"], got["embedding"], rtol=1e-6)
    assert "zero-padded" in backbone.pooling and "zero-padded" not in mule("skip").pooling


def test_mule_pads_only_below_one_slice_and_to_the_shortest_track_that_fills_it():
    padded, skipped = mule("pad"), mule("skip")
    track = signals(4.5)["long_a"][:MULE_SHORTEST]
    assert not padded.shorter_than_window(track) and padded.shorter_than_window(track[:-1])
    assert skipped.short_audio_refusal(track) is None
    assert skipped.short_audio_refusal(track[:-1]) == "shorter than one slice (3 s)"
    cut = track.copy()
    cut[-1] = 0.0  # what padding the track one sample short gives
    np.testing.assert_array_equal(
        padded.embed_batch([track[:-1]])["embedding"], skipped.embed_batch([cut])["embedding"]
    )


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_the_embeddings_metadata_records_the_policy_and_the_padded_tracks(kind, tmp_path):
    factory, long_s, reason = BACKBONES[kind]
    tracks = signals(long_s)
    paths = write_files(tmp_path, tracks)
    for policy, embedded, padded in (("skip", 2, 0), ("pad", 3, 1)):
        backbone = factory(policy)
        shards = []
        for index, rows in enumerate((slice(0, 2), slice(2, 3))):  # the short track in the first of two shards
            files = (tmp_path / f"{policy}{index}.parquet", tmp_path / f"{policy}{index}.failures.parquet")
            result = extract(list(tracks)[rows], paths[rows], backbone, progress=False)
            write_shard(result, backbone, *files)
            shards.append(files)
        out = tmp_path / f"{policy}.parquet", tmp_path / f"{policy}.failures.parquet"
        assert gather_shards([s[0] for s in shards], [s[1] for s in shards], "last", *out) == embedded
        metadata = read_metadata(out[0])
        assert metadata["short_audio"] == policy and metadata["short_audio_padded"] == padded
        assert len(read_embeddings(out[0])[0]) == embedded
        assert read_table(out[1], "failures").get_column("error").to_list() == ([reason] if policy == "skip" else [])


def test_policy_values_are_checked():
    with pytest.raises(ParameterError, match=r"backbone musicnn option short_audio must be one of \['skip', 'pad'\]"):
        MusiCNNConfig(short_audio="trim")
    with pytest.raises(ParameterError, match=r"option short_audio must be one of \['skip', 'pad'\], got 'crop'"):
        SSLConfig.from_mapping({"positive": "self", "short_audio": "crop"})
    with pytest.raises(ParameterError, match=r"backbone mule option short_audio must be one of \['skip', 'pad'\]"):
        MuleOptions(size="tiny", short_audio="loop")
    assert MusiCNNConfig().short_audio == "skip" and SSLConfig(positive="self").short_audio == "skip"
    assert MuleOptions(size="tiny").short_audio == "skip"


@pytest.mark.parametrize("policy", ["skip", "pad"])
def test_backbones_that_read_any_length_refuse_the_option(policy):
    refused = r"short_audio applies only to the windowed backbones \(musicnn, ssl, mule\)"
    with pytest.raises(ParameterError, match=refused):
        build_backbone("mfcc", {"short_audio": policy})
    for options_class in (PretrainedOptions, WaveformTransformerOptions, JukeboxOptions):
        with pytest.raises(ParameterError, match=refused):
            options_class(size="tiny", short_audio=policy)
    mert = build_backbone("mert", {"size": "tiny", "device": "cpu"})
    assert mert.short_audio is None and mert.short_audio_refusal(np.zeros(10, np.float32)) is None
    assert mert.embed_batch([signals(1.0)["short"]])["layer_0"].shape == (1, 32)  # 0.3 s, read as it is
