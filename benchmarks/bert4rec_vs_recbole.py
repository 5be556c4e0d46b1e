"""audiorec's BERT4Rec against RecBole 1.2.1's BERT4Rec: training throughput and quality after the same epochs.

Both train on the same data in one run: a scaled-up demo world, split by the paper's temporal protocol, each
user's train tracks in order of first listen (the last ``--max-len`` kept). RecBole reads them from atomic
benchmark files (one sequence per user, so it trains on exactly the same sequences; no prefix augmentation).
The configurations match: randomly initialised trainable item embeddings (``bert4rec_random``), hidden 64,
2 layers, 2 heads, feed-forward 256, dropout 0.1 on embeddings, residuals and attention, mask probability
0.2, cross-entropy over the catalogue, batch 128, Adam at a constant 1e-3 (no plateau, no early stopping),
the same number of epochs, the same CPU thread count, and both keep the state after the last epoch. Both models
are then scored by the same code: full sort over the catalogue, train-heard tracks removed, NDCG@10 and
HitRate@10 over the test users. Each (implementation, seed) runs in a fresh process, the two alternating, over
``--seeds`` (mean and sd reported): after a few epochs one seed differs from another by several points of NDCG.

Throughput counts training sequences per second of training-epoch time (batches, masking, forward,
backward, optimiser step); validation passes are not counted for either side.

RecBole is not a dependency of audiorec; install it beside it, e.g. in a virtual environment that sees the
system packages (see benchmarks/README.md), then:

    python benchmarks/bert4rec_vs_recbole.py            # writes benchmarks/results/bert4rec_vs_recbole.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from audiorec.datasets.demo import DemoOptions, generate_demo_world
from audiorec.evaluation.metrics import evaluate_recommendations
from audiorec.protocol.split import SplitConfig, temporal_split
from audiorec.recommenders import Catalogue, TrainData, recommendations_frame
from audiorec.recommenders.bert4rec import RandomBert4RecRecommender
from audiorec.recommenders.retrieval import top_k_unheard
from audiorec.recommenders.sequences import recent_items
from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import read_table

RESULTS = Path(__file__).parent / "results" / "bert4rec_vs_recbole.json"
K = 10


def generate_world(folder: Path, n_users: int, n_tracks: int, events: float) -> None:
    """A scaled-up demo world (short clips: the audio is not used)."""
    options = DemoOptions(
        n_users=n_users, n_tracks=n_tracks, n_artists=n_tracks // 10, clip_seconds=0.5, mean_events_per_user=events
    )
    generate_demo_world(options, folder, progress=False)


def load_world(folder: Path) -> dict:
    """The world's split and indexed train data, as each child process needs them."""
    split = temporal_split(
        pl.scan_parquet(folder / "interactions.parquet"), SplitConfig.from_mapping({"test_start": "2025-01-01"})
    )
    tracks = read_table(folder / "tracks.parquet", "tracks").get_column("track_id").to_list()
    catalogue = Catalogue.from_tracks(tracks)
    users = sorted(split.train.get_column("user_id").unique().to_list())
    test_users = sorted(split.test.get_column("user_id").unique().to_list())
    return {
        "catalogue": catalogue,
        "split": split,
        "train": TrainData.build(split.train, catalogue, users),
        "validation": TrainData.build(split.val, catalogue, users),
        "test_users": TrainData.build(split.train, catalogue, test_users),
    }


def quality(world: dict, scores: np.ndarray, items: np.ndarray) -> dict[str, float]:
    frame = recommendations_frame(world["test_users"].user_ids, world["catalogue"], scores, items)
    metrics = evaluate_recommendations(frame, world["split"].test, [K])
    return {f"NDCG@{K}": float(metrics[f"NDCG@{K}"].mean()), f"HitRate@{K}": float(metrics[f"HitRate@{K}"].mean())}


