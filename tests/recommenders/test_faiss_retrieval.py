"""FAISS retrieval: Flat equals the exact backend, ANN indexes recall it, heard items never come back."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import faiss  # a test dependency (the test extra), so that CI runs these tests
import numpy as np
import pytest
import scipy.sparse as sp
import yaml
from snakemake.utils import validate

from audiorec.errors import ParameterError
from audiorec.plan import Plan
from audiorec.recommenders import RECOMMENDERS, faiss_retrieval, recommender_class
from audiorec.recommenders.contract import check_ranking
from audiorec.recommenders.inner_product import InnerProductScoring, top_k_inner_product
from audiorec.recommenders.retrieval import heard_matrix
from audiorec.recommenders.retrieval_options import EXACT, RetrievalOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[2]
FLAT = RetrievalOptions(backend="faiss", index="Flat")


def exact(users: np.ndarray, items: np.ndarray, excluded: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    return top_k_inner_product(users, items, excluded, k)


def histories(rng: np.random.Generator, sizes: list[int], n_items: int) -> sp.csr_matrix:
    """Users × items heard matrix: user ``u`` heard ``sizes[u]`` distinct random items."""
    rows = np.repeat(np.arange(len(sizes)), sizes)
    columns = np.concatenate([rng.choice(n_items, size, replace=False) for size in sizes])
    return heard_matrix(rows, columns, len(sizes), n_items)


@pytest.fixture
def tied_world(rng):
    """Small-integer vectors: every inner product is an exact integer whatever the summation order, so FAISS's
    and torch's scores agree to the bit and ties (thousands of them) are real. 2600 items, K = 50; histories of
    0-300 items, longer than the 2048-neighbour fetch cap, all items but 10 (padding), and every item."""
    n_items, dim = 2600, 6
    users = rng.integers(-2, 3, (64, dim)).astype(np.float32)
    items = rng.integers(-2, 3, (n_items, dim)).astype(np.float32)
    sizes = [int(size) for size in rng.integers(0, 300, 64)]
    sizes[:6] = [2100, 2500, n_items - 10, n_items - 49, n_items, 0]
    return users, items, histories(rng, sizes, n_items)


def test_flat_equals_the_exact_backend_with_ties_long_histories_and_padding(tied_world):
    users, items, excluded = tied_world
    k = 50
    ranking = faiss_retrieval.search_unheard(users, items, excluded, k, FLAT)
    want_scores, want_items = exact(users, items, excluded, k)
    np.testing.assert_array_equal(ranking.items, want_items)
    np.testing.assert_array_equal(ranking.scores, want_scores)
    check_ranking("knn", np.arange(len(users)), excluded, ranking.scores, ranking.items, k)
    assert (ranking.items[2] == -1).sum() == 40 and (ranking.items[3] == -1).sum() == 1
    assert (ranking.items[4] == -1).all() and np.isneginf(ranking.scores[4]).all()
    # Histories over the fetch cap skip the index; most users are settled by it (ties at the cut are not).
    assert {0, 1, 2, 3, 4} <= set(ranking.exact_users.tolist())
    assert len(ranking.exact_users) < len(users) / 2


def test_the_exclusion_does_not_depend_on_the_fetch_cap(tied_world, monkeypatch):
    """With a cap of 64 neighbours nearly every history exceeds it, and the ranking is still the exact one."""
    users, items, excluded = tied_world
    monkeypatch.setattr(faiss_retrieval, "FETCH_CAP", 64)
    monkeypatch.setattr(faiss_retrieval, "MIN_FETCH", 16)
    ranking = faiss_retrieval.search_unheard(users, items, excluded, 10, FLAT)
    want_scores, want_items = exact(users, items, excluded, 10)
    np.testing.assert_array_equal(ranking.items, want_items)
    np.testing.assert_array_equal(ranking.scores, want_scores)
    short = np.diff(excluded.indptr) + 11 <= 64
    assert set(ranking.exact_users.tolist()) >= set(np.flatnonzero(~short).tolist())


def test_continuous_scores_match_to_float_rounding_and_need_no_fallback(rng):
    users = rng.normal(size=(200, 32)).astype(np.float32)
    items = rng.normal(size=(3000, 32)).astype(np.float32)
    excluded = histories(rng, [int(size) for size in rng.integers(0, 400, 200)], 3000)
    ranking = faiss_retrieval.search_unheard(users, items, excluded, 50, FLAT)
    want_scores, want_items = exact(users, items, excluded, 50)
    np.testing.assert_array_equal(ranking.items, want_items)
    np.testing.assert_allclose(ranking.scores, want_scores, rtol=1e-5, atol=1e-5)
    assert len(ranking.exact_users) == 0
    assert ranking.scores.dtype == np.float32 and ranking.items.dtype == np.int64


def test_k_larger_than_the_catalogue_pads_like_the_exact_backend(rng):
    users = rng.integers(-1, 2, (9, 4)).astype(np.float32)
    items = rng.integers(-1, 2, (30, 4)).astype(np.float32)
    excluded = histories(rng, [0, 3, 29, 30, 12, 1, 0, 5, 7], 30)
    ranking = faiss_retrieval.search_unheard(users, items, excluded, 50, FLAT)
    want_scores, want_items = exact(users, items, excluded, 50)
    np.testing.assert_array_equal(ranking.items, want_items)
    np.testing.assert_array_equal(ranking.scores, want_scores)
    assert ((ranking.items >= 0).sum(axis=1) == 30 - np.diff(excluded.indptr)).all()


def test_fetch_sizes_are_powers_of_two_within_the_cap_or_exact():
    fetch = faiss_retrieval.fetch_sizes(np.array([0, 13, 14, 1997, 1998, 5000]), 50, 100_000)
    assert fetch.tolist() == [64, 64, 128, 2048, 0, 0]  # need = 50 + h + 1
    assert faiss_retrieval.fetch_sizes(np.array([0, 5000]), 50, 300).tolist() == [64, 300]


def clustered(rng: np.random.Generator, n_items: int, n_users: int, dim: int = 16, clusters: int = 40):
    """Items and users around shared cluster centres, as embeddings of music styles are."""
    centres = rng.normal(size=(clusters, dim)).astype(np.float32) * 3
    items = centres[rng.integers(0, clusters, n_items)] + rng.normal(size=(n_items, dim)).astype(np.float32)
    users = centres[rng.integers(0, clusters, n_users)] + rng.normal(size=(n_users, dim)).astype(np.float32)
    return users, items


@pytest.mark.parametrize(
    ("index", "nprobe", "bound"), [("IVF64,Flat", 8, 0.9), ("HNSW32", 1, 0.9), ("IVF64,Flat", 1, 0.3)]
)
def test_ann_indexes_recall_the_exact_ranking_and_never_return_heard_items(rng, index, nprobe, bound):
    users, items = clustered(rng, 4000, 300)
    sizes = [int(size) for size in rng.integers(0, 300, 300)]
    sizes[:2] = [2500, 3990]
    excluded = histories(rng, sizes, 4000)
    options = RetrievalOptions(backend="faiss", index=index, nprobe=nprobe, ef_search=64)
    k = 50
    ranking = faiss_retrieval.search_unheard(users, items, excluded, k, options)
    check_ranking("knn", np.arange(len(users)), excluded, ranking.scores, ranking.items, k)
    assert ((ranking.items >= 0).sum(axis=1) == np.minimum(k, 4000 - np.array(sizes))).all()
    _, want = exact(users, items, excluded, k)
    found = [
        len(set(got) & set(ref[ref >= 0])) / (ref >= 0).sum() for got, ref in zip(ranking.items, want, strict=True)
    ]
    recall = float(np.mean(found))
    assert recall >= bound, recall
    assert len(ranking.exact_users) < len(users) / 2  # the index, not the exact fallback, ranked most users
    if index.startswith("IVF") and nprobe == 1:
        assert recall < 0.99  # one list of 64 is a real approximation, and the fallback did not hide it


def test_ivf_training_is_seeded_so_rankings_repeat(rng):
    users, items = clustered(rng, 3000, 100)
    excluded = histories(rng, [10] * 100, 3000)
    options = RetrievalOptions(backend="faiss", index="IVF32,Flat", nprobe=2)
    first = faiss_retrieval.search_unheard(users, items, excluded, 20, options)
    second = faiss_retrieval.search_unheard(users, items, excluded, 20, options)
    np.testing.assert_array_equal(first.items, second.items)
    with pytest.raises(ParameterError, match="needs at least 32 items"):
        faiss_retrieval.search_unheard(users, items[:20], excluded[:, :20], 5, options)


def test_options_are_checked_and_record_what_decides_a_ranking(monkeypatch):
    assert EXACT.recorded() == {"backend": "exact"}
    ivf = RetrievalOptions.from_config({"backend": "faiss", "index": "IVF1024,Flat", "nprobe": 16})
    assert ivf.recorded() == {"backend": "faiss", "index": "IVF1024,Flat", "nprobe": 16}
    assert RetrievalOptions.from_config(ivf.recorded()) == ivf
    assert RetrievalOptions(backend="faiss", index="HNSW32").recorded()["ef_search"] == 128
    assert RetrievalOptions(backend="faiss").recorded() == {"backend": "faiss", "index": "Flat"}
    for block, message in [
        ({"backend": "annoy"}, "backend must be one of"),
        ({"backend": "faiss", "index": "IVF1024"}, "not a FAISS index"),
        ({"backend": "faiss", "index": "LSH"}, "not a FAISS index"),
        ({"backend": "faiss", "index": "IVF16,Flat", "nprobe": 32}, "exceeds the 16 lists"),
        ({"ef_search": 0}, "ef_search must be an integer >= 1"),
        ({"nprobes": 3}, "unknown key"),
    ]:
        with pytest.raises(ParameterError, match=message):
            RetrievalOptions.from_config(block)
    for index in ("IVF64,SQ8", "HNSW16,Flat", "IVF64_HNSW8,Flat", "IVF64,PQ4x8"):  # what the grammar admits,
        faiss.index_factory(16, index, faiss.METRIC_INNER_PRODUCT)  # FAISS's factory builds
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else real(name, *a))
    EXACT.check_installed()
    with pytest.raises(ParameterError, match=r"pip install 'audiorec\[faiss\]'"):
        ivf.check_installed()


def test_the_trait_names_exactly_the_models_that_rank_by_inner_product():
    for kind in RECOMMENDERS.entries:
        declared = RECOMMENDERS.traits(kind).ranks_by_inner_product
        assert declared == issubclass(recommender_class(kind), InnerProductScoring), kind
    assert not RECOMMENDERS.traits("ease").ranks_by_inner_product and RECOMMENDERS.traits("knn").ranks_by_inner_product


def plan_config(retrieval: dict | None) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if retrieval is not None:
        config["retrieval"] = retrieval
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def test_the_plan_checks_the_setting_and_hands_it_to_inner_product_rankings_only(monkeypatch):
    plan = Plan.from_config(plan_config(None))
    assert plan.retrieval == EXACT and plan.retrieval_param("knn") == '{"backend":"exact"}'
    config = plan_config({"backend": "faiss", "index": "HNSW32", "ef_search": 64})
    plan = Plan.from_config(config)
    plan.check()
    assert json.loads(plan.retrieval_param("knn")) == {"backend": "faiss", "index": "HNSW32", "ef_search": 64}
    assert json.loads(plan.retrieval_param("shallow")) == json.loads(plan.retrieval_param("knn"))
    assert plan.retrieval_param("popularity") is None
    bad = copy.deepcopy(config)
    bad["retrieval"]["index"] = "IVF8,Flat"
    bad["retrieval"]["nprobe"] = 9
    with pytest.raises(ParameterError, match="nprobe 9 exceeds the 8 lists"):
        Plan.from_config(bad)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "faiss" else real(name, *a))
    with pytest.raises(ParameterError, match="needs the faiss package"):
        plan.check()


def test_a_ranking_job_ranks_through_faiss_and_records_it(neural_world, tmp_path_factory, tmp_path, monkeypatch):
    from neural_world import run_paths, world_files

    from audiorec.stages import recommend
    from audiorec.storage.tables import read_metadata, read_table

    folder = world_files(tmp_path_factory, "faiss")
    paths = run_paths(folder, "val")
    embeddings = folder / "embeddings.parquet"
    searched = []
    real = faiss_retrieval.search_unheard
    monkeypatch.setattr(faiss_retrieval, "search_unheard", lambda *a, **kw: searched.append(a[4]) or real(*a, **kw))
    outputs = {}
    flat = json.dumps(FLAT.recorded())
    for name, retrieval in [("exact", None), ("flat", flat)]:
        outputs[name] = tmp_path / f"{name}.parquet"
        recommend({"kind": "knn"}, 0, paths, [paths["val"]], embeddings, 20, outputs[name], retrieval=retrieval)
    assert searched == [FLAT]
    assert read_metadata(outputs["flat"])["retrieval"] == {"backend": "faiss", "index": "Flat"}
    assert read_metadata(outputs["exact"])["retrieval"] == {"backend": "exact"}
    exact_rows = read_table(outputs["exact"]).sort("user_id", "rank")
    flat_rows = read_table(outputs["flat"]).sort("user_id", "rank")
    assert exact_rows.select("user_id", "track_id", "rank").equals(flat_rows.select("user_id", "track_id", "rank"))
    with pytest.raises(ParameterError, match="popularity does not rank by inner product"):
        recommend({"kind": "popularity"}, 0, paths, [paths["val"]], None, 20, tmp_path / "p.parquet", retrieval=flat)


def test_without_faiss_the_package_imports_and_ranks_exactly_and_faiss_is_a_clear_error():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["faiss"] = None  # import faiss now raises ImportError
        import numpy as np
        from audiorec.errors import ParameterError
        from audiorec.recommenders.inner_product import top_k_inner_product
        from audiorec.recommenders.retrieval import heard_matrix
        from audiorec.recommenders.retrieval_options import RetrievalOptions
        excluded = heard_matrix(np.array([0]), np.array([2]), 2, 3)
        users, items = np.eye(2, 3, dtype=np.float32), np.eye(3, dtype=np.float32)
        print(top_k_inner_product(users, items, excluded, 2)[1].tolist())
        try:
            top_k_inner_product(users, items, excluded, 2, retrieval=RetrievalOptions(backend="faiss"))
        except ParameterError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ranked, message = done.stdout.strip().splitlines()
    assert ranked == "[[0, 1], [1, 0]]"
    assert "needs the faiss package" in message and "audiorec[faiss]" in message
