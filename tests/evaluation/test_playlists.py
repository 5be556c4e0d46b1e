"""Playlist continuation: the paper's sampled HR@k and MPR, full-catalogue metrics, and seeded task choice."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.evaluation.playlists import (
    ContinuationProtocol,
    ContinuationTasks,
    build_tasks,
    continuation_metrics,
    itemknn_scores,
    probe_playlists,
)
from audiorec.reporting.report import probe_markdown, probe_summary

VECTORS = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [-1, 0], [0, -1]], dtype=np.float64)


def playlists_table(members: dict[str, list[str]]) -> pl.DataFrame:
    rows = [(pid, track, position) for pid, tracks in members.items() for position, track in enumerate(tracks)]
    return pl.DataFrame(rows, schema=["playlist_id", "track_id", "position"], orient="row")


def test_metrics_of_a_hand_computed_case():
    # Query track 0; ground truth 1 and 2; both ranked against tracks 3, 4, 5.
    tasks = ContinuationTasks(["p"], [np.array([0])], [np.array([1, 2])], [np.array([[3, 4, 5], [3, 4, 5]])])
    scores = itemknn_scores(VECTORS, tasks.queries)
    np.testing.assert_allclose(scores, [[1, 1, 0, np.sqrt(0.5), -1, 0]])
    # Track 1 (score 1) beats every negative: 0 above it. Track 2 (score 0): 0.707 above, 0 tied (half), -1 below.
    metrics = continuation_metrics(scores, tasks, k=2)
    assert metrics["HR@2"] == pytest.approx(1.0)  # ranks 0 and 1.5 are both within the top 2
    assert metrics["MPR"] == pytest.approx((0 / 3 + 1.5 / 3) / 2)
    # Full ranking without the query: 1 (1.0), 3 (0.707), then 2 and 5 (0), 4 (-1). One hit, at rank 1.
    assert metrics["full HitRate@2"] == pytest.approx(1.0)
    assert metrics["full NDCG@2"] == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert continuation_metrics(scores, tasks, k=1)["HR@1"] == pytest.approx(0.5)


def test_itemknn_score_is_the_summed_cosine_to_the_queries(rng):
    vectors = rng.normal(size=(20, 5))
    queries = [np.array([1, 4, 7]), np.array([0, 19, 3])]
    scores = itemknn_scores(vectors, queries)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for row, rows in enumerate(queries):
        for item in range(20):
            assert scores[row, item] == pytest.approx(sum(unit[item] @ unit[q] for q in rows))


def test_a_random_scorer_has_mpr_one_half(rng):
    catalogue = [f"t{i}" for i in range(500)]
    members = {f"p{i:03d}": list(rng.choice(catalogue, size=10, replace=False)) for i in range(300)}
    tasks = build_tasks(playlists_table(members), catalogue, ContinuationProtocol())
    metrics = continuation_metrics(rng.random((300, 500)), tasks, k=10)
    assert metrics["MPR"] == pytest.approx(0.5, abs=0.02)
    assert metrics["HR@10"] == pytest.approx(10 / 101, abs=0.02)
    constant = continuation_metrics(np.zeros((300, 500)), tasks, k=10)
    assert constant["MPR"] == pytest.approx(0.5)  # ties count half


def test_tasks_are_seeded_per_playlist_and_sample_negatives_outside_it(rng):
    catalogue = [f"t{i}" for i in range(300)]
    members = {f"p{i}": list(rng.choice(catalogue, size=int(rng.integers(2, 12)), replace=False)) for i in range(40)}
    protocol = ContinuationProtocol(n_queries=3, n_negatives=50)
    tasks = build_tasks(playlists_table(members), catalogue, protocol)
    assert tasks.playlist_ids == sorted(p for p, tracks in members.items() if len(tracks) > 3)
    row_of = {t: i for i, t in enumerate(catalogue)}
    for pid, queries, truth, negatives in zip(*vars(tasks).values(), strict=True):
        playlist = {row_of[t] for t in members[pid]}
        assert len(queries) == 3 and set(queries) | set(truth) == playlist and not set(queries) & set(truth)
        assert negatives.shape == (len(truth), 50) and not set(negatives.ravel()) & playlist
        assert all(len(set(row)) == 50 for row in negatives)
    # Dropping other playlists changes nothing for the ones that remain.
    kept = {pid: members[pid] for pid in tasks.playlist_ids[::3]}
    fewer = build_tasks(playlists_table(kept), catalogue, protocol)
    for index, pid in enumerate(fewer.playlist_ids):
        original = tasks.playlist_ids.index(pid)
        np.testing.assert_array_equal(fewer.queries[index], tasks.queries[original])
        np.testing.assert_array_equal(fewer.negatives[index], tasks.negatives[original])
    other_seed = build_tasks(playlists_table(members), catalogue, ContinuationProtocol(n_negatives=50, seed=1))
    assert any(not np.array_equal(a, b) for a, b in zip(other_seed.queries, tasks.queries, strict=True))


def test_probe_leaves_excluded_tracks_out_of_the_catalogue(rng):
    track_ids = [f"t{i}" for i in range(60)]
    vectors = rng.normal(size=(60, 4))
    members = {"a": track_ids[:8], "b": track_ids[10:14], "c": track_ids[20:30]}
    excluded = set(track_ids[10:12]) | set(track_ids[50:])
    result = probe_playlists(
        track_ids, vectors, playlists_table(members), excluded, ContinuationProtocol(n_negatives=20)
    )
    # "b" keeps 2 of its 4 tracks: too few for 3 queries and a ground truth.
    assert result["n_playlists"] == 2 and result["n_catalogue"] == 48 and result["n_ground_truth"] == 5 + 7
    assert 0 <= result["MPR"] <= 1 and {"HR@10", "full HitRate@10", "full NDCG@10"} <= set(result)
    with pytest.raises(ParameterError, match="no playlist has enough catalogue tracks"):
        probe_playlists(track_ids, vectors, playlists_table({"b": track_ids[10:14]}), excluded)


def test_probe_table_has_the_papers_layout():
    classified = {"svm": {"accuracy": 0.5, "macro_f1": 0.4}, "logreg": {"accuracy": 0.6, "macro_f1": 0.5}}
    continued = {"k": 10, "HR@10": 0.2, "MPR": 0.3, "full HitRate@10": 0.9, "full NDCG@10": 0.1}
    results = [
        {"task": "genre", "backbone": "mfcc", "dim": 104, **classified},
        {"task": "playlist", "backbone": "mfcc", "dim": 104, **continued},
        {"task": "playlist", "backbone": "ssl", "dim": 256, **continued, "HR@10": 0.25, "MPR": 0.28},
    ]
    summary = probe_summary(results)
    assert summary.columns[:6] == [
        "backbone",
        "dim",
        "genre SVM",
        "genre SVM macro-F1",
        "genre LR",
        "genre LR macro-F1",
    ]
    assert summary.get_column("backbone").to_list() == ["mfcc", "ssl"]
    assert summary.row(1, named=True)["genre SVM"] is None and summary.row(1, named=True)["playlist MPR"] == 0.28
    markdown = probe_markdown(summary)
    assert "| backbone | dim | genre SVM | genre LR | playlist HR@10 | playlist MPR |" in markdown
    assert "| ssl | 256 | - | - | 0.25 | 0.28 |" in markdown
    assert "sampled versus full-catalogue" in markdown and "playlist full NDCG@10" in markdown