def run_audiorec(world: dict, args: argparse.Namespace) -> dict:
    options = {
        "item_dim": 64,
        "max_len": args.max_len,
        "batch_size": 128,
        "max_epochs": args.epochs,
        "lr_patience": args.epochs + 1,
        "early_stopping_patience": args.epochs + 1,
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "restore_best": False,  # the state after the last epoch, as RecBole's is
    }
    model = RandomBert4RecRecommender.from_options(options, seed=args.seed)
    started = time.perf_counter()
    model.fit(world["catalogue"], world["train"], world["validation"])
    total = time.perf_counter() - started
    train_seconds = sum(record["train_seconds"] for record in model.result.history)
    n_sequences = int((world["train"].heard.getnnz(axis=1) > 0).sum())
    return {
        "options": options,
        "train_seconds": train_seconds,
        "fit_seconds_with_validation": total,
        "sequences_per_second": n_sequences * args.epochs / train_seconds,
        **quality(world, *model.recommend(world["catalogue"], world["test_users"], K)),
    }


def write_atomic_files(world: dict, folder: Path, max_len: int) -> None:
    """RecBole benchmark files: one row per user, ``item_id_list`` = the user's last ``max_len`` train tracks."""
    train, ids = world["train"], world["catalogue"].track_ids
    rows = np.flatnonzero(train.heard.getnnz(axis=1) > 0)
    sequences = recent_items(train.listen_order, rows, max_len, pad=-1)
    lines = ["user_id:token\titem_id_list:token_seq\titem_id:token"]
    for user, sequence in zip(train.user_ids[rows], sequences, strict=True):
        tracks = [ids[i] for i in sequence if i >= 0]
        lines.append(f"{user}\t{' '.join(tracks)}\t{tracks[-1]}")
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid", "test"):  # RecBole needs all three; only train is used
        (folder / f"bench.{part}.inter").write_text("\n".join(lines) + "\n")


