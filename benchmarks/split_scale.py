"""The temporal split at Music4All-Onion scale: the workflow's Polars split against pandas, in one run.

A listening log of the Onion's schema (string user and track ids, UTC timestamps; 120k users, 56k tracks,
repeat listening, two years ending one month after the evaluation start) is generated as Parquet in chunks,
so generating it never holds the whole log in memory. For each requested size (a prefix of the same log) it
is also written as the fetch writes an interactions table, ids as sorted dictionary codes
(:func:`audiorec.storage.tables.write_interactions`; ``encode_s``). Then each implementation runs in a fresh process
on the same protocol (the first paper's split, test_start 2020-02-20, 12 months of train, one of evaluation):

* ``polars``: :func:`audiorec.stages.split_dataset`, the workflow's stage, on the coded log (integer codes
  grouped by :mod:`audiorec.protocol.pairs`, five tables written);
* ``polars_strings``: the same stage on the string-id log, which it encodes on read;
* ``pandas``: the same protocol written with pandas, reading the string-id log and writing the same tables,
  with pandas 3's default Arrow-backed strings (the baseline the goal is set against);
* ``pandas_codes``: the same pandas code on the coded log, whose ids pandas reads as categoricals;
* ``pandas_object``: the same code with ids as Python string objects, pandas' default before version 3
  (up to ``--object-max-events``).

Time (``seconds``) is the stage's wall time inside the child (imports excluded); peak memory is the child's maximum
resident set size. A watchdog stops a child above ``--memory-limit-gb`` and records that it did not fit.
Both implementations' outputs are compared row for row at every size they share. Optionally
(``--fetch-events``) the Music4All-Onion loader itself (TSV in, ``interactions.parquet`` out) is timed on a
generated ``userid_trackid_timestamp.tsv`` of that many events.

    python benchmarks/split_scale.py                  # writes benchmarks/results/split_scale.json
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
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from memory_watch import memory_watchdog

from audiorec.storage.atomic import write_text_atomic
from audiorec.storage.tables import write_interactions

RESULTS = Path(__file__).parent / "results" / "split_scale.json"
SPLIT = {"test_start": "2020-02-20", "train_months": 12, "test_months": 1, "val_fraction": 0.5, "seed": 0}
LOG_START = datetime(2018, 3, 20, tzinfo=UTC)
LOG_END = datetime(2020, 3, 20, tzinfo=UTC)
CHUNK = 5_000_000
IMPLEMENTATIONS = ("polars", "polars_strings", "pandas", "pandas_codes", "pandas_object")
CODED = {"polars", "pandas_codes"}
"""Implementations that read the coded log; the others read the string-id log."""


# -- the log --------------------------------------------------------------------------------------------------


def _ids(prefix: str, count: int, width: int) -> pa.Array:
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(count)], type=pa.string())


def generate_log(path: Path, n_events: int, n_users: int, n_tracks: int, seed: int = 0) -> None:
    """Write an Onion-like log of ``n_events`` rows in row groups of :data:`CHUNK` events.

    Users have lognormal activity; 70 % of a user's events go to a personal pool of tracks (drawn with a
    geometric rank, so a few favourites are replayed often), the rest to a Zipf-like global popularity.
    Every chunk is drawn from the same distribution, so any prefix is a smaller log of the same kind.
    """
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, n_users)
    activity /= activity.sum()
    popularity = 1.0 / np.arange(1, n_tracks + 1) ** 0.9
    popularity /= popularity.sum()
    popular_order = rng.permutation(n_tracks)
    users_dict, tracks_dict = _ids("user_", n_users, 7), _ids("", n_tracks, 16)
    start, span = int(LOG_START.timestamp()), int((LOG_END - LOG_START).total_seconds())
    schema = pa.schema([("user_id", pa.string()), ("track_id", pa.string()), ("timestamp", pa.timestamp("us", "UTC"))])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for begin in range(0, n_events, CHUNK):
            size = min(CHUNK, n_events - begin)
            users = rng.choice(n_users, size=size, p=activity)
            personal = (users.astype(np.int64) * 7919 + rng.geometric(0.05, size) * 104729) % n_tracks
            popular = popular_order[rng.choice(n_tracks, size=size, p=popularity)]
            tracks = np.where(rng.random(size) < 0.7, personal, popular)
            stamps = (start + rng.integers(0, span, size=size)) * 1_000_000  # whole seconds, as in the Onion
            writer.write_table(
                pa.table(
                    {
                        "user_id": pa.DictionaryArray.from_arrays(pa.array(users, pa.int32()), users_dict).cast(
                            pa.string()
                        ),
                        "track_id": pa.DictionaryArray.from_arrays(pa.array(tracks, pa.int32()), tracks_dict).cast(
                            pa.string()
                        ),
                        "timestamp": pa.array(stamps, pa.timestamp("us", "UTC")),
                    }
                ),
                row_group_size=CHUNK,
            )


def prefix_log(source: Path, path: Path, n_events: int) -> None:
    """The first ``n_events`` rows of ``source``, row group by row group."""
    reader = pq.ParquetFile(source)
    remaining = n_events
    with pq.ParquetWriter(path, reader.schema_arrow, compression="zstd") as writer:
        for index in range(reader.num_row_groups):
            if remaining <= 0:
                break
            table = reader.read_row_group(index).slice(0, remaining)
            writer.write_table(table, row_group_size=CHUNK)
            remaining -= table.num_rows


# -- the two implementations (run in child processes) ---------------------------------------------------------


def run_polars(log: Path, out_dir: Path) -> None:
    from audiorec.stages import split_dataset

    split_dataset(log, SPLIT, out_dir)


def run_pandas(log: Path, out_dir: Path, object_strings: bool = False) -> None:
    """The first paper's split (see audiorec.protocol.split) with pandas: one row per (user, track), first listen.

    ``object_strings`` reads ids as Python string objects, the default before pandas 3, instead of pandas 3's
    Arrow-backed strings.
    """
    import pandas as pd

    if object_strings:
        pd.set_option("future.infer_string", False)

    from audiorec.protocol.split import SplitConfig

    config = SplitConfig.from_mapping(SPLIT)
    test_start, train_start, test_end = (
        pd.Timestamp(t) for t in (config.test_start, config.train_start, config.test_end)
    )
    events = pd.read_parquet(log)
    events = events[events["timestamp"] < test_end]
    for name in ("user_id", "track_id"):
        if isinstance(events[name].dtype, pd.CategoricalDtype):  # the coded log: group on the codes
            events[name] = events[name].cat.remove_unused_categories()
    in_window = (events["timestamp"] >= train_start) & (events["timestamp"] < test_start)
    events = events.assign(
        train_plays=in_window,
        eval_plays=events["timestamp"] >= test_start,
        before_plays=events["timestamp"] < train_start,
        window_ts=events["timestamp"].where(in_window),
    )
    pairs = (
        events.groupby(["user_id", "track_id"], sort=False, observed=True)
        .agg(
            first_ts=("timestamp", "min"),
            window_ts=("window_ts", "min"),
            train_plays=("train_plays", "sum"),
            eval_plays=("eval_plays", "sum"),
            before_plays=("before_plays", "sum"),
        )
        .reset_index()
    )
    del events
    # Train: every pair with a listen in the window (replays included), ordered by its first listen there.
    in_train = pairs["train_plays"] > 0
    train = pairs.loc[in_train, ["user_id", "track_id", "window_ts"]].rename(columns={"window_ts": "first_ts"})
    train = train.assign(plays=pairs.loc[in_train, "train_plays"])
    later = pairs["first_ts"] >= test_start
    candidates = pairs.loc[later, ["user_id", "track_id", "first_ts"]].assign(plays=pairs.loc[later, "eval_plays"])
    known_tracks = pairs.loc[pairs["first_ts"] < test_start, "track_id"].unique()
    train_users, train_tracks = train["user_id"].unique(), train["track_id"].unique()
    warm_user = candidates["user_id"].isin(train_users)
    eligible = candidates[warm_user & candidates["track_id"].isin(train_tracks)]
    users = np.sort(np.asarray(eligible["user_id"].unique()).astype(object))
    order = np.random.default_rng(config.seed).permutation(len(users))
    n_val = int(np.floor(config.val_fraction * len(users) + 0.5))
    val_users = users[order[:n_val]]
    is_val = eligible["user_id"].isin(val_users)
    cold = candidates[warm_user & ~candidates["track_id"].isin(known_tracks)]
    earlier = pairs[(pairs["first_ts"] < train_start) & ~in_train]
    earlier = earlier[earlier["user_id"].isin(users) & earlier["track_id"].isin(train_tracks)]
    earlier = earlier[["user_id", "track_id", "first_ts"]].assign(plays=earlier["before_plays"])
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {"train": train, "val": eligible[is_val], "test": eligible[~is_val], "cold_test": cold}
    for name, frame in (splits | {"heard_before_window": earlier}).items():
        frame = frame.astype({"plays": "int32", "user_id": "str", "track_id": "str"})
        frame = frame.sort_values(["user_id", "first_ts", "track_id"])
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)


def child(task: str, first: str, second: str) -> None:
    """Run one task in this (fresh) process and print its wall time, imports excluded, as JSON."""
    import pandas  # noqa: F401 - imported before the clock starts, like the library below

    from audiorec.stages import fetch_dataset, split_dataset  # noqa: F401

    start = time.perf_counter()
    if task == "fetch":
        fetch_dataset("music4all_onion", json.loads(first), second)
    elif task == "extract":
        from audiorec.storage.archives import extract_archive

        extract_archive(first, "bz2", second, progress=False)
    else:
        runners = {
            "polars": run_polars,
            "polars_strings": run_polars,
            "pandas": run_pandas,
            "pandas_codes": run_pandas,
            "pandas_object": partial(run_pandas, object_strings=True),
        }
        runners[task](Path(first), Path(second))
    print(json.dumps({"seconds": time.perf_counter() - start}))


# -- measuring ------------------------------------------------------------------------------------------------


def measure(args: list[str], memory_limit_gb: float) -> dict:
    """Run ``python THIS child ARGS``; return its timing, peak RSS, and whether the watchdog stopped it.

    The peak comes from the kernel's accounting of the child (``wait4``'s ``ru_maxrss``), which catches
    short spikes that polling would miss; the watchdog only polls to stop a child that outgrows the limit.
    """
    process = subprocess.Popen(
        [sys.executable, __file__, "child", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with memory_watchdog(process.pid, memory_limit_gb) as stopped:
        start = time.perf_counter()
        stdout, stderr = process.stdout.read(), process.stderr.read()  # drain the pipes so the child never blocks
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    result = {
        "peak_rss_gb": round(usage.ru_maxrss * 1024 / 2**30, 3),
        "process_wall_s": round(wall, 2),
        "load_1min_after": round(os.getloadavg()[0], 1),  # other work on the machine slows both sides
    }
    if stopped.is_set():
        return {**result, "status": f"stopped above {memory_limit_gb} GB"}
    if process.returncode < 0:
        return {**result, "status": f"killed by signal {-process.returncode} (the kernel's out-of-memory killer?)"}
    if process.returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {process.returncode}"
        return {**result, "status": f"failed: {last}"}
    return {**result, "status": "ok", "seconds": round(json.loads(stdout.strip().splitlines()[-1])["seconds"], 2)}


def same_outputs(first: Path, second: Path) -> bool:
    """Whether two split folders hold the same rows (the split tables are sorted the same way)."""
    for name in ("train", "val", "test", "cold_test", "heard_before_window"):
        a = pl.read_parquet(first / f"{name}.parquet").select("user_id", "track_id", "first_ts", "plays")
        b = pl.read_parquet(second / f"{name}.parquet").select("user_id", "track_id", "first_ts", "plays")
        b = b.with_columns(pl.col("first_ts").dt.cast_time_unit("us").dt.convert_time_zone("UTC"))
        if a.shape != b.shape or not a.equals(b):
            return False
    return True


def fetch_benchmark(folder: Path, log: Path, n_events: int, memory_limit_gb: float) -> dict:
    """Time the Music4All-Onion loader on a TSV of the release's format made of the first ``n_events`` rows."""
    tsv = folder / "userid_trackid_timestamp.tsv"
    reader = pq.ParquetFile(log)
    schema = pa.schema([("user_id", pa.string()), ("track_id", pa.string()), ("timestamp", pa.string())])
    remaining = n_events
    with pacsv.CSVWriter(tsv, schema, write_options=pacsv.WriteOptions(delimiter="\t", quoting_style="none")) as out:
        for index in range(reader.num_row_groups):
            if remaining <= 0:
                break
            table = reader.read_row_group(index).slice(0, remaining)
            seconds = table.column("timestamp").cast(pa.timestamp("s", "UTC"))
            stamps = pc.strftime(seconds, format="%Y-%m-%d %H:%M:%S")
            out.write_table(pa.table([table.column(0), table.column(1), stamps], schema=schema))
            remaining -= table.num_rows
    audio = folder / "audios"
    audio.mkdir(exist_ok=True)
    for track in pq.read_table(log, columns=["track_id"]).column("track_id").unique().to_pylist():
        (audio / f"{track}.mp3").touch()  # empty clips: their duration is NaN, which the loader allows
    options = json.dumps({"listening_events": str(tsv), "audio_dir": str(audio)})
    result = measure(["fetch", options, str(folder / "onion_data")], memory_limit_gb)
    return {**result, "events": n_events, "tsv_gb": round(tsv.stat().st_size / 2**30, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000, 30_000_000, 100_000_000])
    parser.add_argument("--pandas-max-events", type=int, default=100_000_000, help="skip pandas above this size")
    parser.add_argument("--object-max-events", type=int, default=30_000_000, help="skip pandas_object above this")
    parser.add_argument("--codes-max-events", type=int, default=100_000_000, help="skip pandas_codes above this")
    parser.add_argument("--users", type=int, default=120_000)
    parser.add_argument("--tracks", type=int, default=56_000)
    parser.add_argument("--memory-limit-gb", type=float, default=20.0)
    parser.add_argument("--fetch-events", type=int, default=0, help="also time the Onion loader on a TSV this long")
    parser.add_argument("--workdir", type=Path, default=None, help="where the logs go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = sorted(args.events)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        full = folder / f"log_{sizes[-1]}.parquet"
        start = time.perf_counter()
        generate_log(full, sizes[-1], args.users, args.tracks)
        generation_s = time.perf_counter() - start
        runs = []
        for size in sizes:
            log = full if size == sizes[-1] else folder / f"log_{size}.parquet"
            if size != sizes[-1]:
                prefix_log(full, log, size)
            coded = folder / f"coded_{size}.parquet"
            start = time.perf_counter()
            write_interactions(pl.scan_parquet(log), coded)
            row = {
                "events": size,
                "log_parquet_gb": round(log.stat().st_size / 2**30, 3),
                "coded_log_parquet_gb": round(coded.stat().st_size / 2**30, 3),
                "encode_s": round(time.perf_counter() - start, 1),
            }
            for implementation in IMPLEMENTATIONS:
                if implementation.startswith("pandas") and size > args.pandas_max_events:
                    row[implementation] = {"status": "not run (--pandas-max-events)"}
                    continue
                if implementation == "pandas_object" and size > args.object_max_events:
                    row[implementation] = {"status": "not run (--object-max-events)"}
                    continue
                if implementation == "pandas_codes" and size > args.codes_max_events:
                    row[implementation] = {"status": "not run (--codes-max-events)"}
                    continue
                out = folder / f"{implementation}_{size}"
                source = coded if implementation in CODED else log
                row[implementation] = measure([implementation, str(source), str(out)], args.memory_limit_gb)
                print(size, implementation, row[implementation], flush=True)
            for other in IMPLEMENTATIONS[1:]:
                if row["polars"].get("status") == row[other].get("status") == "ok":
                    row[other]["same_rows_as_polars"] = same_outputs(
                        folder / f"polars_{size}", folder / f"{other}_{size}"
                    )
                    row[other]["time_over_polars"] = round(row[other]["seconds"] / row["polars"]["seconds"], 2)
                    row[other]["memory_over_polars"] = round(
                        row[other]["peak_rss_gb"] / row["polars"]["peak_rss_gb"], 2
                    )
            if row["polars"].get("status") == "ok":
                row["split_rows"] = {
                    name: pl.scan_parquet(folder / f"polars_{size}" / f"{name}.parquet")
                    .select(pl.len())
                    .collect()
                    .item()
                    for name in ("train", "val", "test", "cold_test")
                }
            if row["pandas"].get("status") == "ok" and row["polars"].get("status") == "ok":
                row["speedup_over_pandas"] = round(row["pandas"]["seconds"] / row["polars"]["seconds"], 2)
            runs.append(row)
            coded.unlink()
        fetch = fetch_benchmark(folder, full, args.fetch_events, args.memory_limit_gb) if args.fetch_events else None
    report = {
        "what": (
            "audiorec temporal split (coded ids, audiorec.protocol.pairs) vs the same protocol in pandas, "
            "Onion-like logs"
        ),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "polars": pl.__version__, "pandas": importlib.metadata.version("pandas")},
        "log": {"users": args.users, "tracks": args.tracks, "from": LOG_START.isoformat(), "to": LOG_END.isoformat(),
                "generation_s_for_largest": round(generation_s, 1)},
        "split": SPLIT,
        "runs": runs,
        "onion_fetch": fetch,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(report, indent=2) + "\n", args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:5])
    else:
        main()
