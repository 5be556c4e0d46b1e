"""Cold start: ranking only new releases, with the models that score a track by its content."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from neural_world import run_paths

from audiorec.errors import ParameterError
from audiorec.recommenders import RunFiles, recommender_class
from audiorec.recommenders.base import top_k_of_scores
from audiorec.reporting.report import cold_start_note
from audiorec.stages import aggregate, recommend, recommend_new_items
from audiorec.storage.tables import read_table, write_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONTENT_MODELS = {
    "knn": {"standardize": True},
    "shallow": {"standardize": True, "max_epochs": 2, "batch_size": 256},
    "bert4rec": {"standardize": True, "max_epochs": 1, "batch_size": 64, "max_len": 20, "hidden_size": 16},
    "random": {},
}


def test_top_k_of_scores_orders_by_score_breaks_ties_by_index_and_pads():
    scores = np.array([[0.1, 0.9, 0.9, 0.5], [0.3, 0.2, 0.1, 0.0]], dtype=np.float32)
    top_scores, top_items = top_k_of_scores(scores, k=3)
    # User 0: items 1 and 2 tie at 0.9, so the lower index comes first.
    np.testing.assert_array_equal(top_items, [[1, 2, 3], [0, 1, 2]])
    np.testing.assert_allclose(top_scores, [[0.9, 0.9, 0.5], [0.3, 0.2, 0.1]])
    # Fewer candidates than k: the list is padded with -1.
    _, padded = top_k_of_scores(scores, k=6)
    np.testing.assert_array_equal(padded[1], [0, 1, 2, 3, -1, -1])


def fitted(kind: str, world, seed: int = 0, files: RunFiles | None = None):
    model = recommender_class(kind).from_options(dict(CONTENT_MODELS[kind]), seed)
    if hasattr(model, "fit"):
        model.fit(world.catalogue, world.train, world.validation, files)
    return model


@pytest.mark.parametrize("kind", CONTENT_MODELS)
def test_new_item_scores_are_the_scores_the_full_ranking_uses(kind, neural_world):
    """Scoring the catalogue's own embeddings as if they were new tracks gives the model's top K, score for score:
    a new release is scored exactly as a catalogue track with the same embedding would be (for BERT4Rec, but for
    the learned per-item output bias, which a new track does not have)."""
    model = fitted(kind, neural_world)
    users = neural_world.val_users
    catalogue = neural_world.catalogue
    scores, items = model.recommend(catalogue, users, 20)
    if kind == "bert4rec":
        scores = scores - model.trained_module().bias.detach().numpy()[items]
    new_scores = model.score_new_items(catalogue, users, catalogue.embeddings)
    assert new_scores.shape == (len(users.user_ids), len(catalogue))
    np.testing.assert_allclose(np.take_along_axis(new_scores, items, axis=1), scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["shallow", "bert4rec"])
def test_a_restored_checkpoint_ranks_exactly_like_the_trained_model(kind, neural_world, tmp_path):
    files = RunFiles.beside(tmp_path / "checkpoint.pt", tmp_path / "training_log.csv")
    trained = fitted(kind, neural_world, seed=3, files=files)
    restored = recommender_class(kind).from_options(dict(CONTENT_MODELS[kind]), 3)
    restored.restore(neural_world.catalogue, neural_world.train, neural_world.validation, files.checkpoint)
    expected = trained.recommend(neural_world.catalogue, neural_world.val_users, 20)
    actual = restored.recommend(neural_world.catalogue, neural_world.val_users, 20)
    np.testing.assert_array_equal(actual[1], expected[1])
    np.testing.assert_array_equal(actual[0], expected[0])
    other_seed = recommender_class(kind).from_options(dict(CONTENT_MODELS[kind]), 4)
    with pytest.raises(ParameterError, match=r"checkpoint\.pt: the checkpoint was trained on other data"):
        other_seed.restore(neural_world.catalogue, neural_world.train, neural_world.validation, files.checkpoint)


@pytest.fixture(scope="module")
def split_world(neural_world, tmp_path_factory):
    """The neural world's split tables, content embeddings and candidate set, as the workflow lays them out."""
    from neural_world import world_files

    return world_files(tmp_path_factory, "cold-start")