def run_recbole(world: dict, args: argparse.Namespace, folder: Path) -> dict:
    # RecBole 1.2.1 still uses aliases that NumPy 1.24 (np.float, np.int, np.bool) and 2.0 (np.float_, np.complex_,
    # np.unicode_) removed; they are restored here only, for this benchmark.
    removed = {
        "float": float,
        "int": int,
        "bool": bool,
        "float_": np.float64,
        "complex_": np.complex128,
        "unicode_": np.str_,
    }
    for name, value in removed.items():
        setattr(np, name, value)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.interaction import Interaction
    from recbole.model.sequential_recommender.bert4rec import BERT4Rec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    write_atomic_files(world, folder / "bench", args.max_len)
    settings = {
        "data_path": str(folder),
        "checkpoint_dir": str(folder / "saved"),
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "alias_of_item_id": ["item_id_list"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "train_neg_sample_args": None,
        "use_gpu": False,
        "device": "cpu",
        "seed": args.seed,
        "reproducibility": True,
        "show_progress": False,
        "state": "ERROR",
        "epochs": args.epochs,
        "train_batch_size": 128,
        "learning_rate": 1e-3,
        "hidden_size": 64,
        "inner_size": 256,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dropout_prob": 0.1,
        "attn_dropout_prob": 0.1,
        "mask_ratio": 0.2,
        "loss_type": "CE",
        "eval_args": {"order": "TO", "mode": "full", "group_by": "user"},
    }
    config = Config(model="BERT4Rec", dataset="bench", config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(args.threads)
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = BERT4Rec(config, train_data.dataset)
    trainer = Trainer(config, model)
    train_seconds = 0.0
    for epoch in range(args.epochs):
        started = time.perf_counter()
        trainer._train_epoch(train_data, epoch)
        train_seconds += time.perf_counter() - started
    n_sequences = len(train_data.dataset)

    # Score with the same exact, heard-excluding top-K as audiorec.
    model.eval()
    catalogue, test_users = world["catalogue"], world["test_users"]
    vocabulary = dataset.field2token_id["item_id"]
    recbole_ids = np.array([vocabulary.get(track, -1) for track in catalogue.track_ids.astype(str)])
    rows = np.arange(len(test_users.user_ids))
    history = recent_items(test_users.listen_order, rows, args.max_len, pad=-1)
    lengths = (history >= 0).sum(axis=1)
    left_aligned = np.zeros_like(history)
    for row, sequence in enumerate(history):  # RecBole stores sequences left-aligned, 0-padded
        kept = sequence[sequence >= 0]
        left_aligned[row, : len(kept)] = recbole_ids[kept]
    with torch.no_grad():
        interaction = Interaction(
            {"item_id_list": torch.as_tensor(left_aligned), "item_length": torch.as_tensor(np.maximum(lengths, 1))}
        )
        full = model.full_sort_predict(interaction).numpy()
    scores = np.where(recbole_ids >= 0, full[:, np.maximum(recbole_ids, 0)], -np.inf)  # unseen tracks last

    return {
        "settings": {key: value for key, value in settings.items() if key not in ("data_path", "checkpoint_dir")},
        "train_seconds": train_seconds,
        "sequences_per_second": n_sequences * args.epochs / train_seconds,
        **quality(world, *top_k_unheard(lambda rows: scores[rows], test_users.excluded, K)),
    }


def child(implementation: str, world_dir: Path, scratch: Path, args: argparse.Namespace) -> None:
    """Train and score one implementation for one seed in this (fresh) process; print the result as JSON.

    A fresh process per run keeps either library's process-wide settings (threads, allocator, seeding) from
    reaching the other's measurement."""
    torch.set_num_threads(args.threads)
    world = load_world(world_dir)
    with contextlib.chdir(scratch):  # RecBole logs into the working directory
        result = run_audiorec(world, args) if implementation == "audiorec" else run_recbole(world, args, scratch)
    print(json.dumps(result, default=str))


def run_child(implementation: str, world_dir: Path, scratch: Path, args: argparse.Namespace, seed: int) -> dict:
    scratch.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--child", implementation, "--world", str(world_dir)]
    command += ["--scratch", str(scratch)]
    command += ["--max-len", str(args.max_len), "--epochs", str(args.epochs), "--threads", str(args.threads)]
    command += ["--seeds", str(seed)]
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        raise RuntimeError(f"{implementation} seed {seed} failed:\n{process.stderr[-4000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1]) | {"seed": seed}


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each figure: 8 epochs leave both models far from converged,
    so one seed's NDCG differs from another's by about as much as the two implementations differ."""
    summary = {}
    for key in ("sequences_per_second", f"NDCG@{K}", f"HitRate@{K}"):
        values = np.array([run[key] for run in runs])
        summary[key] = {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--tracks", type=int, default=2000)
    parser.add_argument("--events", type=float, default=150.0, help="mean listening events per user")
    parser.add_argument("--max-len", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=["audiorec", "recbole"], help=argparse.SUPPRESS)
    parser.add_argument("--world", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.world, args.scratch, argparse.Namespace(**vars(args), seed=args.seeds[0]))
        return
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        generate_world(scratch / "world", args.users, args.tracks, args.events)
        statistics = load_world(scratch / "world")["split"].statistics().to_dicts()
        for seed in args.seeds:  # alternate the two, so that a change of machine load hits both alike
            ours.append(run_child("audiorec", scratch / "world", scratch / f"audiorec{seed}", args, seed))
            theirs.append(run_child("recbole", scratch / "world", scratch / f"recbole{seed}", args, seed))
            for name, runs in (("audiorec", ours), ("recbole", theirs)):
                print(name, seed, {k: runs[-1][k] for k in ("sequences_per_second", f"NDCG@{K}")}, flush=True)
    import recbole

    summary = {"audiorec": summarise(ours), "recbole": summarise(theirs)}
    result = {
        "benchmark": "BERT4Rec training throughput and full-sort quality, audiorec vs RecBole",
        "data": {"demo_world": {k: v for k, v in vars(args).items() if k in ("users", "tracks", "events")}},
        "split": statistics,
        "epochs": args.epochs,
        "max_len": args.max_len,
        "threads": args.threads,
        "summary": summary,
        "speedup": summary["audiorec"]["sequences_per_second"]["mean"]
        / summary["recbole"]["sequences_per_second"]["mean"],
        "audiorec": ours,
        "recbole": theirs,
        "versions": {"torch": torch.__version__, "recbole": recbole.__version__, "python": sys.version.split()[0]},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "device": "cpu",
            "load_average_1_5_15_min": os.getloadavg(),
        },
    }
    write_text_atomic(json.dumps(result, indent=2, default=str) + "\n", args.out)
    print(json.dumps({"speedup": result["speedup"], **summary}, indent=2))


if __name__ == "__main__":
    main()
