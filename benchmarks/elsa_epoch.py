"""One ELSA epoch and one Hybrid epoch at Music4All-Onion's size: audiorec's ELSA beside ``elsarec`` 0.1.4.

The train matrix is ``references_fit.py``'s random Onion-sized matrix (17,053 users × 56,193 items, 5.12M pairs,
Zipf-like popularity). Both ELSAs train 768 factors with NAdam at lr 0.01 on batches of 128 users in row order,
from the same seed (hence the same initial factors); audiorec's runs through the project's trainer, elsarec's
through its own ``fit``. The Hybrid (kind ``hybrid``) trains its MLP on random 768-d embeddings.

A whole epoch is 134 batches; on a small CPU machine that is many minutes per model, so by default each side
trains only its first ``--batches`` batches (the same users for both ELSAs) and the epoch time is extrapolated
as ``seconds per batch × 134``; the JSON says so (``extrapolated``). The trainer's ``train_seconds`` excludes its
validation pass; elsarec's time is its ``fit`` without validation data. The two ELSAs run one after the other,
twice in alternating order, on a shared machine: compare only the ratio of this run.

    nice python benchmarks/elsa_epoch.py             # ~6 minutes on 2 cores; writes benchmarks/results/elsa_epoch.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from references_fit import ONION, onion_like_matrix

from audiorec.recommenders.audio_elsa import AudioELSA
from audiorec.recommenders.elsa import ELSA, ELSATask
from audiorec.recommenders.options import AudioELSAOptions, ELSAOptions
from audiorec.recommenders.trainer import train

RESULTS = Path(__file__).parent / "results" / "elsa_epoch.json"
FACTORS = 768
BATCH = 128


def ours(heard: sp.csr_matrix, batches: int, seed: int) -> float:
    """Seconds per batch of audiorec's ELSA through the trainer (its validation pass excluded)."""
    options = ELSAOptions(factors=FACTORS, max_epochs=1, batch_size=BATCH, max_batches_per_epoch=batches)
    torch.manual_seed(seed)
    module = ELSA(heard.shape[1], FACTORS)
    tiny_validation = sp.csr_matrix(heard.shape, dtype=np.float32)
    tiny_validation[0, 0] = 1.0
    task = ELSATask(module, heard, tiny_validation, options)
    result = train(task, options, seed, progress=False)
    return result.history[1]["train_seconds"] / result.history[1]["train_batches"]


def elsarec(heard: sp.csr_matrix, batches: int, seed: int) -> float:
    """Seconds per batch of elsarec's ``fit`` on the same first ``batches`` batches of users."""
    from elsa import ELSA as Reference

    torch.manual_seed(seed)
    model = Reference(n_items=heard.shape[1], n_dims=FACTORS, device=torch.device("cpu"), lr=0.01)
    rows = sp.csr_matrix(heard[: batches * BATCH], dtype=np.float32)
    started = time.perf_counter()
    model.fit(rows, epochs=1, batch_size=BATCH, shuffle=False, verbose=False)
    return (time.perf_counter() - started) / batches


def hybrid(heard: sp.csr_matrix, batches: int, seed: int) -> float:
    """Seconds per batch of the Hybrid (768-d embeddings → MLP → factors) through the trainer."""
    options = AudioELSAOptions(factors=FACTORS, max_epochs=1, batch_size=BATCH, max_batches_per_epoch=batches)
    torch.manual_seed(seed)
    embeddings = torch.randn(heard.shape[1], 768)
    module = AudioELSA(embeddings, FACTORS)
    tiny_validation = sp.csr_matrix(heard.shape, dtype=np.float32)
    tiny_validation[0, 0] = 1.0
    task = ELSATask(module, heard, tiny_validation, options)
    result = train(task, options, seed, progress=False)
    return result.history[1]["train_seconds"] / result.history[1]["train_batches"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=8, help="ELSA batches timed per side and round")
    parser.add_argument("--hybrid-batches", type=int, default=2, help="Hybrid batches timed")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    heard = sp.csr_matrix(onion_like_matrix(**ONION), dtype=np.float32)
    build_seconds = time.perf_counter() - started
    epoch_batches = math.ceil(heard.shape[0] / BATCH)
    load_before = os.getloadavg()[0]
    rounds = {"ours": [], "elsarec": []}
    for order in (("ours", "elsarec"), ("elsarec", "ours")):
        for side in order:
            seconds = (ours if side == "ours" else elsarec)(heard, args.batches, seed=0)
            rounds[side].append(seconds)
            print(f"{side}: {seconds:.3f} s per batch", flush=True)
    hybrid_seconds = hybrid(heard, args.hybrid_batches, seed=0)
    print(f"hybrid: {hybrid_seconds:.3f} s per batch", flush=True)

    best = {side: min(values) for side, values in rounds.items()}
    whole = epoch_batches <= args.batches
    result = {
        "data": {
            "users": heard.shape[0],
            "items": heard.shape[1],
            "pairs": int(heard.nnz),
            "factors": FACTORS,
            "batch_size": BATCH,
            "epoch_batches": epoch_batches,
            "matrix_seconds": round(build_seconds, 1),
        },
        "extrapolated": not whole,
        "note": (
            f"each ELSA timed on its first {args.batches} batches (twice, alternating; the faster round is kept), "
            f"the Hybrid on {args.hybrid_batches}; epoch seconds = seconds per batch x {epoch_batches} batches"
        ),
        "elsa_seconds_per_batch": {side: [round(value, 4) for value in values] for side, values in rounds.items()},
        "elsa_epoch_seconds": {side: round(value * epoch_batches, 1) for side, value in best.items()},
        "ours_over_elsarec": round(best["ours"] / best["elsarec"], 3),
        "hybrid_seconds_per_batch": round(hybrid_seconds, 4),
        "hybrid_epoch_seconds": round(hybrid_seconds * epoch_batches, 1),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "elsarec": importlib.metadata.version("elsarec"),
            "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
