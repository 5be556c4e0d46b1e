"""One epoch of the Bimodal recommender at the journal paper's size, on this machine's CPU (or ``--device cuda``).

Music4All-Onion's size: 56,512 catalogue items, every one heard in train; 768-d audio embeddings (random
vectors: the cost does not depend on their values); 768-d collaborative factors drawn as ELSA draws its initial
table (Xavier uniform, :class:`audiorec.recommenders.elsa.ELSA`), so no ELSA fit is timed; towers of 768 units;
DCL at temperature 0.1 on batches of 10000 items (the defaults of ``BimodalOptions``). The validation part of the
epoch scores 8,500 validation users (half of the paper's 17k users), each with 300 random train items and 3
validation items, by the content scoring: every item through the audio tower, user means, exact top 50.

Measured: wall and CPU (process) seconds of the training pass (6 batches of forward, backward and Adam step) and
of the epoch's validation (the training loss is the epoch's running mean, so validation is the HitRate pass), the
load average around them (wall seconds on a shared machine stretch with it; CPU seconds much less), and the peak
resident memory of the process.

    nice python benchmarks/bimodal_epoch.py               # ~3 minutes on 2 cores
    python benchmarks/bimodal_epoch.py --device cuda --out benchmarks/results/bimodal_epoch_gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from audiorec.recommenders.base import TrainData
from audiorec.recommenders.bimodal import BimodalNet, BimodalTask
from audiorec.recommenders.elsa import ELSA
from audiorec.recommenders.options import BimodalOptions

RESULTS = Path(__file__).resolve().parent / "results" / "bimodal_epoch.json"
N_ITEMS, WIDTH, FACTORS = 56_512, 768, 768
N_USERS, TRAIN_PER_USER, VALIDATION_PER_USER = 8_500, 300, 3


def world(rng: np.random.Generator) -> tuple[TrainData, TrainData]:
    """Users with random train and validation items; every item is heard in train by construction."""
    rows = np.repeat(np.arange(N_USERS), TRAIN_PER_USER)
    columns = rng.integers(0, N_ITEMS, len(rows))
    columns[:N_ITEMS] = np.arange(N_ITEMS)  # every item at least once
    heard = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, columns)), shape=(N_USERS, N_ITEMS))
    val_rows = np.repeat(np.arange(N_USERS), VALIDATION_PER_USER)
    val_columns = rng.integers(0, N_ITEMS, len(val_rows))
    validation = sp.csr_matrix((np.ones(len(val_rows), dtype=bool), (val_rows, val_columns)), heard.shape)
    validation = sp.csr_matrix(validation - validation.multiply(heard), dtype=bool)  # first listens only
    users = np.array([f"u{u}" for u in range(N_USERS)], dtype=object)
    plays = np.asarray(heard.sum(axis=0), dtype=np.float32).ravel()
    return TrainData(users, heard, heard, plays), TrainData(users, validation, validation, plays)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    train, validation = world(rng)
    torch.manual_seed(0)
    audio = torch.from_numpy(rng.standard_normal((N_ITEMS, WIDTH), dtype=np.float32))
    factors = ELSA(N_ITEMS, FACTORS).factors.detach()
    options = BimodalOptions()
    module = BimodalNet(audio, factors, options.hidden_dim).to(device)
    task = BimodalTask(module, train, validation, options, "content")
    optimizer = torch.optim.Adam(module.parameters(), lr=options.learning_rate)
    generator = torch.Generator(device=device).manual_seed(0)
    rss_before = peak_rss_gib()

    synchronise = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    module.train()
    load_before = list(os.getloadavg())
    started, cpu_started = time.perf_counter(), time.process_time()
    losses = []
    for batch in task.batches(generator):
        optimizer.zero_grad(set_to_none=True)
        loss = task.loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    synchronise()
    trained, cpu_trained = time.perf_counter(), time.process_time()
    module.eval()
    with torch.no_grad():
        figures = task.validate()
    synchronise()
    validated, cpu_validated = time.perf_counter(), time.process_time()

    result = {
        "what": "one Bimodal epoch at the journal paper's size: training pass (DCL, batches of 10000 items, Adam) "
        "and the epoch's validation (content scoring, HitRate@50 of the validation users)",
        "items": N_ITEMS,
        "audio_width": WIDTH,
        "elsa_factors": FACTORS,
        "hidden_dim": options.hidden_dim,
        "batch_size": options.batch_size,
        "batches": task.n_batches(),
        "validation_users": len(task.val_rows),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "train_seconds": round(trained - started, 2),
        "validation_seconds": round(validated - trained, 2),
        "epoch_seconds": round(validated - started, 2),
        "train_cpu_seconds": round(cpu_trained - cpu_started, 2),
        "validation_cpu_seconds": round(cpu_validated - cpu_trained, 2),
        "train_loss": round(float(np.mean(losses)), 4),
        "validation": {name: round(value, 4) for name, value in figures.items()},
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "peak_rss_before_training_gib": round(rss_before, 2),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": list(os.getloadavg()),
            "torch": torch.__version__,
        },
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
