"""The synthetic demo world: determinism, table contracts, time rules, and the signals recommenders need.

The whole workflow is demonstrated and tested on this world, so besides the file contracts these tests
check that it holds what makes a recommendation experiment meaningful: audible styles, users whose
listening follows their taste, new (user, track) pairs and cold items in the evaluation month.
"""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import polars as pl
import pytest
import soundfile as sf

from audiorec.datasets import DATASET_SOURCES, get_source
from audiorec.datasets.demo import (
    INSTRUMENTS,
    STYLE_NAMES,
    TINY,
    DemoOptions,
    evaluation_start,
    generate_demo_world,
    world_end,
    world_start,
)
from audiorec.datasets.demo import world as demo_world
from audiorec.errors import ParameterError
from audiorec.storage import tables

OPTIONS = DemoOptions(**TINY)
SMALL = {"n_tracks": 24, "n_users": 20, "n_artists": 6, "clip_seconds": 1.0, "n_playlists": 4}
"""An even smaller world for the comparisons that generate several worlds."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo_world(OPTIONS, out, progress=False)
    return out


@pytest.fixture(scope="module")
def tracks(world: Path) -> pl.DataFrame:
    return tables.read_table(world / "tracks.parquet", "tracks")


@pytest.fixture(scope="module")
def interactions(world: Path) -> pl.DataFrame:
    return tables.read_table(world / "interactions.parquet", "interactions")


@pytest.fixture(scope="module")
def events(interactions: pl.DataFrame, tracks: pl.DataFrame) -> pl.DataFrame:
    return interactions.join(tracks.select("track_id", "style", "release_date"), on="track_id", how="left")


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


# ---------------------------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------------------------


def test_same_options_give_byte_identical_files(world: Path, tmp_path: Path, monkeypatch) -> None:
    """Also whatever the number of synthesis processes: the fixture's world used several where the CPUs allow."""
    monkeypatch.setattr(demo_world, "SYNTHESIS_WORKERS", 1)
    generate_demo_world(OPTIONS, tmp_path, progress=False)
    first, second = _files(world), _files(tmp_path)
    assert sorted(first) == sorted(second)
    assert len([name for name in first if name.endswith(".flac")]) == OPTIONS.n_tracks
    for name in ("tracks.parquet", "interactions.parquet", "playlists.parquet", "labels/genre.parquet"):
        assert first[name] == second[name], name
    assert all(first[name] == second[name] for name in first), "FLAC or label files differ between runs"


def test_seed_changes_world_and_parts_are_independent(tmp_path: Path) -> None:
    base, other_seed, more_playlists = tmp_path / "base", tmp_path / "seed", tmp_path / "playlists"
    generate_demo_world(DemoOptions(**SMALL), base, progress=False)
    generate_demo_world(DemoOptions(**SMALL, seed=1), other_seed, progress=False)
    generate_demo_world(DemoOptions(**{**SMALL, "n_playlists": 9}), more_playlists, progress=False)
    files, seeded, extended = _files(base), _files(other_seed), _files(more_playlists)

    def read(root: Path) -> pl.DataFrame:
        return tables.read_table(root / "interactions.parquet", "interactions")

    assert not read(base).equals(read(other_seed))
    assert files["audio/t0001.flac"] != seeded["audio/t0001.flac"]
    # Playlists draw from their own stream: audio, tracks and listening are untouched by n_playlists.
    assert files["playlists.parquet"] != extended["playlists.parquet"]
    for name, content in files.items():
        if name != "playlists.parquet":
            assert extended[name] == content, name


# ---------------------------------------------------------------------------------------------------------------
# Contracts
# ---------------------------------------------------------------------------------------------------------------


