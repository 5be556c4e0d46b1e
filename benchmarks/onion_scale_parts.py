"""The measurements of benchmarks/onion_scale.py beside the workflow run: rules, KNN bounds, training projections."""

from __future__ import annotations

import csv
import math
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import torch

TOP_K = 100
"""The workflow's `recommend.top_k` in the example config."""


class JobFigures(NamedTuple):
    """One job's wall seconds, Snakemake's sampled memory and the high-water mark its log ends with (GiB)."""

    seconds: float
    sampled_gb: float
    peak_gb: float


def rule_table(benchmarks: Path, since: float = 0.0) -> list[dict]:
    """Per rule: jobs, total and longest wall seconds, and the peak memory of its largest job; only the jobs whose
    benchmark file was written after ``since`` (a Unix time), so that a rerun is not mixed with older jobs.

    Two memory figures: ``max_rss_gb``, Snakemake's ``benchmark:`` sample (every 30 s after a job's first 30 s,
    so a long job's short peaks slip between samples), and ``peak_rss_gb``, the high-water mark that each job
    writes at the end of its log (``audiorec.storage.logs``); NaN where no log has it."""
    grouped: dict[str, list[JobFigures]] = defaultdict(list)
    logs = benchmarks.parent / "logs"
    for path in benchmarks.rglob("*.tsv"):
        if path.stat().st_mtime < since:
            continue
        relative = path.relative_to(benchmarks)
        with path.open() as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        sampled = float(row["max_rss"]) / 1024 if row["max_rss"] not in ("", "NA", "-") else math.nan
        job = JobFigures(float(row["s"]), sampled, logged_peak_gb(logs / relative.with_suffix(".log")))
        grouped[relative.parts[0].removesuffix(".tsv")].append(job)
    rows = []
    for rule, jobs in sorted(grouped.items(), key=lambda item: -sum(job.seconds for job in item[1])):
        rows.append(
            {
                "rule": rule,
                "jobs": len(jobs),
                "total_s": round(sum(job.seconds for job in jobs), 1),
                "max_s": round(max(job.seconds for job in jobs), 1),
                "max_rss_gb": _largest(job.sampled_gb for job in jobs),
                "peak_rss_gb": _largest(job.peak_gb for job in jobs),
            }
        )
    return rows


def _largest(values: Iterable[float]) -> float:
    known = [value for value in values if not math.isnan(value)]
    return round(max(known), 2) if known else math.nan


PEAK_LINE = re.compile(r"peak resident memory: ([0-9.]+) GiB \(largest child process: ([0-9.]+) GiB\)")


def logged_peak_gb(log: Path) -> float:
    """The larger of a job's own and its largest child's high-water mark, from its log's last peak line."""
    if not log.exists():
        return math.nan
    found = PEAK_LINE.findall(log.read_text(errors="replace"))
    return max(float(value) for value in found[-1]) if found else math.nan


def peak_gb(rule: dict) -> float:
    """A rule's peak memory: the high-water mark where its jobs logged one, else the sampled figure."""
    return rule["peak_rss_gb"] if not math.isnan(rule.get("peak_rss_gb", math.nan)) else rule["max_rss_gb"]


