"""Files whose headers declare unreadable sample rates or channel layouts never stop a shard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from audio_fixtures import write_tone, write_wav_header

from audiorec.audio.decode import load_audio
from audiorec.backbones.mfcc import MFCCBackbone
from audiorec.backbones.musicnn import MusiCNNBackbone
from audiorec.backbones.musicnn_model import MusiCNNArchitecture
from audiorec.backbones.options import MFCCConfig, MusiCNNConfig
from audiorec.errors import AudioError
from audiorec.extraction.embed import extract, write_shard

TINY = MusiCNNArchitecture(
    patch_frames=16, timbral_filters=3, temporal_filters=2, temporal_lengths=(8, 4), midend_filters=4, backend_units=5
)
BAD_HEADERS = {  # track id → (channels, sample rate, expected error)
    "rate_zero": (1, 0, "cannot decode"),
    "no_channels": (0, 22050, "cannot decode"),
    "4096_channels": (4096, 22050, "cannot decode"),
    "rate_1hz": (1, 1, "implausible sample rate 1 Hz"),
    "rate_2ghz": (1, 2**31 - 1, "implausible sample rate 2147483647 Hz"),
}


def make_collection(folder: Path) -> tuple[list[str], list[Path]]:
    """Good tracks (mono, stereo 44.1 kHz, 6-channel 8 kHz, silent) among corrupt, empty and absurd-header files."""
    folder.mkdir()
    paths = {
        "good_mono": write_tone(folder / "good_mono.flac", seconds=2.0),
        "good_stereo": write_tone(folder / "good_stereo.wav", seconds=1.5, sample_rate=44100, channels=2),
    }
    paths["corrupt"] = folder / "corrupt.wav"
    paths["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    paths["empty"] = folder / "empty.flac"
    paths["empty"].write_bytes(b"")
    for name, (channels, rate, _) in BAD_HEADERS.items():
        paths[name] = write_wav_header(folder / f"{name}.wav", channels, rate)
    six = np.random.default_rng(1).normal(0, 0.1, (16000, 6)).astype(np.float32)
    sf.write(folder / "six_8k.wav", six, 8000)
    paths["six_channel_8k"] = folder / "six_8k.wav"
    sf.write(folder / "silent.wav", np.zeros(30000, np.float32), 22050)
    paths["silent"] = folder / "silent.wav"
    return list(paths), list(paths.values())


GOOD = ["good_mono", "good_stereo", "six_channel_8k", "silent"]


@pytest.mark.parametrize("kind", ["mfcc", "musicnn"])
def test_a_shard_with_unreadable_rates_and_layouts_keeps_every_good_track(tmp_path, kind):
    track_ids, paths = make_collection(tmp_path / "audio")
    if kind == "mfcc":
        backbone = MFCCBackbone(MFCCConfig())
    else:
        backbone = MusiCNNBackbone(MusiCNNConfig(device="cpu"), TINY, load=False)
    result = extract(track_ids, paths, backbone, batch_size=4, num_workers=1, progress=False)
    write_shard(result, backbone, tmp_path / "shard.vectors.parquet", tmp_path / "shard.failures.parquet")

    shard = pl.read_parquet(tmp_path / "shard.vectors.parquet")
    assert shard["track_id"].to_list() == GOOD
    assert dict(zip(shard["track_id"], shard["silent"], strict=True)) == {
        "good_mono": False,
        "good_stereo": False,
        "six_channel_8k": False,
        "silent": True,
    }
    for name, dim in backbone.layer_dims.items():
        matrix = np.array(shard[name].to_list(), dtype=np.float32)
        assert matrix.shape == (len(GOOD), dim) and np.all(np.isfinite(matrix)), name

    failures = pl.read_parquet(tmp_path / "shard.failures.parquet")
    errors = dict(zip(failures["track_id"], failures["error"], strict=True))
    assert set(errors) == {"corrupt", "empty", *BAD_HEADERS}
    for name, (_, _, message) in BAD_HEADERS.items():
        assert message in errors[name], (name, errors[name])
    assert "empty" in errors["empty"] and "cannot decode" in errors["corrupt"]
    assert dict(zip(failures["track_id"], failures["audio_path"], strict=True))["rate_1hz"].endswith("rate_1hz.wav")


def test_downmix_is_the_channel_mean(tmp_path):
    data = np.random.default_rng(2).normal(0, 0.1, (8000, 6)).astype(np.float32)
    sf.write(tmp_path / "six.wav", data, 8000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "six.wav", 8000), data.mean(axis=1), rtol=1e-5, atol=1e-7)


def test_implausible_rate_is_an_audio_error_naming_the_file(tmp_path):
    path = write_wav_header(tmp_path / "odd.wav", 2, 500)
    with pytest.raises(AudioError, match=r"odd\.wav: implausible sample rate 500 Hz"):
        load_audio(path, 16000)
