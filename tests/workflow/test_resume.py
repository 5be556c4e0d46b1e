"""A run killed in the middle of extraction resumes: finished shards are reused, the result is unchanged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_limits
from tiny_workflow import planned_jobs, snakemake
from workflow_copies import copy_workflow, small_world_config

from audiorec.stages import embed_shard, gather_embeddings
from audiorec.storage.logs import FAILURE_PREFIX
from audiorec.storage.tables import read_embeddings, read_table

pytestmark = pytest.mark.workflow

N_TRACKS, SHARD_SIZE = 24, 3
N_SHARDS = N_TRACKS // SHARD_SIZE
KILL_AFTER = 3
"""Finished shards to wait for before killing the run (two shard jobs run at a time)."""
TARGET = "results/demo/embeddings/mfcc.parquet"


def finished_shards(shard_dir: Path) -> set[int]:
    """Shards whose vectors file exists (written by rename, so it is complete if it exists)."""
    return {int(path.name.split(".")[0].removeprefix("shard")) for path in shard_dir.glob("shard*.vectors.parquet")}


def kill_when_shards_are_done(workdir: Path, count: int) -> None:
    """Run Snakemake towards the embeddings table and ``SIGKILL`` it, jobs included, once ``count`` shards exist."""
    shard_dir = workdir / "results/demo/embeddings/mfcc"
    command = [sys.executable, "-m", "snakemake", "--cores", "2", TARGET]
    # A session of its own, so that one killpg reaches Snakemake and every job it started.
    process = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 180
    try:
        while len(finished_shards(shard_dir)) < count:
            if process.poll() is not None:
                pytest.fail(f"Snakemake ended (status {process.returncode}) before {count} shards were done")
            if time.monotonic() > deadline:
                pytest.fail(f"fewer than {count} shards after 180 s")
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> dict:
    """Kill a run after a few shards, then resume it; record what existed, what was planned and when."""
    workdir = copy_workflow(tmp_path_factory.mktemp("resume"), small_world_config(N_TRACKS, SHARD_SIZE))
    shard_dir = workdir / "results/demo/embeddings/mfcc"
    kill_when_shards_are_done(workdir, KILL_AFTER)
    survivors = finished_shards(shard_dir)
    visible = [path for path in (workdir / "results").rglob("*.parquet") if not path.name.startswith(".")]
    for path in visible:  # nothing that looks complete may be half-written
        pq.read_table(path)
    mtimes = {shard: (shard_dir / f"shard{shard}.vectors.parquet").stat().st_mtime_ns for shard in survivors}
    # A killed Snakemake cannot release its lock; --unlock is the documented first step of a resume.
    snakemake(workdir, "--unlock")
    planned = planned_jobs(workdir, TARGET)
    snakemake(workdir, TARGET)
    return {"workdir": workdir, "survivors": survivors, "mtimes": mtimes, "planned": planned}


def test_rerun_plans_only_the_shards_the_kill_left_unfinished(resumed):
    planned_shards = {int(w["shard"]) for rule, w in resumed["planned"] if rule == "embed_shard"}
    survivors = resumed["survivors"]
    assert len(survivors) >= KILL_AFTER and len(survivors) < N_SHARDS
    assert set(range(N_SHARDS)) - survivors <= planned_shards
    # At most the two shards in flight at the kill may have landed before Snakemake recorded them as done.
    assert len(planned_shards & survivors) <= 2
    assert {rule for rule, _ in resumed["planned"]} == {"embed_shard", "embed_gather"}


def test_finished_shards_are_reused_untouched(resumed):
    shard_dir = resumed["workdir"] / "results/demo/embeddings/mfcc"
    planned_shards = {int(w["shard"]) for rule, w in resumed["planned"] if rule == "embed_shard"}
    reused = resumed["survivors"] - planned_shards
    assert len(reused) >= KILL_AFTER - 2
    for shard in reused:
        assert (shard_dir / f"shard{shard}.vectors.parquet").stat().st_mtime_ns == resumed["mtimes"][shard]
    assert finished_shards(shard_dir) == set(range(N_SHARDS))
    assert not list(shard_dir.glob(".*.tmp"))  # killed writers' temporaries were cleared by the rerun


def test_resumed_embeddings_equal_an_uninterrupted_extraction(resumed, tmp_path):
    workdir = resumed["workdir"]
    tracks = workdir / "results/demo/data/tracks.parquet"
    config = small_world_config(N_TRACKS, SHARD_SIZE)
    spec = {"kind": "mfcc", "options": config["backbones"]["mfcc"]["options"]}
    # One uninterrupted pass over the whole catalogue, outside Snakemake. Like Snakemake's one-thread jobs, it
    # uses one BLAS thread: float32 MFCCs differ in the last bits with the thread count.
    with threadpool_limits(limits=1):
        embed_shard(tracks, spec, 0, N_TRACKS, tmp_path / "all.vectors.parquet", tmp_path / "all.failures.parquet")
    gather_embeddings(
        [tmp_path / "all.vectors.parquet"],
        [tmp_path / "all.failures.parquet"],
        "mfcc",
        "last",
        tmp_path / "mfcc.parquet",
        tmp_path / "mfcc.failures.parquet",
    )
    expected_ids, expected = read_embeddings(tmp_path / "mfcc.parquet")
    ids, vectors = read_embeddings(workdir / TARGET)
    assert ids == expected_ids and len(ids) == N_TRACKS
    np.testing.assert_array_equal(vectors, expected)
    assert read_table(workdir / "results/demo/embeddings/mfcc.failures.parquet", "failures").height == 0


def test_a_failed_job_is_summarised_in_one_line_by_show_failed_logs(resumed, tmp_path):
    workdir = copy_workflow(tmp_path / "broken", small_world_config(N_TRACKS, SHARD_SIZE))
    shutil.copytree(resumed["workdir"] / "results", workdir / "results")
    shutil.copytree(resumed["workdir"] / ".snakemake" / "metadata", workdir / ".snakemake" / "metadata")
    damaged = workdir / "results/demo/embeddings/mfcc/shard3.vectors.parquet"
    damaged.write_bytes(b"not a parquet file")
    process = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", TARGET],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode != 0
    summaries = [line for line in (process.stdout + process.stderr).splitlines() if line.startswith(FAILURE_PREFIX)]
    assert len(summaries) == 1, process.stdout + process.stderr
    assert summaries[0].startswith(
        f"{FAILURE_PREFIX} embed_gather (→ {TARGET} and 1 more) failed: SchemaError: "
        "results/demo/embeddings/mfcc/shard3.vectors.parquet: cannot read shard: "
    )