def test_tracks_table_and_audio_files(world: Path, tracks: pl.DataFrame) -> None:
    assert tracks.height == OPTIONS.n_tracks
    assert tracks["track_id"].n_unique() == OPTIONS.n_tracks
    assert tracks.schema["release_date"] == pl.Datetime("us", "UTC")
    assert set(tracks["style"]) <= set(STYLE_NAMES[: OPTIONS.n_styles])
    assert tracks["style"].n_unique() == OPTIONS.n_styles
    assert set(tracks["instrument"]) <= set(INSTRUMENTS)
    assert tracks["instrument"].n_unique() >= 4
    assert tracks["artist_id"].n_unique() == OPTIONS.n_artists
    assert tracks["tempo_bpm"].is_between(40, 210).all()
    channels = []
    for row in tracks.iter_rows(named=True):
        assert row["audio_path"] == f"audio/{row['track_id']}.flac"
        path = tables.resolve_audio_path(row["audio_path"], world / "tracks.parquet")
        info = sf.info(str(path))
        assert info.format == "FLAC" and info.subtype == "PCM_16"
        samples, sample_rate = sf.read(str(path), always_2d=True)  # decodes the whole file
        assert sample_rate == OPTIONS.sample_rate
        assert samples.shape[0] == round(OPTIONS.clip_seconds * OPTIONS.sample_rate)
        assert math.isclose(row["duration_s"], samples.shape[0] / sample_rate, rel_tol=1e-6)
        channels.append(samples.shape[1])
    assert set(channels) == {1, 2}
    assert channels.count(2) == round(OPTIONS.stereo_fraction * OPTIONS.n_tracks)
    assert not list(world.rglob("*.tmp")), "temporary files were left behind"


def test_audio_is_normalised_without_clipping(world: Path, tracks: pl.DataFrame) -> None:
    for audio_path in tracks["audio_path"].head(25):
        samples, _ = sf.read(str(world / audio_path), dtype="float32", always_2d=True)
        peak = float(np.max(np.abs(samples)))
        assert 0.8 < peak < 0.97, (audio_path, peak)
        assert np.mean(np.abs(samples) > 0.99) == 0.0


def test_interactions_follow_contract(interactions: pl.DataFrame, tracks: pl.DataFrame) -> None:
    assert interactions.height > OPTIONS.n_users * OPTIONS.mean_events_per_user * 0.5
    assert set(interactions["track_id"]) <= set(tracks["track_id"])
    assert interactions["user_id"].n_unique() == OPTIONS.n_users
    ordered = interactions.sort(["timestamp", "user_id", "track_id"], maintain_order=True)
    assert interactions.equals(ordered)


def test_world_metadata_names_the_evaluation_month(world: Path) -> None:
    for name in ("tracks.parquet", "interactions.parquet"):
        metadata = tables.read_metadata(world / name)
        assert metadata["source"] == "demo"
        assert metadata["evaluation_start"] == "2025-01-01T00:00:00+00:00"
        assert metadata["world_end"] == "2025-02-01T00:00:00+00:00"
    assert evaluation_start(OPTIONS).isoformat() == "2025-01-01T00:00:00+00:00"
    assert world_start(OPTIONS).isoformat() == "2024-01-01T00:00:00+00:00"
    assert world_end(OPTIONS).isoformat() == "2025-02-01T00:00:00+00:00"


# ---------------------------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------------------------


def test_listening_respects_release_dates_and_world_span(events: pl.DataFrame, tracks: pl.DataFrame) -> None:
    assert events.filter(pl.col("timestamp") < pl.col("release_date")).height == 0
    assert events["timestamp"].min() >= world_start(OPTIONS)
    assert events["timestamp"].max() < world_end(OPTIONS)
    assert (events["timestamp"].dt.timestamp("us") % 1_000_000 == 0).all(), "timestamps have seconds resolution"
    assert tracks.filter(pl.col("release_date") < world_start(OPTIONS)).height > OPTIONS.n_tracks // 3


