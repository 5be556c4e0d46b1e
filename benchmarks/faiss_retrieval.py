"""Exact top-K against FAISS Flat and an IVF index: time and recall@50, heard items removed exactly.

Two synthetic catalogues, each ranked side by side in one run by the three backends of
``top_k_inner_product`` (``retrieval: exact``, ``faiss`` with ``Flat``, ``faiss`` with ``IVF…,Flat``):

* ``onion``: 56,193 items × 17,053 users × 768-d, the size of Music4All-Onion's train split (Tamm & Aljanaki
  2024, Table 2) at the width of MERT-95M's layers;
* ``million``: 1,000,000 items × 50,000 users × 200-d.

Items are unit vectors around cluster centres (styles); each user draws a lognormal number of listens (median
~300; 2 % of the users 2,500 to 5,000, most of them beyond FAISS's 2048-neighbour fetch once repeats are merged
into distinct items), mostly from a few home clusters, and is the normalised mean of what they heard (the KNN
user of the paper). K = 50.

For each backend the index build (FAISS ``train`` + ``add``) is timed apart from the search; FAISS's search time
includes the users it hands to the exact path (histories over the fetch cap, ties at the fetch boundary, an
IVF that returned too few unheard items), whose count is recorded. Recall@50 is the share of the exact top 50
each FAISS backend returns, on a random sample of users. A backend whose projected time for all users exceeds
``--budget-s`` runs on a random sample and is extrapolated linearly (``extrapolated: true`` with the sample
size). Threads: 2 for torch and FAISS. Peak resident memory is the process's ``ru_maxrss``.

    nice python benchmarks/faiss_retrieval.py    # ~30 min on 2 cores; writes benchmarks/results/faiss_retrieval.json
    python benchmarks/faiss_retrieval.py --scale 0.02 --out /tmp/f.json     # a smoke run
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from audiorec.recommenders.faiss_retrieval import search_unheard
from audiorec.recommenders.inner_product import top_k_inner_product
from audiorec.recommenders.retrieval import heard_matrix
from audiorec.recommenders.retrieval_options import RetrievalOptions

RESULTS = Path(__file__).parent / "results" / "faiss_retrieval.json"
K = 50
THREADS = 2
CASES = {
    "onion": {"items": 56_193, "users": 17_053, "dim": 768, "clusters": 200, "lists": 512, "nprobe": 16},
    "million": {"items": 1_000_000, "users": 50_000, "dim": 200, "clusters": 1000, "lists": 1024, "nprobe": 16},
}


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def world(items: int, users: int, dim: int, clusters: int, seed: int = 0):
    """Unit item vectors around ``clusters`` centres, heard sets, and users as the mean of what they heard."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    assignment = rng.integers(0, clusters, items)
    item_vectors = np.empty((items, dim), dtype=np.float32)
    for start in range(0, items, 100_000):  # in slices, to keep the noise array small
        rows = slice(start, min(start + 100_000, items))
        noise = rng.normal(scale=0.9, size=(rows.stop - rows.start, dim)).astype(np.float32)
        item_vectors[rows] = unit(centres[assignment[rows]] + noise)
    sizes = np.clip(rng.lognormal(np.log(300), 0.6, users), 5, 2000).astype(np.int64)
    long = rng.random(users) < 0.02
    sizes[long] = rng.integers(2500, 5001, long.sum())
    members = np.argsort(assignment, kind="stable")
    starts = np.searchsorted(assignment[members], np.arange(clusters + 1))
    rows, columns = [], []
    for user, size in enumerate(sizes):
        home = rng.integers(0, clusters, 3)
        pool = np.concatenate([members[starts[c] : starts[c + 1]] for c in home])
        from_home = int(size * 0.7)
        picked = np.unique(np.concatenate([rng.choice(pool, from_home), rng.integers(0, items, size - from_home)]))
        rows.append(np.full(len(picked), user, dtype=np.int64))
        columns.append(picked)
    excluded = heard_matrix(np.concatenate(rows), np.concatenate(columns), users, items)
    user_vectors = np.empty((users, dim), dtype=np.float32)
    for start in range(0, users, 2048):
        block = excluded[start : start + 2048].astype(np.float32)
        user_vectors[start : start + 2048] = unit(np.asarray(block @ item_vectors))
    return user_vectors, item_vectors, excluded


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over users of |found ∩ truth| / |truth| (truth: the exact top K, -1 padding left out)."""
    shares = [
        len(np.intersect1d(f[f >= 0], t[t >= 0])) / max(1, (t >= 0).sum()) for f, t in zip(found, truth, strict=True)
    ]
    return round(float(np.mean(shares)), 4)


def run_backend(name, users, items, excluded, options, sample, budget_s):
    """Time one backend on every user, or on ``sample`` if a probe of it (a quarter of the sample) projects past
    ``budget_s``: its build plus its search time per user times the users."""
    n_users = len(users)
    probe = sample[: max(1, len(sample) // 4)]
    measured = rank(users[probe], items, excluded[probe], options)
    projected = measured["build_s"] + measured["search_s"] / len(probe) * n_users
    chosen = sample if projected > budget_s else np.arange(n_users)
    result = rank(users[chosen], items, excluded[chosen], options)
    scale = n_users / len(chosen)
    entry = {
        "backend": name,
        "users_timed": len(chosen),
        "extrapolated": bool(len(chosen) < n_users),
        "build_s": round(result["build_s"], 2),
        "search_s": round(result["search_s"] * scale, 1),
        "search_s_measured": round(result["search_s"], 1),
        "users_ranked_exactly": round(result["exact_users"] * scale),
        "projected_from_probe_s": round(projected, 1),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    position = np.searchsorted(chosen, sample)
    return entry, result["items"][position]


def rank(users, items, excluded, options):
    """One ranking with its timings: build (FAISS only) and search (the exact path's share included)."""
    if options.is_exact:
        started = time.perf_counter()
        _, ranked = top_k_inner_product(users, items, excluded, K)
        return {"items": ranked, "build_s": 0.0, "search_s": time.perf_counter() - started, "exact_users": len(users)}
    ranking = search_unheard(users, items, excluded, K, options)
    return {
        "items": ranking.items,
        "build_s": ranking.build_s,
        "search_s": ranking.search_s + ranking.exact_s,
        "exact_users": len(ranking.exact_users),
    }


def run_case(name: str, spec: dict, scale: float, sample_size: int, budget_s: float) -> dict:
    items, users = max(5000, int(spec["items"] * scale)), max(500, int(spec["users"] * scale))
    lists = max(16, round(spec["lists"] * min(1.0, scale) ** 0.5))  # FAISS's rule of thumb: lists ~ sqrt(items)
    ivf = f"IVF{lists},Flat"
    started = time.perf_counter()
    user_vectors, item_vectors, excluded = world(items, users, spec["dim"], spec["clusters"])
    heard = np.diff(excluded.indptr)
    print(f"{name}: world of {items} items x {users} users in {time.perf_counter() - started:.0f} s", flush=True)
    sample = np.sort(np.random.default_rng(1).choice(users, min(sample_size, users), replace=False))
    backends = {
        "exact": RetrievalOptions(),
        "faiss Flat": RetrievalOptions(backend="faiss", index="Flat"),
        f"faiss {ivf} nprobe {spec['nprobe']}": RetrievalOptions(backend="faiss", index=ivf, nprobe=spec["nprobe"]),
    }
    rows, truth = [], None
    for backend, options in backends.items():
        entry, found = run_backend(backend, user_vectors, item_vectors, excluded, options, sample, budget_s)
        if truth is None:
            truth = found
        entry[f"recall@{K}"] = recall(found, truth)
        rows.append(entry)
        print(json.dumps(entry), flush=True)
    return {
        "items": items,
        "users": users,
        "dim": spec["dim"],
        "clusters": spec["clusters"],
        "heard_per_user": {
            "median": int(np.median(heard)),
            "mean": round(float(heard.mean()), 1),
            "max": int(heard.max()),
            "over_2048": int((heard > 2048).sum()),
        },
        "recall_users": len(sample),
        "backends": rows,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each case's items and users")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--sample", type=int, default=2000, help="users for recall and for extrapolated timings")
    parser.add_argument("--budget-s", type=float, default=900.0, help="longest projected run of one backend")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    faiss.omp_set_num_threads(THREADS)
    report = {
        "k": K,
        "threads": THREADS,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "faiss": importlib.metadata.version("faiss-cpu"),
            "numpy": np.__version__,
            "scipy": importlib.metadata.version("scipy"),
        },
        "budget_s": args.budget_s,
        "scale": args.scale,
        "cases": {},
    }
    for name in args.cases:
        report["cases"][name] = run_case(name, CASES[name], args.scale, args.sample, args.budget_s)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
