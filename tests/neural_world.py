"""A small demo world for the trained recommenders' tests: listening log, split, and content embeddings.

Extracting MFCCs would cost more than all the training in these tests, so the item embeddings are built from
what the audio of the demo world encodes (style, melodic instrument, tempo) plus noise: a content table
that carries real signal about what users listen to, as an audio backbone's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audiorec.datasets.demo import TINY, DemoOptions, generate_demo_world
from audiorec.protocol.split import SplitConfig, temporal_split
from audiorec.recommenders import Catalogue, TrainData
from audiorec.storage.tables import read_table

OPTIONS = {**TINY, "n_tracks": 400, "n_users": 250, "clip_seconds": 0.5}


@dataclass(frozen=True)
class World:
    """Everything a trained recommender needs, indexed as :func:`audiorec.stages.recommend` indexes it: the catalogue
    is the candidate set (the train tracks)."""

    catalogue: Catalogue
    train_frame: pl.DataFrame
    train: TrainData
    validation: TrainData
    val_users: TrainData
    val_truth: pl.DataFrame


def content_embeddings(tracks: pl.DataFrame, seed: int = 0) -> np.ndarray:
    """One-hot style and instrument, standardised tempo, and Gaussian noise: ``(n_tracks, 16)`` float32."""
    rng = np.random.default_rng(seed)
    style = tracks.get_column("style").to_dummies().to_numpy()
    instrument = tracks.get_column("instrument").to_dummies().to_numpy()
    tempo = tracks.get_column("tempo_bpm").to_numpy()[:, None]
    features = np.hstack([style, instrument, (tempo - tempo.mean()) / tempo.std()]).astype(np.float32)
    noise = rng.normal(scale=0.3, size=(len(tracks), 16 - features.shape[1]))
    return np.hstack([features + rng.normal(scale=0.1, size=features.shape), noise]).astype(np.float32)


def build_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Generate (once per test session: the folder is shared) and index the world."""
    root = tmp_path_factory.getbasetemp() / "neural-world"
    if not (root / "interactions.parquet").exists():
        generate_demo_world(DemoOptions(**OPTIONS), root, progress=False)
    tracks = read_table(root / "tracks.parquet", "tracks")
    split = temporal_split(
        pl.scan_parquet(root / "interactions.parquet"), SplitConfig.from_mapping({"test_start": "2025-01-01"})
    )
    train_frame = split.train
    in_train = tracks.get_column("track_id").is_in(train_frame.get_column("track_id").implode())
    candidates = tracks.filter(in_train)
    catalogue = Catalogue.from_tracks(candidates.get_column("track_id").to_list(), content_embeddings(tracks)[in_train])
    users = sorted(train_frame.get_column("user_id").unique().to_list())
    val_user_ids = sorted(split.val.get_column("user_id").unique().to_list())
    earlier = split.heard_before_window
    return World(
        catalogue=catalogue,
        train_frame=train_frame,
        train=TrainData.build(train_frame, catalogue, users, earlier),
        validation=TrainData.build(split.val, catalogue, users),
        val_users=TrainData.build(train_frame, catalogue, val_user_ids, earlier),
        val_truth=split.val,
    )


def world_files(tmp_path_factory: pytest.TempPathFactory, name: str, left_out: int | None = None) -> Path:
    """The world's split tables, its content embeddings as an embeddings table and the candidate set, in a new
    folder, as the workflow lays them out. ``left_out`` drops the train track of that (sorted) position from the
    embeddings, as if a backbone had failed on it."""
    from audiorec.protocol.candidates import write_candidates
    from audiorec.stages import split_dataset
    from audiorec.storage.tables import embeddings_table, write_table

    root = tmp_path_factory.getbasetemp() / "neural-world"
    folder = tmp_path_factory.mktemp(name)
    split_dataset(root / "interactions.parquet", {"test_start": "2025-01-01"}, folder / "split")
    tracks = read_table(root / "tracks.parquet")
    keep = np.ones(tracks.height, dtype=bool)
    if left_out is not None:
        train_tracks = sorted(read_table(folder / "split" / "train.parquet").get_column("track_id").unique())
        keep = (tracks.get_column("track_id") != train_tracks[left_out]).to_numpy()
    vectors = content_embeddings(tracks)[keep]
    write_table(
        embeddings_table(tracks.filter(keep).get_column("track_id").to_list(), vectors), folder / "embeddings.parquet"
    )
    write_candidates(
        folder / "split" / "train.parquet", {"content": folder / "embeddings.parquet"}, folder / "uncovered.csv"
    )
    return folder


def run_paths(folder: Path, *names: str) -> dict[str, Path]:
    """The split files a run reads in a :func:`world_files` folder, by the names the workflow passes."""
    paths = {name: folder / "split" / f"{name}.parquet" for name in ("train", "heard_before_window", *names)}
    return paths | {"uncovered": folder / "uncovered.csv"}
