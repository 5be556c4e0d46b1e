"""MFCC statistics, the extraction driver's failure handling, layer selection and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import write_tone

from audiorec.audio.decode import load_audio
from audiorec.backbones import build_backbone, select_layer
from audiorec.backbones.mfcc import MFCCBackbone, mfcc_statistics
from audiorec.backbones.options import MFCCConfig
from audiorec.cli import main as cli_main
from audiorec.errors import AudioError, ParameterError
from audiorec.extraction.embed import extract, gather_shards, write_shard
from audiorec.storage.tables import read_embeddings, read_metadata, read_table


def test_mfcc_statistics_layout_matches_mean_and_upper_covariance(rng):
    mfcc = rng.normal(size=(13, 50))
    vector = mfcc_statistics(mfcc)
    assert vector.shape == (104,)
    np.testing.assert_allclose(vector[:13], mfcc.mean(axis=1), rtol=1e-5)
    covariance = np.cov(mfcc)
    expected_upper = [covariance[i, j] for i in range(13) for j in range(i, 13)]
    np.testing.assert_allclose(vector[13:], expected_upper, rtol=1e-5)


def test_mfcc_backbone_declares_one_104d_layer_and_embeds(tmp_path):
    backbone = build_backbone("mfcc", {"sample_rate": 16000})
    assert backbone.layer_dims == {"mfcc_stats": 104}
    signal = load_audio(write_tone(tmp_path / "a.wav", sample_rate=16000), 16000)
    out = backbone.embed_batch([signal, signal[: len(signal) // 2]])
    assert out["mfcc_stats"].shape == (2, 104)
    assert np.all(np.isfinite(out["mfcc_stats"]))


def test_mfcc_options_are_validated():
    with pytest.raises(ParameterError, match="unknown option"):
        build_backbone("mfcc", {"n_mfccs": 20})
    with pytest.raises(ParameterError, match="n_mfcc"):
        MFCCConfig(n_mfcc=200, n_mels=128)
    with pytest.raises(ParameterError, match="unknown backbone kind"):
        build_backbone("vggish")


def test_load_audio_downmixes_and_resamples(tmp_path):
    path = write_tone(tmp_path / "stereo.flac", seconds=1.0, sample_rate=44100, channels=2)
    signal = load_audio(path, 22050)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert abs(signal.size - 22050) <= 1


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"this is not audio at all" * 40, "cannot decode")],
    ids=["empty", "garbage"],
)
def test_load_audio_names_the_file_on_failure(tmp_path, content, message):
    path = tmp_path / "bad.flac"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path, 22050)
    assert str(path) in str(info.value)


def make_bad_collection(folder: Path) -> tuple[list[str], list[Path]]:
    """Good tones plus a corrupt file, an empty file, a missing file, a silent file and an 8 kHz 6-channel file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f"good{i}": write_tone(folder / f"good{i}.flac", freq=220.0 * (i + 1)) for i in range(3)}
    (folder / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    paths["corrupt"] = folder / "corrupt.flac"
    (folder / "empty.wav").write_bytes(b"")
    paths["empty"] = folder / "empty.wav"
    paths["missing"] = folder / "missing.wav"
    sf.write(folder / "silent.wav", np.zeros(22050, np.float32), 22050)
    paths["silent"] = folder / "silent.wav"
    six = np.random.default_rng(0).normal(0, 0.1, (8000, 6)).astype(np.float32)
    sf.write(folder / "six.wav", six, 8000)
    paths["six_channel_8k"] = folder / "six.wav"
    return list(paths), list(paths.values())


def test_extract_records_failures_and_keeps_every_good_track(tmp_path):
    track_ids, paths = make_bad_collection(tmp_path / "audio")
    backbone = MFCCBackbone(MFCCConfig())
    result = extract(track_ids, paths, backbone, batch_size=3, progress=False)
    assert result.track_ids == ["good0", "good1", "good2", "silent", "six_channel_8k"]
    failures = {row["track_id"]: row["error"] for row in result.failures}
    assert set(failures) == {"corrupt", "empty", "missing"}
    assert "empty" in failures["empty"] and "does not exist" in failures["missing"]
    assert result.silent == [False, False, False, True, False]
    vectors = result.layer_matrices(backbone)["mfcc_stats"]
    assert vectors.shape == (5, 104) and np.all(np.isfinite(vectors))


def test_extract_with_worker_processes_matches_in_process(tmp_path):
    track_ids, paths = make_bad_collection(tmp_path / "audio")
    backbone = MFCCBackbone(MFCCConfig())
    serial = extract(track_ids, paths, backbone, progress=False)
    parallel = extract(track_ids, paths, backbone, num_workers=2, batch_size=2, progress=False)
    assert serial.track_ids == parallel.track_ids
    np.testing.assert_array_equal(
        serial.layer_matrices(backbone)["mfcc_stats"], parallel.layer_matrices(backbone)["mfcc_stats"]
    )


class ExplodingBackbone(MFCCBackbone):
    """Fails on very short signals and returns NaN for one specific length: the driver must isolate both."""

    def embed_batch(self, waveforms):
        if any(len(w) < 5000 for w in waveforms):
            raise RuntimeError("input too short for the receptive field")
        out = super().embed_batch(waveforms)
        for i, w in enumerate(waveforms):
            if len(w) == 11025:
                out["mfcc_stats"][i] = np.nan
        return out


def test_backbone_errors_and_nan_outputs_become_failures(tmp_path):
    paths = [
        write_tone(tmp_path / "ok.wav", seconds=1.0),
        write_tone(tmp_path / "short.wav", seconds=0.1),
        write_tone(tmp_path / "nan.wav", seconds=0.5),
    ]
    backbone = ExplodingBackbone(MFCCConfig())
    result = extract(["ok", "short", "nan"], paths, backbone, batch_size=3, progress=False)
    assert result.track_ids == ["ok"]
    errors = {row["track_id"]: row["error"] for row in result.failures}
    assert "input too short" in errors["short"]
    assert "NaN" in errors["nan"]


def test_shards_gather_into_one_table_and_layer_selection(tmp_path):
    track_ids, paths = make_bad_collection(tmp_path / "audio")
    backbone = MFCCBackbone(MFCCConfig())
    shard_files = []
    for shard, (start, stop) in enumerate([(0, 4), (4, 8)]):
        result = extract(track_ids[start:stop], paths[start:stop], backbone, progress=False)
        files = (tmp_path / f"s{shard}.vectors.parquet", tmp_path / f"s{shard}.failures.parquet")
        write_shard(result, backbone, *files)
        shard_files.append(files)
    out, failures_out = tmp_path / "mfcc.parquet", tmp_path / "mfcc.failures.parquet"
    gather_shards(
        [v for v, _ in shard_files], [f for _, f in shard_files], "last", out, failures_out, {"backbone": "m"}
    )
    ids, vectors = read_embeddings(out)
    assert ids == ["good0", "good1", "good2", "silent", "six_channel_8k"]
    assert vectors.shape == (5, 104)
    metadata = read_metadata(out)
    assert metadata["layer"] == "last" and metadata["dim"] == 104 and metadata["backbone"] == "m"
    assert metadata["sample_rate"] == 22050 and "covariance" in metadata["pooling"]
    assert sorted(read_table(failures_out, "failures")["track_id"]) == ["corrupt", "empty", "missing"]


def test_select_layer_policies():
    per_layer = {"a": np.ones((2, 3)), "b": np.full((2, 3), 3.0), "c": np.full((2, 3), 5.0)}
    assert select_layer(per_layer, "last")[0, 0] == 5.0
    assert select_layer(per_layer, "mean")[0, 0] == 3.0
    assert select_layer(per_layer, 0)[0, 0] == 1.0
    assert select_layer(per_layer, -2)[0, 0] == 3.0
    assert select_layer(per_layer, "b")[0, 0] == 3.0
    with pytest.raises(ParameterError, match="out of range"):
        select_layer(per_layer, 3)
    with pytest.raises(ParameterError, match="layer must be"):
        select_layer(per_layer, "first")


def test_cli_embeds_a_folder(tmp_path, capsys):
    make_bad_collection(tmp_path / "audio")
    out = tmp_path / "out.parquet"
    assert cli_main(["embed", str(tmp_path / "audio"), "--backbone", "mfcc", "--out", str(out)]) == 0
    ids, vectors = read_embeddings(out)
    assert sorted(ids) == ["good0", "good1", "good2", "silent", "six"]
    assert vectors.shape == (5, 104)
    failures = read_table(tmp_path / "out.failures.parquet", "failures")
    assert sorted(failures["track_id"]) == ["corrupt", "empty"]
    assert "5 tracks embedded" in capsys.readouterr().out
