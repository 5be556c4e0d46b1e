"""What a recommendation run ranks and learns on (:mod:`audiorec.recommenders.runs`), on a few hand-written rows."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.recommenders import Catalogue, recommender_class
from audiorec.recommenders.runs import EmbeddingsTable, fitting_data, model_catalogue, new_releases

TABLE = EmbeddingsTable(
    Path("content.parquet"),
    ["c", "a", "b", "n1", "n2"],
    np.array([[3.0, 30.0], [1.0, 10.0], [2.0, 20.0], [4.0, 40.0], [5.0, 50.0]], dtype=np.float32),
)


def pairs(*rows: tuple[str, str]) -> pl.DataFrame:
    """Split-contract pairs with one play each."""
    users, tracks = zip(*rows, strict=True) if rows else ((), ())
    return pl.DataFrame(
        {"user_id": list(users), "track_id": list(tracks), "plays": [1] * len(users)},
        schema={"user_id": pl.String, "track_id": pl.String, "plays": pl.Int64},
    )


def test_rows_finds_each_track_in_the_table_and_marks_the_absent_ones():
    np.testing.assert_array_equal(TABLE.rows(["a", "x", "c", "a"]), [1, -1, 0, 1])
    assert TABLE.rows([]).shape == (0,)


def test_a_model_without_embeddings_ranks_the_sorted_candidates_and_no_vectors():
    catalogue = model_catalogue(recommender_class("popularity").from_options({}, 0), ["b", "a"], TABLE, False, 0)
    assert catalogue.track_ids.tolist() == ["a", "b"]
    assert catalogue.embeddings is None


def test_a_content_model_ranks_the_candidates_with_their_own_rows():
    catalogue = model_catalogue(recommender_class("knn").from_options({}, 0), ["b", "a"], TABLE, False, 0)
    assert catalogue.track_ids.tolist() == ["a", "b"]
    np.testing.assert_array_equal(catalogue.embeddings, [[1.0, 10.0], [2.0, 20.0]])


def test_the_shuffled_catalogue_permutes_rows_among_the_candidates_only():
    knn = recommender_class("knn").from_options({}, 0)
    candidates = ["a", "b", "c", "n1"]
    plain = model_catalogue(knn, candidates, TABLE, False, 0)
    shuffled = [model_catalogue(knn, candidates, TABLE, True, seed) for seed in range(5)]
    assert all(np.array_equal(s.track_ids, plain.track_ids) for s in shuffled)
    assert all(sorted(map(tuple, s.embeddings)) == sorted(map(tuple, plain.embeddings)) for s in shuffled)
    assert any(not np.array_equal(s.embeddings, plain.embeddings) for s in shuffled)
    np.testing.assert_array_equal(shuffled[3].embeddings, model_catalogue(knn, candidates, TABLE, True, 3).embeddings)


def test_a_candidate_without_an_embedding_or_a_missing_table_is_an_error():
    knn = recommender_class("knn").from_options({}, 0)
    with pytest.raises(ParameterError, match=r"content\.parquet: 2 candidate tracks have no embedding"):
        model_catalogue(knn, ["a", "x", "y"], TABLE, False, 0)
    with pytest.raises(ParameterError, match="model knn needs an embeddings table"):
        model_catalogue(knn, ["a"], None, False, 0)


def test_fitting_data_indexes_every_train_user_and_excludes_what_they_heard_before():
    catalogue = Catalogue.from_tracks(["c", "a", "b"])
    train = pairs(("u2", "b"), ("u1", "a"), ("u1", "b"))
    validation = pairs(("u1", "c"), ("u3", "a"))  # u3 has no train pair: a model cannot learn on it
    heard_before = pairs(("u2", "a"))
    fit, val = fitting_data(train, validation, catalogue, heard_before)
    assert fit.user_ids.tolist() == val.user_ids.tolist() == ["u1", "u2"]
    np.testing.assert_array_equal(fit.heard.toarray(), [[1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(fit.excluded.toarray(), [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(val.heard.toarray(), [[0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(val.excluded.toarray(), val.heard.toarray())  # nothing else left out of validation


def test_new_releases_are_the_sorted_cold_tracks_with_an_embedding(caplog):
    cold = pairs(("u1", "n2"), ("u2", "n1"), ("u1", "n3"), ("u2", "n2"))
    with caplog.at_level(logging.WARNING, logger="audiorec.recommenders.runs"):
        tracks, vectors = new_releases(cold, TABLE)
    assert tracks == ["n1", "n2"]
    np.testing.assert_array_equal(vectors, [[4.0, 40.0], [5.0, 50.0]])
    assert "1 new tracks have no embedding in content.parquet" in caplog.text
    tracks, vectors = new_releases(cold, None)
    assert tracks == ["n1", "n2", "n3"] and vectors.shape == (3, 0)


def test_shuffled_new_releases_permute_their_rows_among_themselves():
    cold = pairs(("u1", "a"), ("u1", "b"), ("u2", "c"), ("u2", "n1"), ("u3", "n2"))
    tracks, plain = new_releases(cold, TABLE)
    shuffled = [new_releases(cold, TABLE, shuffle=True, seed=seed) for seed in range(5)]
    assert all(s_tracks == tracks for s_tracks, _ in shuffled)
    assert all(sorted(map(tuple, s)) == sorted(map(tuple, plain)) for _, s in shuffled)
    assert any(not np.array_equal(s, plain) for _, s in shuffled)
