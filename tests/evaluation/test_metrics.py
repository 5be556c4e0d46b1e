"""Ranking metrics: agreement with ranx, worked examples, and the policies (missing users, ties, errors)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.evaluation.metrics import (
    METRICS,
    evaluate_recommendations,
    metric_columns,
    metrics_from_hits,
    ranking_metrics,
)

# ranx compiles with numba; its kernels emit a harmless type-safety warning about uint64 indices.
pytestmark = pytest.mark.filterwarnings("ignore:unsafe cast:Warning")


def _recommendations(rows: list[tuple[str, int, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"user_id": pl.String, "rank": pl.Int16, "track_id": pl.String, "score": pl.Float32},
        orient="row",
    )


def _truth(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(pairs, schema={"user_id": pl.String, "track_id": pl.String}, orient="row")


def _random_world(seed: int, n_users: int = 40, n_items: int = 300):
    """Random rankings with distinct scores, some shorter than the largest K, plus random relevant sets."""
    rng = np.random.default_rng(seed)
    items = np.array([f"t{i:04d}" for i in range(n_items)])
    recs, truth, qrels, run = [], [], {}, {}
    for u in range(n_users):
        user = f"u{u:03d}"
        relevant = rng.choice(items, size=int(rng.integers(1, 30)), replace=False)
        length = int(rng.integers(1, 80))
        ranked = rng.choice(items, size=length, replace=False)
        # Bias rankings toward relevant items so that hits happen at all depths.
        boost = rng.random(length) < 0.3
        pool = rng.choice(relevant, size=min(int(boost.sum()), relevant.size), replace=False)
        for position, item in zip(np.flatnonzero(boost), pool, strict=False):
            if item not in ranked:
                ranked[position] = item
        scores = np.sort(rng.random(length))[::-1] + np.arange(length, 0, -1)  # strictly decreasing
        recs += [(user, r + 1, str(t), float(s)) for r, (t, s) in enumerate(zip(ranked, scores, strict=True))]
        truth += [(user, str(t)) for t in relevant]
        qrels[user] = {str(t): 1 for t in relevant}
        run[user] = {str(t): float(s) for t, s in zip(ranked, scores, strict=True)}
    return _recommendations(recs), _truth(truth), qrels, run


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_ranx_per_user(seed: int) -> None:
    ranx = pytest.importorskip("ranx")
    recs, truth, qrels, run = _random_world(seed)
    ks = (1, 5, 10, 50)
    ours = evaluate_recommendations(recs, truth, ks)
    assert ours["Recall@50"].sum() > 0  # the comparison must exercise hits, not only zeros

    names = {"HitRate": "hit_rate", "Recall": "recall", "NDCG": "ndcg", "Precision": "precision", "MRR": "mrr"}
    ranx_metrics = [f"{name}@{k}" for k in ks for name in names.values()] + [f"ndcg_burges@{k}" for k in ks]
    ranx_run = ranx.Run(run)
    ranx.evaluate(ranx.Qrels(qrels), ranx_run, ranx_metrics, return_mean=False)
    users = ours["user_id"].to_list()
    for k in ks:
        for metric, name in names.items():
            expected = np.array([ranx_run.scores[f"{name}@{k}"][user] for user in users])
            np.testing.assert_allclose(ours[f"{metric}@{k}"].to_numpy(), expected, rtol=0, atol=1e-9)
        # With binary relevance Järvelin's gain (rel) and Burges' gain (2^rel - 1) coincide.
        burges = np.array([ranx_run.scores[f"ndcg_burges@{k}"][user] for user in users])
        np.testing.assert_allclose(ours[f"NDCG@{k}"].to_numpy(), burges, rtol=0, atol=1e-9)


def test_worked_example() -> None:
    recs = _recommendations(
        [
            # a: 2 relevant items (fewer than K=5), one hit at rank 2.
            ("a", 1, "n1", 0.9), ("a", 2, "x1", 0.8), ("a", 3, "n2", 0.7), ("a", 4, "n3", 0.6), ("a", 5, "n4", 0.5),
            # b: no hit at all.
            ("b", 1, "n1", 0.9), ("b", 2, "n2", 0.8), ("b", 3, "n3", 0.7), ("b", 4, "n4", 0.6), ("b", 5, "n5", 0.5),
            # c: 6 relevant items, hits at ranks 1 and 3.
            ("c", 1, "z1", 0.9), ("c", 2, "n1", 0.8), ("c", 3, "z3", 0.7), ("c", 4, "n2", 0.6), ("c", 5, "n3", 0.5),
        ]
    )  # fmt: skip
    relevant_c = [("c", t) for t in ("z1", "z3", "z7", "z8", "z9", "z10")]
    truth = _truth([("a", "x1"), ("a", "x2"), ("b", "y9"), *relevant_c])
    out = evaluate_recommendations(recs, truth, [5, 1, 10])
    assert out.columns == ["user_id", *metric_columns([1, 5, 10])]
    assert out["user_id"].to_list() == ["a", "b", "c"]
    rows = {row["user_id"]: row for row in out.iter_rows(named=True)}

    # a @5: hits=1, |rel|=2. DCG = 1/log2(3) = 0.63093; IDCG over min(5, 2) = 2 ranks = 1 + 0.63093 = 1.63093.
    a = rows["a"]
    assert a["HitRate@5"] == 1.0
    assert a["Recall@5"] == pytest.approx(1 / 2)
    assert a["Precision@5"] == pytest.approx(1 / 5)
    assert a["MRR@5"] == pytest.approx(1 / 2)
    assert a["NDCG@5"] == pytest.approx(0.6309297535714575 / 1.6309297535714575)  # 0.38685
    # @1 the hit at rank 2 is cut off.
    assert [a[f"{m}@1"] for m in METRICS] == [0.0] * 5
    # @10 the ranking has only 5 items: the 5 missing positions are non-hits, Precision divides by 10.
    assert a["Precision@10"] == pytest.approx(1 / 10)
    assert a["Recall@10"] == pytest.approx(1 / 2)
    assert a["NDCG@10"] == pytest.approx(0.38685280723454163)

    assert [rows["b"][name] for name in metric_columns([1, 5, 10])] == [0.0] * 15

    # c @5: hits=2, |rel|=6. DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5.
    # IDCG over min(5, 6) = 5 ranks = 1 + 0.63093 + 0.5 + 0.43068 + 0.38685 = 2.94846; NDCG = 0.50874.
    c = rows["c"]
    assert c["HitRate@5"] == 1.0
    assert c["Recall@5"] == pytest.approx(2 / 6)  # divided by |rel|, not by min(K, |rel|) = 5
    assert c["Precision@5"] == pytest.approx(2 / 5)
    assert c["MRR@5"] == 1.0
    assert c["NDCG@5"] == pytest.approx(1.5 / 2.9484591188793923)
    assert c["NDCG@5"] == pytest.approx(0.5087403079104241)
    # @1: one hit at rank 1, ideal DCG of one item is 1.
    assert [c[f"{m}@1"] for m in METRICS] == pytest.approx([1.0, 1 / 6, 1.0, 1.0, 1.0])


def test_users_without_recommendations_get_zeros_and_extra_users_are_ignored() -> None:
    recs = _recommendations([("a", 1, "x", 1.0), ("ghost", 1, "x", 1.0)])
    truth = _truth([("a", "x"), ("b", "y"), ("b", "z")])
    out = evaluate_recommendations(recs, truth, [1, 3])
    assert out["user_id"].to_list() == ["a", "b"]
    assert all(out.schema[name] == pl.Float64 for name in out.columns[1:])
    assert out.filter(pl.col("user_id") == "a").row(0)[1:] == pytest.approx([1.0] * 5 + [1.0, 1.0, 1.0, 1 / 3, 1.0])
    assert out.filter(pl.col("user_id") == "b").row(0)[1:] == tuple([0.0] * 10)


def test_rank_column_is_authoritative_under_tied_scores() -> None:
    truth = _truth([("a", "hit")])
    # Equal scores, rows in reverse order: only the rank column says which item comes first.
    second = _recommendations([("a", 2, "hit", 0.5), ("a", 1, "miss", 0.5)])
    first = _recommendations([("a", 2, "miss", 0.5), ("a", 1, "hit", 0.5)])
    out_second = evaluate_recommendations(second, truth, [1, 2]).row(0, named=True)
    out_first = evaluate_recommendations(first, truth, [1, 2]).row(0, named=True)
    assert (out_second["HitRate@1"], out_second["MRR@2"]) == (0.0, 0.5)
    assert (out_first["HitRate@1"], out_first["MRR@2"]) == (1.0, 1.0)
    # Gaps in the ranks are empty positions, not re-numbered.
    gap = evaluate_recommendations(_recommendations([("a", 3, "hit", 0.5)]), truth, [2, 3]).row(0, named=True)
    assert (gap["HitRate@2"], gap["MRR@3"]) == (0.0, pytest.approx(1 / 3))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a", 1, "x", 1.0), ("a", 1, "y", 0.5)], "same rank twice"),
        ([("a", 1, "x", 1.0), ("a", 2, "x", 0.5)], "same track twice"),
        ([("a", 0, "x", 1.0)], "rank < 1"),
    ],
)
def test_invalid_recommendations(rows, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        evaluate_recommendations(_recommendations(rows), _truth([("a", "x")]), [1])


@pytest.mark.parametrize("ks", [[0], [-1, 5], [], [2.5]])
def test_invalid_ks(ks) -> None:
    recs = _recommendations([("a", 1, "x", 1.0)])
    with pytest.raises(ParameterError, match="ks"):
        evaluate_recommendations(recs, _truth([("a", "x")]), ks)


def test_missing_column() -> None:
    recs = _recommendations([("a", 1, "x", 1.0)]).drop("rank")
    with pytest.raises(ParameterError, match="rank"):
        evaluate_recommendations(recs, _truth([("a", "x")]), [1])


def test_metrics_from_hits_core() -> None:
    hits = np.array([[True, False, True], [False, False, False]])
    out = metrics_from_hits(hits, np.array([4, 1]), [2, 3, 5])
    assert list(out) == metric_columns([2, 3, 5])
    assert out["Recall@3"].tolist() == pytest.approx([2 / 4, 0.0])
    assert out["Precision@5"].tolist() == pytest.approx([2 / 5, 0.0])
    assert out["NDCG@3"][0] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3) + 0.5))
    assert all(values.dtype == np.float64 for values in out.values())
    with pytest.raises(ParameterError, match="no relevant item"):
        metrics_from_hits(hits, np.array([4, 0]), [1])
    with pytest.raises(ParameterError, match="more hits than n_relevant"):
        metrics_from_hits(hits, np.array([1, 1]), [1])


def test_ranking_metrics_matches_table_front_end() -> None:
    recs, truth, _, _ = _random_world(3, n_users=15, n_items=120)
    ks = (1, 5, 10, 50)
    expected = evaluate_recommendations(recs, truth, ks)
    codes = {f"t{i:04d}": i for i in range(120)}
    users = expected["user_id"].to_list()
    width = int(recs["rank"].max())
    ranked = np.full((len(users), width), -1, dtype=np.int64)
    for user, rank, track in recs.select("user_id", "rank", "track_id").iter_rows():
        ranked[users.index(user), rank - 1] = codes[track]
    by_user = truth.group_by("user_id").agg("track_id").rows_by_key("user_id", unique=True)
    relevant = [np.array([codes[t] for t in by_user[user][0]]) for user in users]
    out = ranking_metrics(ranked, relevant, ks)
    for name, values in out.items():
        np.testing.assert_allclose(values, expected[name].to_numpy(), rtol=0, atol=1e-12)
    with pytest.raises(ParameterError, match="more than once"):
        ranking_metrics(np.array([[1, 1]]), [np.array([1])], [1])