def test_cold_tracks_are_released_and_heard_only_in_the_last_month(events: pl.DataFrame, tracks: pl.DataFrame) -> None:
    test_start = evaluation_start(OPTIONS)
    cold = tracks.filter(pl.col("release_date") >= test_start)
    assert cold.height == round(OPTIONS.cold_fraction * OPTIONS.n_tracks)
    assert (cold["release_date"] < world_end(OPTIONS)).all()
    cold_events = events.filter(pl.col("track_id").is_in(cold["track_id"].implode()))
    assert cold_events.height > 0
    assert (cold_events["timestamp"] >= test_start).all()
    assert cold_events["track_id"].n_unique() >= cold.height // 2


def test_last_month_holds_new_pairs_and_repeats_exist(interactions: pl.DataFrame) -> None:
    test_start = evaluation_start(OPTIONS)
    before = interactions.filter(pl.col("timestamp") < test_start).select("user_id", "track_id").unique()
    last = interactions.filter(pl.col("timestamp") >= test_start)
    new = last.select("user_id", "track_id").unique().join(before, on=["user_id", "track_id"], how="anti")
    assert new["user_id"].n_unique() >= 0.35 * OPTIONS.n_users
    assert new.height >= 2 * OPTIONS.n_users
    # Some users stopped (or paused) before the evaluation month.
    assert last["user_id"].n_unique() < OPTIONS.n_users
    plays = interactions.group_by("user_id", "track_id").len()
    assert plays.height < 0.8 * interactions.height, "too few repeat listens"
    assert plays["len"].max() >= 5
    activity = interactions.group_by("user_id").len()["len"]
    assert activity.max() > 3 * activity.median(), "activity should be heavy-tailed"


# ---------------------------------------------------------------------------------------------------------------
# Signals: audible styles, taste, coherent playlists, labels
# ---------------------------------------------------------------------------------------------------------------


def _mfcc_features(world: Path, tracks: pl.DataFrame) -> np.ndarray:
    features = []
    for audio_path in tracks["audio_path"]:
        samples, sample_rate = sf.read(str(world / audio_path), dtype="float32", always_2d=True)
        mfcc = librosa.feature.mfcc(y=samples.mean(axis=1), sr=sample_rate, n_mfcc=20)
        features.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
    return np.asarray(features)


def _nearest_centroid_accuracy(features: np.ndarray, labels: pl.DataFrame) -> tuple[float, float]:
    """Accuracy on val+test of a nearest-centroid classifier fitted on train, and the majority share."""
    label, split = labels["label"].to_numpy(), labels["split"].to_numpy()
    train = split == "train"
    scaled = (features - features[train].mean(axis=0)) / (features[train].std(axis=0) + 1e-9)
    classes = np.unique(label[train])
    centroids = np.stack([scaled[train & (label == c)].mean(axis=0) for c in classes])
    distances = ((scaled[~train, None, :] - centroids[None]) ** 2).sum(axis=-1)
    accuracy = float(np.mean(classes[distances.argmin(axis=1)] == label[~train]))
    majority = float(np.max(np.unique(label[~train], return_counts=True)[1]) / np.sum(~train))
    return accuracy, majority


def test_styles_and_instruments_are_audible(world: Path, tracks: pl.DataFrame) -> None:
    features = _mfcc_features(world, tracks)
    genre = tables.read_table(world / "labels" / "genre.parquet", "labels")
    instrument = tables.read_table(world / "labels" / "instrument.parquet", "labels")
    assert genre["track_id"].to_list() == tracks["track_id"].to_list()
    accuracy, majority = _nearest_centroid_accuracy(features, genre)
    assert accuracy > max(0.6, 2.5 * majority), (accuracy, majority)
    accuracy, majority = _nearest_centroid_accuracy(features, instrument)
    assert accuracy > majority + 0.05, (accuracy, majority)


def test_users_listen_mostly_to_their_styles(events: pl.DataFrame) -> None:
    """Style entropy of each user's listening, against the same users with styles shuffled across events.

    The shuffled baseline keeps every user's number of events (a user with five listens has a low entropy
    whatever their taste), so only a real concentration on preferred styles makes the ratio small.
    """

    def mean_entropy(frame: pl.DataFrame) -> float:
        counts = frame.group_by("user_id", "style").len().group_by("user_id")
        return float(np.mean([_entropy(group["len"].to_numpy().astype(float)) for _, group in counts]))

    observed = mean_entropy(events)
    shuffled = mean_entropy(events.with_columns(pl.col("style").shuffle(seed=0)))
    assert observed < 0.65 * shuffled, (observed, shuffled)