def matmul_rate(width: int, device: str, users: int = 4096, items: int = 16384) -> float:
    """FLOP/s of a float32 ``(users × width) @ (width × items)`` product, as KNN's blocked scoring runs it."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(users, width, generator=generator).to(device)
    b = torch.randn(width, items, generator=generator).to(device)
    times = []
    for _ in range(4):
        _sync(device)
        started = time.perf_counter()
        (a @ b).sum().item()
        _sync(device)
        times.append(time.perf_counter() - started)
    return 2 * users * items * width / statistics.median(times[1:])


def knn_rows(results: Path, widths: dict[str, int], rates: dict[int, float]) -> list[dict]:
    """Every KNN ranking job against 2 · users · items · d at the measured rate (its matrix-product bound)."""
    from audiorec.storage.tables import read_metadata

    rows = []
    for run in sorted((results / "runs" / "knn").iterdir()):
        backbone = run.name
        width = widths[backbone.removesuffix("_shuffled")]
        recommendations = run / "seed0" / "recommendations.parquet"
        users = pl.scan_parquet(recommendations).select(pl.col("user_id").n_unique()).collect().item()
        items = int(read_metadata(recommendations)["n_candidates"])
        job = _job_seconds(results / "benchmarks" / "recommend" / "knn" / backbone / "seed0.tsv")
        ranking = _ranking_seconds(results / "logs" / "recommend" / "knn" / backbone / "seed0.log")
        bound = 2 * users * items * width / rates[width]
        rows.append(
            {
                "backbone": backbone,
                "width": width,
                "users": users,
                "items": items,
                "job_s": round(job, 1),
                "ranking_s": round(ranking, 1),
                "bound_s": round(bound, 2),
                "job_over_bound": round(job / bound, 2),
                "ranking_over_bound": round(ranking / bound, 2),
            }
        )
    return rows


def _ranking_seconds(log: Path) -> float:
    """The ranking step of a recommend job (the matrix products, masking and top-k), from its log line."""
    found = re.findall(r"ranked \d+ users against \d+ candidates in ([0-9.]+) s", log.read_text())
    if not found:
        raise SystemExit(f"{log}: no ranking time logged; rerun the job with this version of audiorec")
    return float(found[-1])


def faiss_loop(results: Path, backbone: str, n_users: int) -> dict:
    """The first paper's ranking: one ``IndexFlatIP.search`` per user for top-k plus what they heard, scaled."""
    import faiss

    from audiorec.storage.tables import read_embeddings

    train = pl.read_parquet(results / "split" / "train.parquet", columns=["user_id", "track_id"])
    evaluated = pl.concat(
        pl.read_parquet(results / "split" / f"{split}.parquet", columns=["user_id"]) for split in ("val", "test")
    )
    ids, vectors = read_embeddings(results / "embeddings" / f"{backbone}.parquet")
    row_of = {track: row for row, track in enumerate(ids)}
    items = sorted(set(train.get_column("track_id").to_list()) & set(row_of))
    item_vectors = np.ascontiguousarray(vectors[[row_of[t] for t in items]], dtype=np.float32)
    index = faiss.IndexFlatIP(item_vectors.shape[1])
    index.add(item_vectors)
    heard = train.group_by("user_id").agg(pl.col("track_id"))
    histories = dict(zip(heard.get_column("user_id").to_list(), heard.get_column("track_id").to_list(), strict=True))
    users = sorted(set(evaluated.get_column("user_id").to_list()) & set(histories))
    sample = np.random.default_rng(0).choice(len(users), size=min(n_users, len(users)), replace=False)
    queries = []
    for position in sample:
        history = [row_of[t] for t in histories[users[position]] if t in row_of]
        queries.append((vectors[history].mean(axis=0, keepdims=True).astype(np.float32), len(history)))
    faiss.omp_set_num_threads(torch.get_num_threads())
    started = time.perf_counter()
    for query, n_heard in queries:
        index.search(query, TOP_K + n_heard)
    seconds = time.perf_counter() - started
    per_user = seconds / len(queries)
    return {
        "backbone": backbone,
        "users_timed": len(queries),
        "seconds_per_user": round(per_user, 4),
        "users": len(users),
        "projected_s": round(per_user * len(users), 1),
        # One query streams the whole item table for 2·items·d FLOP: bound by memory, not by arithmetic.
        "gflops": round(2 * len(items) * item_vectors.shape[1] / per_user / 1e9, 2),
    }


def training_rows(results: Path, paper_epochs: dict[str, int]) -> list[dict]:
    """Seconds per epoch of every trained run, projected from its cut epoch, and the paper's epochs."""
    rows = []
    for log_path in sorted((results / "runs").glob("*/*/seed0/training_log.csv")):
        model, backbone = log_path.parts[-4], log_path.parts[-3]
        per_batch, batches, val_seconds = first_epoch(log_path)
        rows.append(_projection(model, backbone, "training log", per_batch, batches, val_seconds, paper_epochs))
    return rows


def first_epoch(log_path: Path) -> tuple[float, int, float]:
    """Seconds per training batch, batches of a whole epoch and seconds of validation of a run's first trained
    epoch (row 0 of a training log is the untrained model's validation pass)."""
    epoch = pl.read_csv(log_path).filter(pl.col("epoch") == 1).row(0, named=True)
    return epoch["train_seconds"] / epoch["train_batches"], epoch["epoch_batches"], epoch["val_seconds"]


