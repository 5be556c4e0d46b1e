"""Beyond-accuracy metrics: hand-computed cases, the edge cases, the table front ends, and RecBole's numbers."""

from __future__ import annotations

import importlib.util
import math
import sys
import types
from collections import Counter

import numpy as np
import polars as pl
import pytest

from audiorec.errors import ParameterError
from audiorec.evaluation.beyond_accuracy import (
    ItemReference,
    average_popularity,
    coverage,
    gini,
    gini_index,
    intra_list_diversity,
    novelty,
    per_ranking_beyond_accuracy,
    per_user_beyond_accuracy,
    self_information,
)

# Three users over five items a..e (codes 0..4), lists of width 3: u0 a full list, u1 a short one holding an item
# nobody heard in train (d), u2 a single item. Four train users heard a, two b, one c, none d, one e.
RANKED = np.array([[0, 1, 2], [3, 4, -1], [2, -1, -1]])
POPULARITY = np.array([4, 2, 1, 0, 1])
N_TRAIN_USERS = 4
# a and b orthogonal, c between them (cos 1/√2 with each), d and e opposite.
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])


def test_average_popularity_averages_the_items_a_list_has_up_to_k():
    arp = average_popularity(RANKED, POPULARITY, [1, 3, 5])
    np.testing.assert_allclose(arp["ARP@1"], [4, 0, 1])
    np.testing.assert_allclose(arp["ARP@3"], [7 / 3, 1 / 2, 1])  # u1: d (0) and e (1); u2: c alone
    np.testing.assert_allclose(arp["ARP@5"], arp["ARP@3"])  # K beyond the lists' width: the same items


def test_novelty_counts_an_item_nobody_heard_as_heard_by_one_user():
    np.testing.assert_allclose(self_information(POPULARITY, N_TRAIN_USERS), [0, 1, 2, 2, 2])
    scores = novelty(RANKED, POPULARITY, N_TRAIN_USERS, [1, 3])
    np.testing.assert_allclose(scores["Novelty@1"], [0, 2, 2])  # d: −log2(1/4), not infinity
    np.testing.assert_allclose(scores["Novelty@3"], [1, 2, 2])
    with pytest.raises(ParameterError, match="exceeds"):
        novelty(RANKED, POPULARITY, 3, [1])


def test_intra_list_diversity_is_the_mean_pairwise_cosine_distance_and_null_below_two_items():
    ild = intra_list_diversity(RANKED, VECTORS, [1, 2, 3, 10])
    assert np.isnan(ild["ILD@1"]).all()  # one item has no pair
    np.testing.assert_allclose(ild["ILD@2"][:2], [1.0, 2.0])  # a ⟂ b; d opposite e (scale ignored)
    np.testing.assert_allclose(ild["ILD@3"][:2], [1 - (0 + 2 / math.sqrt(2)) / 3, 2.0])
    np.testing.assert_allclose(ild["ILD@10"][:2], ild["ILD@3"][:2])
    assert np.isnan(ild["ILD@3"][2])  # u2 has one item at every K


def test_intra_list_diversity_leaves_out_items_without_a_direction():
    vectors = VECTORS.copy()
    vectors[1] = 0.0  # b: a zero vector
    vectors[4] = np.nan  # e: no vector in the reference space
    ild = intra_list_diversity(RANKED, vectors, [3])["ILD@3"]
    assert ild[0] == pytest.approx(1 - 1 / math.sqrt(2))  # only the pair (a, c) is left
    assert np.isnan(ild[1])  # d alone
    same = intra_list_diversity(np.array([[0, 2]]), np.array([[1.0, 1.0], [3.0, 3.0], [2.0, 2.0]]), [2])["ILD@2"]
    assert same[0] == pytest.approx(0.0, abs=1e-12)  # identical directions


