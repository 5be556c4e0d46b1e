"""Fit time and peak memory of the collaborative references at Music4All-Onion's size, each in a fresh process.

The train matrix is random, at the size of the Onion's train split (Tamm & Aljanaki 2024, Table 2: 17,053 users,
56,193 items, 5.12M pairs): user activity lognormal, item popularity Zipf-like (weight ∝ 1 / (rank + 100), so the
most popular track is heard by about a third of the users), pairs drawn until 5.12M distinct ones exist. Generating
the synthetic world's split (``config/examples/onion_scale.yaml``) gives the same sizes in ~2.5 minutes; this takes
seconds and only the sizes and the skew matter to a fit.

* ``ials`` (64 factors, 15 iterations, confidence 1 + alpha) and ``itemknn`` (100 neighbours) fit the whole matrix;
* ``ease`` fits the columns of the 5k, 10k and 20k most popular items (float64, in place) and its time is
  extrapolated to 56,193 items as O(n³) from the largest size, beside the memory it would need there
  (:func:`audiorec.recommenders.ease.ease_memory_bytes`).

Each fit runs in a child process on the matrix saved to disk. Its peak resident memory is the kernel's account of
the child (``wait4``'s ``ru_maxrss``, what ``/usr/bin/time`` reports), which catches spikes polling would miss; the
child also reports its resident memory just before the fit (interpreter, libraries and the loaded matrix), so the
fit's own share is the difference. Memory is in GiB (2³⁰ bytes). A watchdog stops a child above
``--memory-limit-gb``.

    python benchmarks/references_fit.py        # ~5 minutes on 2 cores; writes benchmarks/results/references_fit.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import scipy.sparse as sp
from memory_watch import memory_watchdog

RESULTS = Path(__file__).parent / "results" / "references_fit.json"
ONION = {"users": 17_053, "items": 56_193, "pairs": 5_120_000}
EASE_SIZES = (5_000, 10_000, 20_000)


def onion_like_matrix(users: int, items: int, pairs: int, seed: int = 0) -> sp.csr_matrix:
    """A boolean users × items matrix of ``pairs`` distinct train pairs (columns in descending popularity)."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, users)
    activity /= activity.sum()
    popularity = 1.0 / (np.arange(items) + 100.0)
    popularity /= popularity.sum()
    codes = np.empty(0, dtype=np.int64)
    while len(codes) < pairs:
        draw = int((pairs - len(codes)) * 1.2) + 1000
        new = rng.choice(users, draw, p=activity).astype(np.int64) * items + rng.choice(items, draw, p=popularity)
        codes = np.unique(np.concatenate([codes, new]))
    codes = rng.permutation(codes)[:pairs]
    data = np.ones(pairs, dtype=bool)
    return sp.csr_matrix((data, (codes // items, codes % items)), shape=(users, items))


def child(kind: str, matrix_path: str, n_items: str) -> None:
    """Fit one model on the first ``n_items`` columns of the saved matrix; print seconds and the RSS before."""
    import torch

    from audiorec.recommenders import Catalogue, TrainData, recommender_class

    heard = sp.load_npz(matrix_path).tocsc()[:, : int(n_items)].tocsr()
    users = np.array([f"u{u}" for u in range(heard.shape[0])], dtype=object)
    catalogue = Catalogue.from_tracks([f"t{i:06d}" for i in range(heard.shape[1])])
    train = TrainData(users, heard, heard, np.asarray(heard.sum(axis=0), dtype=np.float32).ravel())
    options = {"ease": {"max_items": ONION["items"]}, "itemknn": {}, "ials": {}}[kind]
    model = recommender_class(kind).from_options(options, 0)
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    model.fit(catalogue, train)
    seconds = time.perf_counter() - start
    report = {"seconds": seconds, "rss_before_fit_gb": before / 2**30, "torch_threads": torch.get_num_threads()}
    print(json.dumps(report))


def measure(kind: str, matrix_path: Path, n_items: int, memory_limit_gb: float) -> dict:
    """Run one child; its fit seconds, peak RSS (wait4) and RSS before the fit, or why it did not finish."""
    output = matrix_path.with_name(f"{kind}_{n_items}.out")
    with output.open("w") as out, output.with_suffix(".err").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, __file__, "child", kind, str(matrix_path), str(n_items)], stdout=out, stderr=err
        )
    result: dict = {"kind": kind, "items": n_items, "load_1min_before": round(os.getloadavg()[0], 2)}
    with memory_watchdog(process.pid, memory_limit_gb) as stopped:
        _, status, usage = os.wait4(process.pid, 0)
    result["load_1min_after"] = round(os.getloadavg()[0], 2)
    stderr = output.with_suffix(".err").read_text().strip()
    if stopped.is_set() or os.waitstatus_to_exitcode(status) != 0:
        last = stderr.splitlines()[-1] if stderr else f"exit status {os.waitstatus_to_exitcode(status)}"
        return {**result, "status": f"stopped above {memory_limit_gb} GB" if stopped.is_set() else f"failed: {last}"}
    report = json.loads(output.read_text().strip().splitlines()[-1])
    peak = usage.ru_maxrss * 1024 / 2**30
    return {
        **result,
        "status": "ok",
        "fit_s": round(report["seconds"], 2),
        "peak_rss_gb": round(peak, 3),
        "rss_before_fit_gb": round(report["rss_before_fit_gb"], 3),
        "fit_peak_gb": round(peak - report["rss_before_fit_gb"], 3),
        "torch_threads": report["torch_threads"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--memory-limit-gb", type=float, default=20.0)
    parser.add_argument("--ease-sizes", type=int, nargs="+", default=list(EASE_SIZES))
    args = parser.parse_args()
    from audiorec.recommenders.ease import ease_memory_bytes

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        heard = onion_like_matrix(ONION["users"], ONION["items"], ONION["pairs"])
        generation_s = time.perf_counter() - start
        path = Path(folder) / "heard.npz"
        sp.save_npz(path, heard, compressed=False)
        item_users = np.asarray(heard.sum(axis=0)).ravel()
        user_items = np.asarray(heard.sum(axis=1)).ravel()
        runs = [measure("ease", path, n, args.memory_limit_gb) for n in sorted(args.ease_sizes)]
        runs += [measure(kind, path, ONION["items"], args.memory_limit_gb) for kind in ("itemknn", "ials")]
    largest = max((run for run in runs if run["kind"] == "ease" and run["status"] == "ok"), key=lambda r: r["items"])
    for run in runs:
        if run["kind"] == "ease":
            run["formula_gb"] = round(ease_memory_bytes(run["items"]) / 2**30, 3)
    extrapolated = {
        "items": ONION["items"],
        "fit_s": round(largest["fit_s"] * (ONION["items"] / largest["items"]) ** 3),
        "from_items": largest["items"],
        "memory_gb_float64": round(ease_memory_bytes(ONION["items"]) / 2**30, 1),
        "memory_gb_float32": round(ease_memory_bytes(ONION["items"], "float32") / 2**30, 1),
        "machine_memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    from threadpoolctl import threadpool_info

    blas = threadpool_info()
    report = {
        "what": "fit time and peak memory of the collaborative references (ease, itemknn, ials) at the Onion's size",
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": importlib.metadata.version("scipy"),
            "implicit": importlib.metadata.version("implicit"),
            "blas": [{key: api.get(key) for key in ("internal_api", "num_threads", "architecture")} for api in blas],
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        },
        "matrix": {
            **ONION,
            "generation_s": round(generation_s, 1),
            "max_users_per_item": int(item_users.max()),
            "median_users_per_item": float(np.median(item_users)),
            "max_items_per_user": int(user_items.max()),
            "mean_items_per_user": round(float(user_items.mean()), 1),
        },
        "runs": runs,
        "ease_extrapolated": extrapolated,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:5])
    else:
        main()
