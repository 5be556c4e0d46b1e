"""Fetch and split a listening log shaped like Music4All-Onion's full one: 252M events, bzip2, in one run.

The Onion ships ``userid_trackid_timestamp.tsv`` (a ``user_id  track_id  timestamp`` header, times like
``2019-02-20 13:45:07``), about 252 million events in a 2.2 GB bz2 file. This script generates a log of that
format and size with :func:`split_scale.generate_log`'s distribution (120k users, 56k tracks, two years), streams
it through ``lbzip2`` so the uncompressed text never lands on disk, and then measures, each step in a fresh
process (wall seconds, imports excluded, and peak resident memory):

* ``extract``: :func:`audiorec.storage.archives.extract_archive` of the bz2 file (``lbzip2 -d`` where installed);
* ``fetch``: the ``music4all_onion`` source, TSV in, ``tracks.parquet`` and the coded ``interactions.parquet`` out;
* ``split``: :func:`audiorec.stages.split_dataset` on that table (the first paper's split).

    python benchmarks/onion_log.py --workdir /tmp        # ~15 GB of disk while it runs; writes results/onion_log.json
    python benchmarks/onion_log.py --log /tmp/onion.tsv.bz2 --generate-only   # the log alone, reused by --log
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import psutil
from split_scale import CHUNK, LOG_END, LOG_START, SPLIT, measure

from audiorec.storage.atomic import write_text_atomic

RESULTS = Path(__file__).parent / "results" / "onion_log.json"


def track_id(index: int) -> str:
    """The id of generated track ``index`` (Music4All's ids are 16 characters)."""
    return f"{index:016d}"


def write_bz2_log(path: Path, n_events: int, n_users: int, n_tracks: int, seed: int = 0) -> list[str]:
    """Write an Onion-format TSV of ``n_events`` rows through ``lbzip2`` into ``path``; return the track ids.

    The events follow split_scale's generator (lognormal user activity, personal favourites replayed, Zipf-like
    popularity, whole-second times), drawn in chunks so that memory stays flat.
    """
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, n_users)
    activity /= activity.sum()
    popularity = 1.0 / np.arange(1, n_tracks + 1) ** 0.9
    popularity /= popularity.sum()
    popular_order = rng.permutation(n_tracks)
    user_ids = pl.Series([f"user_{i:07d}" for i in range(n_users)])
    track_ids = pl.Series([track_id(i) for i in range(n_tracks)])
    start, span = int(LOG_START.timestamp()), int((LOG_END - LOG_START).total_seconds())
    with open(path, "wb") as sink:
        compressor = subprocess.Popen(["lbzip2", "-c"], stdin=subprocess.PIPE, stdout=sink)
        for begin in range(0, n_events, CHUNK):
            size = min(CHUNK, n_events - begin)
            users = rng.choice(n_users, size=size, p=activity)
            personal = (users.astype(np.int64) * 7919 + rng.geometric(0.05, size) * 104729) % n_tracks
            popular = popular_order[rng.choice(n_tracks, size=size, p=popularity)]
            tracks = np.where(rng.random(size) < 0.7, personal, popular)
            stamps = (start + rng.integers(0, span, size=size)) * 1_000_000
            chunk = pl.DataFrame(
                {
                    "user_id": user_ids.gather(users),
                    "track_id": track_ids.gather(tracks),
                    "timestamp": pl.Series(stamps).cast(pl.Datetime("us", "UTC")).dt.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            chunk.write_csv(compressor.stdin, separator="\t", include_header=begin == 0)
        compressor.stdin.close()
        if compressor.wait() != 0:
            raise RuntimeError("lbzip2 failed while compressing the generated log")
    return track_ids.to_list()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=252_000_000)
    parser.add_argument("--users", type=int, default=120_000)
    parser.add_argument("--tracks", type=int, default=56_000)
    parser.add_argument("--memory-limit-gb", type=float, default=16.0)
    parser.add_argument("--workdir", type=Path, default=None, help="where the files go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--log",
        type=Path,
        default=None,
        help="keep the generated bz2 log here and reuse it when it exists (generating 252M events takes longer than "
        "the steps measured); --generate-only stops after writing it",
    )
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()
    if shutil.which("lbzip2") is None:
        parser.error("lbzip2 is needed to compress the generated log (apt-get install lbzip2)")
    if args.generate_only and args.log is None:
        parser.error("--generate-only needs --log")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        archive = folder / "userid_trackid_timestamp.tsv.bz2"
        start = time.perf_counter()
        reused = args.log is not None and args.log.exists()
        if reused:  # generated earlier by this script with the same --events, --users and --tracks
            archive.symlink_to(args.log.resolve())
            track_ids = [track_id(i) for i in range(args.tracks)]
        else:
            track_ids = write_bz2_log(args.log or archive, args.events, args.users, args.tracks)
            if args.log is not None:
                archive.symlink_to(args.log.resolve())
        generation_s = time.perf_counter() - start
        if args.generate_only:
            print(f"wrote {args.log} in {generation_s:.0f} s")
            return
        audio = folder / "audios"
        audio.mkdir()
        for track in track_ids:
            (audio / f"{track}.mp3").touch()  # empty clips: their duration is NaN, which the loader allows
        steps = {"extract": measure(["extract", str(archive), str(folder / "events")], args.memory_limit_gb)}
        print("extract", steps["extract"], flush=True)
        tsv = folder / "events" / "userid_trackid_timestamp.tsv"
        tsv_gb = round(tsv.stat().st_size / 2**30, 2) if tsv.exists() else None
        options = json.dumps({"listening_events": str(tsv), "audio_dir": str(audio)})
        steps["fetch"] = measure(["fetch", options, str(folder / "data")], args.memory_limit_gb)
        print("fetch", steps["fetch"], flush=True)
        interactions = folder / "data" / "interactions.parquet"
        tsv.unlink(missing_ok=True)
        steps["split"] = measure(["polars", str(interactions), str(folder / "split")], args.memory_limit_gb)
        print("split", steps["split"], flush=True)
        ok = all(step.get("status") == "ok" for step in steps.values())
        split_rows = (
            {
                name: pl.scan_parquet(folder / "split" / f"{name}.parquet").select(pl.len()).collect().item()
                for name in ("train", "val", "test", "cold_test", "heard_before_window")
            }
            if ok
            else None
        )
        report = {
            "what": "fetch (bz2 extraction + Music4All-Onion loader) and split of a generated Onion-format log",
            "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                        "platform": platform.platform(), "python": platform.python_version(),
                        "polars": pl.__version__, "pandas": importlib.metadata.version("pandas"),
                        "lbzip2": shutil.which("lbzip2") is not None},
            "log": {"events": args.events, "users": args.users, "tracks": args.tracks,
                    "bz2_gb": round(archive.stat().st_size / 2**30, 2), "tsv_gb": tsv_gb,
                    "interactions_parquet_gb": round(interactions.stat().st_size / 2**30, 2) if ok else None,
                    "generation_s": None if reused else round(generation_s, 1), "log_reused": reused},
            "split": SPLIT,
            "steps": steps,
            "total_s": round(sum(step.get("seconds", float("nan")) for step in steps.values()), 1),
            "peak_rss_gb": max(step["peak_rss_gb"] for step in steps.values()),
            "split_rows": split_rows,
        }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(report, indent=2) + "\n", args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