def test_intra_list_diversity_in_blocks_equals_the_pairwise_loop(rng, monkeypatch):
    import audiorec.evaluation.beyond_accuracy as module

    vectors = rng.normal(size=(40, 6))
    ranked = np.stack([rng.permutation(40)[:12] for _ in range(9)])
    ranked[3, 7:] = -1
    monkeypatch.setattr(module, "_BLOCK_ELEMENTS", 100)  # blocks of one user
    ild = intra_list_diversity(ranked, vectors, [5, 12])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for row, items in enumerate(ranked):
        for k in (5, 12):
            top = unit[items[:k][items[:k] >= 0]]
            cosines = (top @ top.T)[np.triu_indices(len(top), 1)]
            assert ild[f"ILD@{k}"][row] == pytest.approx(1 - cosines.mean())


def test_the_same_items_in_another_order_give_the_same_bits(rng):
    """A paired test over users must see lists holding the same top K in another order as equal, not as a rounding
    residue it could call significant (every cold-start list at K = the number of new releases is such a list)."""
    vectors, popularity = rng.normal(size=(30, 5)), rng.integers(1, 50, 30)
    ranked = np.stack([rng.permutation(30)[:12] for _ in range(20)])
    reordered = np.stack([np.concatenate([rng.permutation(row[:10]), rng.permutation(row[10:])]) for row in ranked])
    for scores in (
        lambda r: intra_list_diversity(r, vectors, [10, 12]),
        lambda r: novelty(r, popularity, 60, [10, 12]),
        lambda r: average_popularity(r, popularity / 7, [10, 12]),
    ):
        first, second = scores(ranked), scores(reordered)
        assert all(np.array_equal(first[name], second[name]) for name in first)


def test_coverage_and_gini_count_every_candidate_in_every_top_k():
    assert coverage(RANKED, 5, [1, 2, 3]) == {"Coverage@1": 0.6, "Coverage@2": 1.0, "Coverage@3": 1.0}
    scores = gini_index(RANKED, 5, [1, 2, 3])
    assert scores["Gini@1"] == pytest.approx(6 / 15)  # exposures 0, 0, 1, 1, 1
    assert scores["Gini@2"] == pytest.approx(0.0)  # every item once
    assert scores["Gini@3"] == pytest.approx(4 / 30)  # c twice, the others once
    assert gini(np.array([0, 0, 0, 7])) == pytest.approx(3 / 4)  # one item takes every slot: (n - 1) / n
    assert math.isnan(gini(np.zeros(4)))
    with pytest.raises(ParameterError, match="outside"):
        coverage(RANKED, 4, [3])


def test_empty_lists_have_no_popularity_or_novelty():
    empty = np.full((2, 3), -1)
    assert np.isnan(average_popularity(empty, POPULARITY, [3])["ARP@3"]).all()
    assert np.isnan(novelty(empty, POPULARITY, N_TRAIN_USERS, [3])["Novelty@3"]).all()
    assert coverage(empty, 5, [3]) == {"Coverage@3": 0.0}


