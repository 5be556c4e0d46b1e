"""Sources with labels or playlists (FMA, IRMAS, AotM-2011), the source registry and the example configs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from dataset_fixtures import (
    FMA_GENRES,
    IRMAS_FILES,
    dropped_counts,
    write_aotm,
    write_clip,
    write_fma,
    write_irmas,
    written_tables,
)

from audiorec.datasets import SOURCE_OUTPUTS, dataset_tables, get_source
from audiorec.datasets.irmas import parse_name
from audiorec.datasets.stratify import stratified_group_split
from audiorec.errors import DatasetError, ParameterError
from audiorec.stages import fetch_dataset
from audiorec.storage.tables import read_table


@pytest.fixture(scope="module")
def fma(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("fma")
    files = write_fma(root)
    return {"metadata": str(files["metadata"]), "audio_dir": str(files["audio_dir"])}


def test_fma_multi_row_header_genres_and_official_split(fma: dict, tmp_path: Path) -> None:
    fetch_dataset("fma", fma, tmp_path)
    assert written_tables(tmp_path) == {"tracks", "labels/genre"}
    labels = read_table(tmp_path / "labels" / "genre.parquet", "labels")
    expected_ids = [t for t in FMA_GENRES if t != 46]
    assert labels["track_id"].to_list() == [f"{t:06d}" for t in expected_ids]
    assert labels["label"].to_list() == [FMA_GENRES[t] for t in expected_ids]
    assert labels["split"].to_list() == ["train", "train", "train", "val", "train", "test", "test"]
    tracks = read_table(tmp_path / "tracks.parquet", "tracks")
    assert tracks["audio_path"][0].endswith("fma_small/000/000002.mp3")
    assert tracks["artist"][0] == "Artist, 2" and tracks["title"][0] == "Song 2"  # quoted commas survive
    assert dropped_counts(tmp_path) == {
        "rows: track_id is not a number": 1,
        "small tracks: no top-level genre": 1,
        "small tracks: split is not one of ['test', 'training', 'validation']": 1,
        "small tracks: audio file does not exist": 1,
    }


def test_fma_medium_includes_small_and_bad_headers_are_rejected(fma: dict, tmp_path: Path) -> None:
    fetch_dataset("fma", {**fma, "subset": "medium"}, tmp_path / "medium")
    assert dropped_counts(tmp_path / "medium")["medium tracks: audio file does not exist"] == 2  # 46 and 99
    with pytest.raises(ParameterError, match="subset must be one of"):
        fetch_dataset("fma", {**fma, "subset": "tiny"}, tmp_path)
    flat = tmp_path / "flat.csv"
    flat.write_text("track_id,genre\n2,Rock\n3,Pop\n")
    with pytest.raises(DatasetError, match=re.escape("not FMA's tracks.csv")):
        fetch_dataset("fma", {**fma, "metadata": str(flat)}, tmp_path)


@pytest.fixture(scope="module")
def irmas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_irmas(tmp_path_factory.mktemp("irmas"))


def test_irmas_labels_from_names_and_a_grouped_stratified_split(irmas: Path, tmp_path: Path) -> None:
    options = {"root": str(irmas), "fractions": [0.6, 0.2, 0.2], "seed": 3}
    fetch_dataset("irmas", options, tmp_path)
    assert written_tables(tmp_path) == {"tracks", "labels/instrument"}
    labels = read_table(tmp_path / "labels" / "instrument.parquet", "labels")
    assert labels.height == 18
    counts = labels.group_by("label", "split").len().sort("label", "split")
    assert counts.filter(pl.col("split") != "train")["len"].to_list() == [1] * 6  # one group per label each
    tracks = read_table(tmp_path / "tracks.parquet", "tracks").join(labels, on="track_id")
    by_name = {row["track_id"]: row for row in tracks.iter_rows(named=True)}
    assert by_name["[cel][cla]0001__1"]["split"] == by_name["[cel][cla]0001__2"]["split"]
    assert by_name["[gel][dru][pop_roc]0829__2"]["split"] == by_name["[gel][dru][pop_roc]0829__3"]["split"]
    assert by_name["[gel][nod][jaz_blu]0833__1"]["drums"] is False and by_name["[voi][pop_roc]2201__1"]["drums"] is None
    assert by_name["001__[cel][nod][cla]0058__1"]["label"] == "cello"
    assert np.allclose(tracks["duration_s"].to_numpy(), 0.3, atol=1e-3)
    assert dropped_counts(tmp_path) == {
        "files: instrument in the name differs from its folder": 1,
        "files: name does not follow [instrument][drums][genre]NNNN__N.wav": 1,
        "files: unknown instrument code": 1,
    }
    again = tmp_path / "again"
    fetch_dataset("irmas", options, again)
    assert read_table(again / "labels" / "instrument.parquet").equals(labels)
    fetch_dataset("irmas", {**options, "seed": 4}, tmp_path / "other")
    assert not read_table(tmp_path / "other" / "labels" / "instrument.parquet").equals(labels)
    assert sum(len(v) for v in IRMAS_FILES.values()) == 18 + 3


def test_irmas_name_parsing_and_bad_fractions() -> None:
    assert parse_name("008__[vio][nod][cou_fol]2196__1.wav") == {
        "recording": "008__[vio][nod][cou_fol]2196",
        "instrument": "vio",
        "drums": False,
        "genre": "cou_fol",
    }
    assert parse_name("[pia][jaz_blu]1490__1.wav")["recording"] == "[pia][jaz_blu]1490"
    assert parse_name("[pia]1490__1.wav") is None
    with pytest.raises(ParameterError, match="summing to 1"):
        fetch_dataset("irmas", {"root": ".", "fractions": [0.5, 0.2]}, ".")


def test_stratified_group_split_keeps_shares_and_groups() -> None:
    labels = ["a"] * 40 + ["b"] * 20
    groups = [f"a{i // 2}" for i in range(40)] + [f"b{i}" for i in range(20)]
    split = stratified_group_split(labels, groups, (0.5, 0.25, 0.25), seed=0)
    for label, n_groups in (("a", 20), ("b", 20)):
        chosen = {g: s for lab, g, s in zip(labels, groups, split, strict=True) if lab == label}
        assert sorted(np.unique(list(chosen.values()), return_counts=True)[1]) == sorted(
            [n_groups // 2, n_groups // 4, n_groups // 4]
        )
    assert all(split[i] == split[i + 1] for i in range(0, 40, 2))
    shuffled = np.random.default_rng(0).permutation(60)
    again = stratified_group_split([labels[i] for i in shuffled], [groups[i] for i in shuffled], (0.5, 0.25, 0.25), 0)
    assert (again == split[shuffled]).all()  # independent of input order


def test_aotm_playlists_are_mapped_deduplicated_and_filtered(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = write_aotm(tmp_path)
    options = {
        "playlists": str(files["playlists"]),
        "audio_map": str(files["audio_map"]),
        "min_tracks": 3,
        "max_tracks": 5,
        "exclude_categories": ["Theme", "Polka"],
    }
    with caplog.at_level(logging.WARNING, logger="audiorec.datasets.aotm2011"):
        fetch_dataset("aotm2011", options, tmp_path / "out")
    assert "excluded categories ['Polka'] occur in no mix" in caplog.text
    assert written_tables(tmp_path / "out") == {"tracks", "playlists"}
    msd = files["msd"]
    playlists = read_table(tmp_path / "out" / "playlists.parquet", "playlists")
    assert playlists.select("playlist_id", "track_id", "position").rows() == [
        ("1", msd[0], 0),
        ("1", msd[1], 1),
        ("1", msd[2], 2),
        *(("4", msd[i], i - 2) for i in range(2, 7)),
    ]
    tracks = read_table(tmp_path / "out" / "tracks.parquet", "tracks")
    assert tracks["track_id"].to_list() == msd[:7]
    assert tracks.filter(pl.col("track_id") == msd[0])["artist"].item() == "Artist 0"
    assert dropped_counts(tmp_path / "out") == {
        "audio map rows: duplicate track_id": 1,
        "audio map rows: audio file does not exist": 1,
        "mixes: duplicate mix_id": 1,
        "mixes: malformed (no mix_id or playlist list)": 1,
        "mixes: excluded category": 1,
        "entries: no track id": 1,
        "entries: repeated within its mix": 1,
        "entries: no audio for the track id": 2,
        "mixes: fewer than 3 tracks with audio": 1,
    }
    with pytest.raises(ParameterError, match="min_tracks <= max_tracks"):
        fetch_dataset("aotm2011", {**options, "min_tracks": 9}, tmp_path / "bad")
    with pytest.raises(DatasetError, match=re.escape("no mix keeps 6..9 tracks")):
        fetch_dataset("aotm2011", {**options, "min_tracks": 6, "max_tracks": 9}, tmp_path / "bad")


def test_every_source_is_registered_with_its_written_tables() -> None:
    assert set(SOURCE_OUTPUTS) == {"demo", "local", "music4all_onion", "fma", "irmas", "aotm2011", "synthetic"}
    for source in SOURCE_OUTPUTS:
        assert callable(get_source(source).fetch)
    assert dataset_tables("fma", {}) == ("tracks", "labels/genre")
    assert "features/mfcc_stats" not in dataset_tables("music4all_onion", {"listening_events": "x"})
    with pytest.raises(ParameterError, match="unknown dataset source 'spotify'"):
        dataset_tables("spotify", {})


def test_unreadable_audio_keeps_its_track_for_the_extraction_failures_table(tmp_path: Path) -> None:
    audio = tmp_path / "music"
    write_clip(audio / "good.wav", 440.0)
    (audio / "broken.mp3").write_bytes(b"\x00" * 64)
    log = tmp_path / "log.csv"
    log.write_text("user_id,track_id,timestamp\nu,good,2020-01-01\nu,broken,2020-01-02\n")
    fetch_dataset("local", {"interactions": str(log), "audio_dir": str(audio)}, tmp_path / "out")
    tracks = read_table(tmp_path / "out" / "tracks.parquet", "tracks").sort("track_id")
    assert tracks["track_id"].to_list() == ["broken", "good"]
    assert np.isnan(tracks["duration_s"][0]) and tracks["duration_s"][1] == pytest.approx(0.5)


EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


OPTION_CLASSES = {
    "local": "LocalOptions",
    "music4all_onion": "OnionOptions",
    "fma": "FMAOptions",
    "irmas": "IRMASOptions",
    "aotm2011": "AOTMOptions",
}


@pytest.mark.parametrize("name", ["local", "music4all_onion", "fma", "irmas", "aotm2011"])
def test_example_configs_are_valid(name: str) -> None:
    from snakemake.utils import validate

    from audiorec.common.config import dataclass_from_mapping
    from audiorec.plan import Plan
    from audiorec.storage.download import DownloadSpec, substitute_downloads

    config = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    validate(config, str(EXAMPLES.parent / "schema.yaml"))
    (dataset,) = config["datasets"].values()
    assert dataset["source"] == name
    specs = {key: DownloadSpec.from_mapping(key, spec) for key, spec in dataset["downloads"].items()}
    options = substitute_downloads(dataset["options"], {key: f"resources/{key}" for key in specs}, name)
    module = get_source(name)
    dataclass_from_mapping(getattr(module, OPTION_CLASSES[name]), options, name)
    assert ("interactions" in dataset_tables(name, options)) == ("split" in dataset)
    Plan.from_config(config).check()  # every kind and option, and how backbones, models and datasets fit


def test_onion_example_reproduces_the_papers_split_and_matrix() -> None:
    config = yaml.safe_load((EXAMPLES / "music4all_onion.yaml").read_text())
    assert config["datasets"]["onion"]["split"] == {
        "test_start": "2020-02-20",
        "train_months": 12,
        "test_months": 1,
        "val_fraction": 0.5,
        "seed": 0,
    }
    kinds = {entry["kind"] for entry in config["backbones"].values()}
    assert kinds == {"precomputed", "mfcc", "musicnn", "musicfm", "encodecmae", "music2vec", "mert", "jukebox"}
    assert {"knn", "shallow", "bert4rec", "shallow_random", "bert4rec_random"} <= {
        entry["kind"] for entry in config["models"].values()
    }
