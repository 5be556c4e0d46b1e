"""The ``synthetic`` source on its tiny preset: contracts, determinism, the split, features and their signal.

The onion preset is this generator with other sizes, so what holds here (valid tables, a usable split, feature
widths, a content signal that a shuffle destroys) is what a full-scale run relies on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from audiorec.backbones.precomputed import import_features
from audiorec.datasets import dataset_tables, fetch_output_paths, get_source, source_features
from audiorec.datasets.synthetic import SyntheticOptions, fetch, generate, read_features
from audiorec.errors import ParameterError
from audiorec.plan.datasets import DatasetPlan
from audiorec.protocol.split import SplitConfig, SplitResult, temporal_split
from audiorec.storage import tables

WIDTHS = {"musicnn_like": 200, "mert_like": 96, "jukebox_like": 48}
OPTIONS: dict[str, Any] = {"scale": "tiny", "seed": 3, "feature_dims": WIDTHS}


def _options(folder: Path, **extra: Any) -> dict[str, Any]:
    return {**OPTIONS, "features_dir": str(folder / "features"), **extra}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    fetch(OPTIONS, out, progress=False)
    return out


@pytest.fixture(scope="module")
def split(world: Path) -> SplitResult:
    test_start = SyntheticOptions.from_mapping(OPTIONS).evaluation_start()
    return temporal_split(pl.scan_parquet(world / "interactions.parquet"), SplitConfig(test_start=test_start))


def test_source_is_registered_with_its_features() -> None:
    assert get_source("synthetic").fetch is fetch
    assert set(source_features("synthetic", OPTIONS)) == set(WIDTHS)
    assert fetch_output_paths("synthetic", "d")["features"] == ("d/features", True)
    plan = DatasetPlan.from_entry(
        "w", {"source": "synthetic", "options": OPTIONS, "split": {"test_start": "2020-02-20"}}
    )
    assert plan.options()["features_dir"] == "results/w/data/features"
    assert plan.has("features/jukebox_like") and plan.has_log
    assert "features/mert_like" not in dataset_tables("synthetic", OPTIONS)
    # A feature the options do not generate fails when the DAG is built, not in the job that reads it.
    with pytest.raises(ParameterError, match=r"mule_like.*feature_dims"):
        plan.check_feature("mule", "mule_like")
    journal = DatasetPlan.from_entry(
        "w",
        {"source": "synthetic", "options": {"feature_dims": {"mule_like": 8}}, "split": {"test_start": "2020-02-20"}},
    )
    journal.check_feature("mule", "mule_like")


def test_tables_follow_the_contracts(world: Path) -> None:
    tracks = tables.read_table(world / "tracks.parquet", "tracks")
    events = tables.read_table(world / "interactions.parquet", "interactions")
    assert tracks.height == 1500 and tracks["track_id"].is_unique().all()
    assert tracks["audio_path"].null_count() == tracks.height, "there is no audio"
    assert events.height > 20_000
    assert events["track_id"].is_in(tracks["track_id"].implode()).all()
    assert events["timestamp"].is_sorted()
    released = events.join(tracks.select("track_id", "release_date"), on="track_id")
    assert (released["timestamp"] >= released["release_date"]).all(), "no listen precedes a release"
    options = SyntheticOptions.from_mapping(OPTIONS)
    assert events["timestamp"].min() >= options.start() and events["timestamp"].max() < options.end()
    pairs = events.select("user_id", "track_id").n_unique()
    assert events.height > 1.3 * pairs, "the log has replays"
    assert tables.read_metadata(world / "tracks.parquet")["evaluation_start"] == options.evaluation_start().isoformat()


def test_popularity_and_history_lengths_are_heavy_tailed(world: Path) -> None:
    events = tables.read_table(world / "interactions.parquet", "interactions").unique(["user_id", "track_id"])
    listeners = events.group_by("track_id").len()["len"]
    history = events.group_by("user_id").len()["len"]
    assert listeners.max() > 8 * listeners.median()
    assert history.max() > 3 * history.median()


def test_same_seed_same_world_and_another_seed_another(tmp_path: Path) -> None:
    first, again = generate(SyntheticOptions.from_mapping(OPTIONS)), generate(SyntheticOptions.from_mapping(OPTIONS))
    assert first[0].equals(again[0]) and first[1].equals(again[1])
    other = generate(SyntheticOptions.from_mapping({**OPTIONS, "seed": 4}))
    assert not first[1].equals(other[1])
    for folder in (tmp_path / "a", tmp_path / "b"):
        fetch({**OPTIONS, "feature_dims": {"jukebox_like": 48}}, folder, progress=False)
    a, b = (
        read_features(_options(f, feature_dims={"jukebox_like": 48}), "jukebox_like")
        for f in (tmp_path / "a", tmp_path / "b")
    )
    assert a[0] == b[0] and np.array_equal(a[1], b[1])


def test_overrides_change_the_sizes() -> None:
    tracks, events, _, _ = generate(SyntheticOptions.from_mapping({"users": 50, "tracks": 200, "events": 4000}))
    assert tracks.height == 200
    assert events["user_id"].n_unique() <= 50
    assert 3000 < events.height < 5000


def test_split_has_train_validation_and_test_users(split: SplitResult) -> None:
    users = {name: set(frame["user_id"]) for name, frame in split.frames().items()}
    assert len(users["train"]) > 250 and len(users["val"]) > 50 and len(users["test"]) > 50
    assert not users["val"] & users["test"]
    assert users["val"] | users["test"] <= users["train"]
    assert split.cold_test.height > 0, "tracks released in the evaluation month give a cold test"


def test_features_have_the_declared_widths_and_feed_precomputed_backbones(world: Path, tmp_path: Path) -> None:
    track_ids = tables.read_table(world / "tracks.parquet", "tracks")["track_id"].to_list()
    for name, width in WIDTHS.items():
        ids, vectors, _ = read_features(_options(world), name)
        assert ids == track_ids and vectors.shape == (1500, width) and vectors.dtype == np.float32
        assert np.isfinite(vectors).all()
    written = import_features(
        "synthetic",
        _options(world),
        "mert_like",
        world / "tracks.parquet",
        tmp_path / "mert_like.parquet",
        tmp_path / "mert_like.failures.parquet",
        {},
    )
    assert written == 1500
    ids, vectors = tables.read_embeddings(tmp_path / "mert_like.parquet")
    assert vectors.shape == (1500, 96) and pq.read_metadata(tmp_path / "mert_like.failures.parquet").num_rows == 0


def test_a_feature_of_any_name_leaves_the_others_unchanged(world: Path, tmp_path: Path) -> None:
    """The journal version's matrix needs ten widths; a feature's draws are keyed by its name, not its position."""
    options = {**OPTIONS, "feature_dims": {"mule_like": 24, "mert_like": 96}}
    fetch(options, tmp_path, progress=False)
    ids, vectors, _ = read_features({**options, "features_dir": str(tmp_path / "features")}, "mert_like")
    same_ids, same_vectors, _ = read_features(_options(world), "mert_like")
    assert ids == same_ids and np.array_equal(vectors, same_vectors)
    _, mule, _ = read_features({**options, "features_dir": str(tmp_path / "features")}, "mule_like")
    assert mule.shape == (1500, 24) and np.isfinite(mule).all()


def _mean_percentile(vectors: np.ndarray, track_ids: list[str], split: SplitResult) -> float:
    """Mean percentile, among unheard train tracks, of each held-out track under mean-of-heard cosine (KNN)."""
    index = {track: row for row, track in enumerate(track_ids)}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    train = split.train.with_columns(pl.col("track_id").replace_strict(index).alias("row"))
    candidates = np.unique(train["row"].to_numpy())
    heard_by = dict(train.group_by("user_id").agg("row").iter_rows())
    held_out = pl.concat([split.val, split.test]).with_columns(pl.col("track_id").replace_strict(index).alias("row"))
    percentiles = []
    for user, relevant in held_out.group_by("user_id").agg("row").iter_rows():
        heard = np.asarray(heard_by[user])
        unheard = candidates[~np.isin(candidates, heard)]
        scores = unit[unheard] @ unit[heard].mean(axis=0)
        percentile = scores.argsort().argsort() / (unheard.size - 1)
        percentiles.extend(percentile[np.isin(unheard, relevant)])
    return float(np.mean(percentiles))


def test_features_carry_a_weak_content_signal_that_a_shuffle_removes(world: Path, split: SplitResult) -> None:
    track_ids, vectors, _ = read_features(_options(world), "musicnn_like")
    real = _mean_percentile(vectors, track_ids, split)
    shuffled = _mean_percentile(vectors[np.random.default_rng(0).permutation(len(vectors))], track_ids, split)
    assert 0.6 < real < 0.9, "above chance, far from perfect"
    assert abs(shuffled - 0.5) < 0.05


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"scale": "huge"}, "scale"),
        ({"users": 0}, "users"),
        ({"tracks": "many"}, "tracks"),
        ({"months": 1}, "months"),
        ({"seed": -1}, "seed"),
        ({"start_date": "20 Feb"}, "start_date"),
        ({"feature_dims": {"MFCC": 20}}, "feature_dims"),
        ({"feature_dims": {"mert": 20}}, "feature_dims"),
        ({"feature_dims": {"mert_like": 0}}, "feature_dims.mert_like"),
        ({"feature_noise": -1.0}, "feature_noise"),
        ({"n_users": 10}, "n_users"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ParameterError, match=named.replace(".", r"\.")):
        SyntheticOptions.from_mapping(options)


def test_feature_errors_name_the_option(world: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="feature_dims"):
        read_features(_options(world, feature_dims={"musicnn_like": 200}), "mert_like")
    with pytest.raises(ParameterError, match="features_dir"):
        read_features(OPTIONS, "mert_like")
    with pytest.raises(ParameterError, match="features_dir"):
        fetch({**OPTIONS, "features_dir": str(tmp_path / "elsewhere")}, tmp_path / "data", progress=False)
    with pytest.raises(ParameterError, match="features_dir"):
        DatasetPlan.from_entry("w", {"source": "synthetic", "options": {"features_dir": "x"}})