def _recommendations(rows: list[tuple[str, int, str]]) -> pl.DataFrame:
    schema = {"user_id": pl.String, "rank": pl.Int16, "track_id": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(pl.lit(1.0, pl.Float32).alias("score"))


def _train() -> pl.DataFrame:
    heard = {"a": ["v1", "v2", "v3", "v4"], "b": ["v1", "v2"], "c": ["v3"], "e": ["v4"]}
    pairs = [(user, track) for track, users in heard.items() for user in users]
    return pl.DataFrame(pairs, schema={"user_id": pl.String, "track_id": pl.String}, orient="row")


def test_the_table_front_end_scores_each_user_and_nulls_what_is_undefined():
    items = ItemReference.build(_train(), ["a", "b", "c", "d", "e"], VECTORS)
    assert items.n_train_users == 4 and items.popularity.tolist() == [4, 2, 1, 0, 1]
    lists = [("u0", 1, "a"), ("u0", 2, "b"), ("u0", 3, "c"), ("u1", 1, "d"), ("u1", 3, "e"), ("u2", 1, "c")]
    recs = _recommendations([*lists, ("u2", 2, "x"), ("other", 1, "a")])  # x: unknown; other: not scored
    table = per_user_beyond_accuracy(recs, ["u2", "u0", "u1", "nobody"], items, [1, 3])
    assert table.columns == ["user_id", "ARP@1", "Novelty@1", "ILD@1", "ARP@3", "Novelty@3", "ILD@3"]
    rows = {row["user_id"]: row for row in table.iter_rows(named=True)}
    assert table["user_id"].to_list() == ["u2", "u0", "u1", "nobody"]
    assert rows["u0"]["ARP@3"] == pytest.approx(7 / 3) and rows["u0"]["Novelty@3"] == pytest.approx(1.0)
    assert rows["u1"]["ARP@3"] == pytest.approx(0.5) and rows["u1"]["ILD@3"] == pytest.approx(2.0)  # rank gap
    assert rows["u2"]["ARP@3"] == pytest.approx(0.5) and rows["u2"]["Novelty@3"] == pytest.approx(2.0)  # x: pop 0
    assert rows["u2"]["ILD@3"] is None  # x has no vector: c is alone
    assert all(rows["nobody"][name] is None for name in table.columns[1:])
    no_space = per_user_beyond_accuracy(recs, ["u0"], ItemReference.build(_train()), [3])
    assert no_space.columns == ["user_id", "ARP@3", "Novelty@3"]


def test_the_ranking_front_end_measures_the_lists_of_the_given_users_over_the_candidates():
    recs = _recommendations([("u0", 1, "a"), ("u0", 2, "b"), ("u1", 1, "a"), ("other", 1, "c")])
    scores = per_ranking_beyond_accuracy(recs, ["u0", "u1"], ["a", "b", "c", "d"], [1, 2])
    assert scores["Coverage@1"] == 0.25 and scores["Coverage@2"] == 0.5
    assert scores["Gini@1"] == pytest.approx(gini(np.array([2, 0, 0, 0])))
    assert scores["Gini@2"] == pytest.approx(gini(np.array([2, 1, 0, 0])))
    with pytest.raises(ParameterError, match="not candidates"):
        per_ranking_beyond_accuracy(recs, ["u0"], ["a"], [2])
    nothing = per_ranking_beyond_accuracy(recs.clear(), ["u0"], [], [2])
    assert all(math.isnan(value) for value in nothing.values())


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("u0", 1, "a"), ("u0", 1, "b")], "same rank twice"),
        ([("u0", 1, "a"), ("u0", 2, "a")], "same track twice"),
        ([("u0", 0, "a")], "1-based"),
    ],
)
def test_a_list_that_repeats_a_rank_or_a_track_is_refused(rows, message):
    items = ItemReference.build(_train())
    with pytest.raises(ParameterError, match=message):
        per_user_beyond_accuracy(_recommendations(rows), ["u0"], items, [2])
    with pytest.raises(ParameterError, match=message):
        per_ranking_beyond_accuracy(_recommendations(rows), ["u0"], ["a", "b"], [2])


# RecBole ---------------------------------------------------------------------------------------------------------

N_USERS, N_ITEMS, K_MAX, KS = 60, 97, 20, [1, 5, 10, 20]
RECBOLE_1_2_1 = {
    "itemcoverage@1": 0.061855670103,
    "itemcoverage@5": 0.309278350515,
    "itemcoverage@10": 0.618556701031,
    "itemcoverage@20": 0.989690721649,
    "averagepopularity@1": 9.766666666667,
    "averagepopularity@5": 10.783333333333,
    "averagepopularity@10": 10.961666666667,
    "averagepopularity@20": 10.950833333333,
    "giniindex@1": 0.94295532646,
    "giniindex@5": 0.803505154639,
    "giniindex@10": 0.635979381443,
    "giniindex@20": 0.366632302405,
}
"""RecBole 1.2.1's ``ItemCoverage``, ``AveragePopularity`` and ``GiniIndex`` (``metric_decimal_place: 12``) of
:func:`_recbole_world`, computed with RecBole's own classes (``recbole.evaluator.metrics`` on a
``recbole.evaluator.collector.DataStruct`` holding ``rec.items``, ``data.num_items`` and ``data.count_items``).
:func:`test_recbole_agrees_live` recomputes them wherever RecBole is installed."""