def test_playlists_are_coherent(world: Path, tracks: pl.DataFrame) -> None:
    playlists = tables.read_table(world / "playlists.parquet", "playlists")
    assert playlists["playlist_id"].n_unique() == OPTIONS.n_playlists
    low, high = OPTIONS.playlist_length
    shares = []
    for _, playlist in playlists.join(tracks.select("track_id", "style"), on="track_id").group_by("playlist_id"):
        assert low <= playlist.height <= high
        assert sorted(playlist["position"].to_list()) == list(range(playlist.height))
        assert playlist["track_id"].n_unique() == playlist.height
        shares.append(playlist["style"].value_counts()["count"].max() / playlist.height)
    largest_style = tracks["style"].value_counts()["count"].max() / tracks.height
    assert np.mean(shares) > largest_style + 0.4, (np.mean(shares), largest_style)


@pytest.mark.parametrize(("task", "column"), [("genre", "style"), ("instrument", "instrument")])
def test_label_split_is_stratified(world: Path, tracks: pl.DataFrame, task: str, column: str) -> None:
    labels = tables.read_table(world / "labels" / f"{task}.parquet", "labels")
    assert labels["track_id"].to_list() == tracks["track_id"].to_list()
    assert labels["label"].to_list() == tracks[column].to_list()
    assert set(labels["split"]) == {"train", "val", "test"}
    fractions = dict(zip(("train", "val", "test"), OPTIONS.label_split, strict=True))
    for name, fraction in fractions.items():
        assert abs((labels["split"] == name).mean() - fraction) < 0.03
    for _, group in labels.group_by("label"):
        for name in ("train", "val"):
            assert abs((group["split"] == name).sum() - fractions[name] * group.height) <= 1, (task, name)


# ---------------------------------------------------------------------------------------------------------------
# Options and registry
# ---------------------------------------------------------------------------------------------------------------


def test_options_from_mapping() -> None:
    options = DemoOptions.from_mapping({**TINY, "label_split": [0.5, 0.25, 0.25], "seed": 3})
    assert options.label_split == (0.5, 0.25, 0.25)
    assert options.seed == 3 and options.n_tracks == TINY["n_tracks"]
    assert DemoOptions.from_mapping(None) == DemoOptions()
    with pytest.raises(ParameterError, match="n_trakcs"):
        DemoOptions.from_mapping({"n_trakcs": 10})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n_tracks", -5),
        ("n_styles", 12),
        ("clip_seconds", 0.0),
        ("stereo_fraction", 1.5),
        ("cold_fraction", "many"),
        ("start_date", "2024-13-01"),
        ("n_months", 1),
        ("label_split", [0.5, 0.5, 0.5]),
        ("n_users", True),
    ],
)
def test_options_reject_invalid_values(key: str, value: object) -> None:
    with pytest.raises(ParameterError, match=key) as caught:
        DemoOptions.from_mapping({key: value})
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    assert shown in str(caught.value), "the message should show the value received"


def test_dataset_registry_and_fetch(tmp_path: Path) -> None:
    assert DATASET_SOURCES["demo"] == "audiorec.datasets.demo"
    source = get_source("demo")
    assert source.generate_demo_world is generate_demo_world
    with pytest.raises(ParameterError, match="demo"):
        get_source("no-such-dataset")
    with pytest.raises(ParameterError, match="n_trakcs"):
        source.fetch({"n_trakcs": 10}, tmp_path)
    source.fetch({**SMALL, "n_playlists": 2}, tmp_path, progress=False)
    playlists = tables.read_table(tmp_path / "playlists.parquet", "playlists")
    assert playlists["playlist_id"].n_unique() == 2