def step_timings(
    missing: list[tuple[str, str]], widths: dict[str, int], results: Path, paper_epochs: dict[str, int], device: str
) -> list[dict]:
    """Timed training steps of the modules the run left out, at paper settings, projected to a whole epoch.

    Validation is not included (``val_s`` is None): only the training step is timed.
    """
    from audiorec.recommenders.options import Bert4RecOptions, ShallowNetOptions

    train = pl.read_parquet(results / "split" / "train.parquet", columns=["user_id", "track_id"])
    n_users, n_items, n_pairs = train["user_id"].n_unique(), train["track_id"].n_unique(), train.height
    rows = []
    for model, backbone in missing:
        width = widths[backbone]
        if model == "shallow":
            options = ShallowNetOptions()
            per_batch = _shallow_step(width, n_users, n_items, options, device)
            batches = math.ceil(n_pairs / options.batch_size)
        else:
            options = Bert4RecOptions()
            per_batch = _bert4rec_step(width, n_items, options, device)
            batches = math.ceil(n_users / options.batch_size)
        rows.append(_projection(model, backbone, "timed steps", per_batch, batches, None, paper_epochs))
    return rows


def _shallow_step(width: int, n_users: int, n_items: int, options, device: str) -> float:
    from audiorec.recommenders.shallow import ShallowNet

    generator = torch.Generator().manual_seed(0)
    module = ShallowNet(
        torch.randn(n_items, width, generator=generator), torch.randn(n_users, width, generator=generator), True, False
    ).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=options.learning_rate)
    size = options.batch_size
    users = torch.randint(n_users, (size,), generator=generator).to(device)
    items = torch.randint(n_items, (size,), generator=generator).to(device)
    negatives = torch.randint(n_users, (size, options.n_negatives), generator=generator).to(device)

    def step() -> None:
        optimizer.zero_grad()
        module.hinge_loss(users, items, negatives, options.margin).backward()
        optimizer.step()

    return _time(step, device)


def _bert4rec_step(width: int, n_items: int, options, device: str) -> float:
    """Seconds of one batch of ``options.batch_size`` full-length sequences, from two smaller batches.

    A step costs a fixed part (projecting the whole frozen item table) plus a part per sequence; timing batches
    of 4 and 8 sequences and extrapolating keeps the wide models' measurement short.
    """
    from audiorec.recommenders.bert4rec import Bert4RecNet

    generator = torch.Generator().manual_seed(0)
    items = torch.randn(n_items, width, generator=generator) * 0.1
    module = Bert4RecNet(items, True, width, options).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=options.learning_rate)
    seconds = {}
    for size in (4, 8):
        sequences = torch.randint(n_items, (size, options.max_len), generator=generator).to(device)
        masked = torch.rand(size, options.max_len, generator=generator).to(device) < options.mask_probability
        inputs, targets = sequences.masked_fill(masked, module.mask), sequences[masked]

        def step(inputs=inputs, masked=masked, targets=targets) -> None:
            optimizer.zero_grad()
            module.masked_loss(inputs, masked, targets).backward()
            optimizer.step()

        seconds[size] = _time(step, device, warm_up=not seconds)
    per_sequence = max(seconds[8] - seconds[4], 0.0) / 4
    fixed = seconds[4] - 4 * per_sequence
    return fixed + per_sequence * options.batch_size


def _time(step, device: str, warm_up: bool = True) -> float:
    if warm_up:  # allocations and kernel choices
        step()
    _sync(device)
    started = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - started


def _projection(
    model: str, backbone: str, source: str, per_batch: float, batches: int, val_s: float | None, epochs: dict
) -> dict:
    kind = model.split("_")[0]
    epoch = per_batch * batches + (val_s or 0.0)
    return {
        "model": model,
        "backbone": backbone,
        "from": source,
        "seconds_per_batch": round(per_batch, 3),
        "batches_per_epoch": batches,
        "val_s": val_s,
        "seconds_per_epoch": round(epoch, 1),
        "paper_epochs": epochs[kind],
        "projected_hours_for_paper_epochs": round(epoch * epochs[kind] / 3600, 1),
    }


def _job_seconds(path: Path) -> float:
    with path.open() as handle:
        return float(next(csv.DictReader(handle, delimiter="\t"))["s"])


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