def _recbole_world() -> tuple[np.ndarray, np.ndarray]:
    """Full lists of 20 of 97 items for 60 users, arithmetic (no random stream that a NumPy release could change):
    user u starts at item u² mod 11 and steps by 1 + u mod 6, so the first ranks crowd onto a few items and the
    exposure is unequal; popularity 37i mod 23 gives some items zero train listeners."""
    users, ranks = np.arange(N_USERS)[:, None], np.arange(K_MAX)[None, :]
    ranked = ((users * users) % 11 + ranks * (1 + users % 6)) % N_ITEMS
    return ranked, (np.arange(N_ITEMS) * 37) % 23


def _ours() -> dict[str, float]:
    ranked, popularity = _recbole_world()
    ours = {f"itemcoverage@{k}": value for k, value in zip(KS, coverage(ranked, N_ITEMS, KS).values(), strict=True)}
    arp = average_popularity(ranked, popularity, KS)
    ours |= {f"averagepopularity@{k}": float(arp[f"ARP@{k}"].mean()) for k in KS}
    return ours | {f"giniindex@{k}": gini_index(ranked, N_ITEMS, [k])[f"Gini@{k}"] for k in KS}


def test_recbole_published_numbers_are_reproduced():
    """Our Coverage@K, the mean over users of our ARP@K and our Gini@K equal RecBole 1.2.1's ItemCoverage,
    AveragePopularity and GiniIndex on the same rankings and popularity vector (RecBole's outputs pinned above)."""
    assert _ours() == pytest.approx(RECBOLE_1_2_1, abs=1e-11)


def _import_recbole_metrics() -> types.ModuleType:
    """``recbole.evaluator.metrics``, installed with ``pip install --no-deps recbole==1.2.1 texttable colorama``.

    RecBole's package imports ``torch.utils.tensorboard`` for its training logger, which needs TensorBoard and
    its server stack; the metrics never touch it, so an empty stand-in is put in its place for the import only.
    """
    if importlib.util.find_spec("recbole") is None:
        pytest.skip("RecBole is not installed (pip install --no-deps recbole==1.2.1 texttable==1.7.0 colorama)")
    name = "torch.utils.tensorboard"
    if name in sys.modules or importlib.util.find_spec("tensorboard") is not None:
        return importlib.import_module("recbole.evaluator.metrics")
    stand_in = types.ModuleType(name)
    stand_in.SummaryWriter = object
    sys.modules[name] = stand_in
    try:
        return importlib.import_module("recbole.evaluator.metrics")
    finally:
        del sys.modules[name]


def test_recbole_agrees_live():
    """RecBole's own classes on the same rankings give the pinned numbers, and so ours."""
    import torch

    metrics = _import_recbole_metrics()
    from recbole.evaluator.collector import DataStruct

    ranked, popularity = _recbole_world()
    data = DataStruct()
    data.set("rec.items", torch.from_numpy(ranked))
    data.set("data.num_items", N_ITEMS)
    data.set("data.count_items", Counter({item: int(count) for item, count in enumerate(popularity) if count}))
    config = {"topk": KS, "metric_decimal_place": 12}
    theirs = {}
    for metric in (metrics.ItemCoverage, metrics.AveragePopularity, metrics.GiniIndex):
        theirs |= {key: float(value) for key, value in metric(config).calculate_metric(data).items()}
    assert theirs == pytest.approx(RECBOLE_1_2_1, abs=1e-12)
    assert _ours() == pytest.approx(theirs, abs=1e-11)
