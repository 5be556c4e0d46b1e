"""What a hyper-parameter study costs beyond its trials, and one trial against one plain training of the model.

On the default demo world's listening log (500 users, 400 tracks, the paper's split; random 104-d item vectors, as
wide as MFCC's) the Shallow Net is tuned over its learning rate and margin by the stage the workflow runs
(:func:`audiorec.stages.tune`), and trained once more with the first trial's options as rule recommend trains it
(fit with early stopping on validation, rank every validation user). The study's overhead is its wall time less
the sum of its trials' own times (Optuna's storage, sampling and the reading of the tables), as a share of the
trials; a trial is compared with the plain training, which it should cost no more than.

    python benchmarks/tuning_overhead.py            # ~2 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
import yaml

from audiorec.datasets.demo import DemoOptions, evaluation_start
from audiorec.datasets.demo.world import listening_log
from audiorec.protocol.candidates import candidate_track_ids
from audiorec.protocol.split import SplitConfig, temporal_split, write_split
from audiorec.stages import recommend, tune
from audiorec.storage.tables import embeddings_table, write_table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "tuning_overhead.json"
OPTIONS = {"max_epochs": 8, "batch_size": 256, "standardize": True, "early_stopping_patience": 8}
SPACE = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "margin": {"low": 0.05, "high": 0.5}}


def demo_tables(folder: Path) -> dict[str, Path]:
    """The default demo world's split on disk, an empty uncovered list and random vectors of every track."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    options = DemoOptions.from_mapping(config["datasets"]["demo"]["options"])
    split_config = {"test_start": evaluation_start(options), "train_months": options.n_months - 1, "seed": 0}
    split = temporal_split(listening_log(options), SplitConfig.from_mapping(split_config))
    write_split(split, folder / "split")
    (folder / "uncovered.csv").write_text("track_id\n")
    tracks = candidate_track_ids(split.train, pl.DataFrame({"track_id": []}, schema={"track_id": pl.String}))
    vectors = np.random.default_rng(0).standard_normal((len(tracks), 104)).astype(np.float32)
    write_table(embeddings_table(tracks, vectors), folder / "embeddings.parquet")
    paths = {name: folder / "split" / f"{name}.parquet" for name in ("train", "val", "heard_before_window", "test")}
    return {**paths, "uncovered": folder / "uncovered.csv", "embeddings": folder / "embeddings.parquet"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = demo_tables(folder)
        study_splits = {name: paths[name] for name in ("train", "val", "heard_before_window", "uncovered")}
        spec = {"kind": "shallow", "options": OPTIONS}
        tune_spec = {
            **spec,
            "tune": {"trials": args.trials, "seconds": 3600, "metric": "NDCG@50", "seed": 0, "space": SPACE},
        }
        started = time.perf_counter()
        tune(tune_spec, study_splits, paths["embeddings"], folder / "best.json", folder / "trials.csv", threads=1)
        study_seconds = time.perf_counter() - started
        trials = pl.read_csv(folder / "trials.csv")
        started = time.perf_counter()
        recommend(
            spec,
            0,
            {**study_splits},
            [paths["val"]],
            paths["embeddings"],
            50,
            folder / "plain.parquet",
            checkpoint_path=folder / "plain.pt",
            training_log_path=folder / "plain.csv",
            threads=1,
        )
        plain_seconds = time.perf_counter() - started
    trial_seconds = float(trials["seconds"].sum())
    result = {
        "what": "a Shallow Net study on the default demo world's log against one plain training (rule recommend)",
        "trials": trials.height,
        "study_seconds": round(study_seconds, 3),
        "sum_of_trial_seconds": round(trial_seconds, 3),
        "overhead_beyond_trials": round((study_seconds - trial_seconds) / trial_seconds, 4),
        "mean_trial_seconds": round(trial_seconds / trials.height, 3),
        "plain_training_seconds": round(plain_seconds, 3),
        "trial_over_plain_training": round(trial_seconds / trials.height / plain_seconds, 3),
        "options": OPTIONS,
        "space": SPACE,
        "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "torch_threads": 1},
        "python": platform.python_version(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
