"""BERT4Rec's training memory at the Onion's catalogue size: the loss over the whole catalogue dense and in chunks.

Every batch here is a worst case: 128 users with 400 distinct tracks each, so every sequence fills max_len 300 and
masks its share of positions (about 7,700 a batch); the catalogue is the Onion's 57,038 train items; the item
vectors are frozen random rows at the paper's widths, hidden = width. Each side trains ``--batches`` batches
through the workflow's trainer in a fresh process (its validation passes included, on 64 users), and reports the
process's high-water mark and the training log's seconds per batch. "dense" raises the chunking threshold
(``catalogue_softmax.DENSE_CELLS``) past the batch's logits, which is what ran before the chunked loss existed.

    python benchmarks/bert4rec_memory.py       # ~6 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "bert4rec_memory.json"
SIDE = """
import json, sys
import numpy as np, scipy.sparse as sp, torch
from audiorec.recommenders import catalogue_softmax
from audiorec.recommenders.base import TrainData
from audiorec.recommenders.bert4rec import Bert4RecNet, Bert4RecTask
from audiorec.recommenders.options import Bert4RecOptions
from audiorec.recommenders.trainer import train
from audiorec.storage.logs import own_peak_gib

side, width, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if side == "dense":
    catalogue_softmax.DENSE_CELLS = 1 << 62
users, items, per_user = 128 * batches, 57_038, 400
rng = np.random.default_rng(0)
item_index = np.concatenate([rng.choice(items, per_user, replace=False) for _ in range(users)])
user_index = np.repeat(np.arange(users), per_user)
heard = sp.csr_matrix((np.ones(item_index.size, dtype=bool), (user_index, item_index)), shape=(users, items))
ids = np.array([f"u{u}" for u in range(users)], dtype=object)
first_ts = np.tile(np.arange(per_user), users)
plays = np.bincount(item_index, minlength=items).astype(np.float32)
train_data = TrainData(ids, heard, heard, plays, (user_index, item_index, first_ts))
val_users = np.arange(64)
val_items = np.array([np.setdiff1d(np.arange(items), heard[u].indices)[0] for u in val_users])
truth = sp.csr_matrix((np.ones(64, dtype=bool), (val_users, val_items)), shape=(users, items))
validation = TrainData(ids, truth, truth, np.zeros(items, dtype=np.float32))
options = Bert4RecOptions(max_epochs=1, max_batches_per_epoch=batches)
torch.manual_seed(0)
module = Bert4RecNet(torch.randn(items, width) * 0.1, freeze_items=True, hidden=width, options=options)
before = own_peak_gib()
result = train(Bert4RecTask(module, train_data, validation, options), options, seed=0, progress=False)
epoch = result.history[-1]
print(json.dumps({
    "peak_rss_gib": own_peak_gib(),
    "peak_rss_before_training_gib": before,
    "seconds_per_batch": epoch["train_seconds"] / epoch["train_batches"],
    "train_loss": epoch["train_loss"],
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[104, 200])
    parser.add_argument("--batches", type=int, default=2)
    args = parser.parse_args()
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}
    rows = []
    load_before = os.getloadavg()[0]
    for width in args.widths:
        for side in ("dense", "chunked"):
            command = [sys.executable, "-c", SIDE, side, str(width), str(args.batches)]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            figures = json.loads(done.stdout.splitlines()[-1])
            rows.append({"width": width, "loss": side, **{key: round(value, 3) for key, value in figures.items()}})
            print(rows[-1], flush=True)
    result = {
        "what": __doc__.splitlines()[0],
        "batches_per_side": args.batches,
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2),
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