def test_new_item_lists_rank_only_new_releases_for_every_cold_user(split_world, tmp_path):
    folder = split_world
    split = folder / "split"
    cold = read_table(split / "cold_test.parquet", "split")
    train = read_table(split / "train.parquet", "split")
    new_tracks = set(cold.get_column("track_id").to_list())
    assert new_tracks and not new_tracks & set(train.get_column("track_id").to_list())
    out = tmp_path / "new_items.parquet"
    paths = run_paths(folder, "cold_test")
    recommend_new_items(
        {"kind": "knn", "options": {"standardize": True}}, 0, paths, folder / "embeddings.parquet", 100, out
    )
    lists = read_table(out, "recommendations")
    assert set(lists.get_column("user_id").unique().to_list()) == set(cold.get_column("user_id").to_list())
    # Every user gets every new release, once, and nothing else.
    assert set(lists.get_column("track_id").to_list()) == new_tracks
    assert (lists.group_by("user_id").len().get_column("len") == len(new_tracks)).all()


def test_a_trained_model_ranks_new_items_from_the_checkpoint_of_its_run(split_world, tmp_path):
    folder = split_world
    split = folder / "split"
    spec = {"kind": "shallow", "options": CONTENT_MODELS["shallow"]}
    run = {"embeddings_path": folder / "embeddings.parquet", "top_k": 100}
    recommend(
        spec,
        0,
        run_paths(folder, "val"),
        target_paths=[split / "test.parquet"],
        out_path=tmp_path / "recommendations.parquet",
        checkpoint_path=tmp_path / "checkpoint.pt",
        training_log_path=tmp_path / "training_log.csv",
        **run,
    )
    cold = split / "cold_test.parquet"
    first = tmp_path / "new_items.parquet"
    paths = run_paths(folder, "val", "cold_test")
    recommend_new_items(spec, 0, paths, out_path=first, checkpoint_path=tmp_path / "checkpoint.pt", **run)
    lists = read_table(first, "recommendations")
    assert set(lists.get_column("track_id").to_list()) <= set(read_table(cold).get_column("track_id").to_list())
    with pytest.raises(ParameterError, match="needs the val split"):
        recommend_new_items(spec, 0, run_paths(folder, "cold_test"), out_path=first, **run)
    with pytest.raises(ParameterError, match="cannot rank items unheard in train"):
        recommend_new_items({"kind": "popularity"}, 0, paths, out_path=first, **run)


def test_cold_start_note_names_the_candidates_and_flags_cut_offs_that_admit_them_all():
    stats = pl.DataFrame({"split": ["train", "cold_test"], "rows": [100, 30], "users": [10, 9], "items": [50, 12]})
    note = cold_start_note(stats, ["HitRate@5", "NDCG@5", "HitRate@20"])
    assert "the 12 new releases" in note
    assert "K = [20]" in note
    assert "say nothing" not in cold_start_note(stats, ["HitRate@5"])


def test_a_dataset_without_new_releases_gets_an_empty_table_that_says_so(tmp_path):
    """No cold pair at all (a log whose evaluation month only replays known tracks): nothing fails."""
    write_table(
        pl.DataFrame(schema={"user_id": pl.String, "rank": pl.Int16, "track_id": pl.String, "score": pl.Float32}),
        tmp_path / "lists.parquet",
    )
    cold = {"user_id": pl.String, "track_id": pl.String, "first_ts": pl.Datetime("us", "UTC"), "plays": pl.Int32}
    write_table(pl.DataFrame(schema=cold), tmp_path / "cold_test.parquet")
    stats = pl.DataFrame({"split": ["train", "cold_test"], "rows": [10, 0], "users": [2, 0], "items": [5, 0]})
    stats.write_csv(tmp_path / "stats.csv")
    run = {"split": "cold_test", "model": "knn", "backbone": "mfcc", "seed": 0}
    run |= {"rankings": str(tmp_path / "lists.parquet"), "truth": str(tmp_path / "cold_test.parquet")}
    tests = {"random_variants": {}, "baseline_backbone": "mfcc", "shuffled_suffix": "_shuffled", "alpha": 0.05}
    outputs = [tmp_path / name for name in ("cold_start.csv", "cold_start.md", "significance.csv", "per_user.parquet")]
    aggregate([run], [10], tmp_path / "stats.csv", *outputs[:3], outputs[3], tests)
    table = pl.read_csv(outputs[0])
    assert table.is_empty() and {"model", "HitRate@10", "HitRate@10 ci_low"} <= set(table.columns)
    assert "there are no new releases to rank" in outputs[1].read_text()
    assert read_table(outputs[3]).is_empty()
