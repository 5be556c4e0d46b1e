"""Crash safety at Onion size: SIGKILL a training job mid-epoch, then Snakemake itself mid-run, and rerun.

The world is `config/examples/onion_scale.yaml`'s (17k train users, ~57k train items, 5M pairs), with a matrix
two cores finish: KNN on two widths, popularity, and the Shallow Net on the 200-d table for a few epochs cut to a
fixed number of batches. It is run twice from nothing, in two folders:

* **uninterrupted**: ``snakemake --cores N``, once;
* **interrupted**: the same matrix, cut twice. First ``snakemake --keep-going``: half an epoch after the Shallow
  Net's resume state (``last.pt``, rewritten after every epoch) holds epoch 1, the training job alone is killed
  with SIGKILL (found as the process holding its rule log open); Snakemake finishes what does not need it and
  exits. Then ``snakemake``: the job resumes, and half an epoch after its next epoch Snakemake and every job it
  started are killed with SIGKILL, as a power cut or a cluster's time limit would. Then ``snakemake --unlock`` (a
  killed Snakemake leaves its lock) and ``snakemake --rerun-incomplete`` finish the run.

Recorded for each kill: the epochs the resume state held and the epoch the next run resumed after (only the
epoch in flight is redone when the two agree); the jobs the last rerun ran; whether any output that existed at a
kill was rewritten afterwards; and whether every final table and model output of the interrupted run is
byte-identical to the uninterrupted run's. Training logs are compared without their wall-time columns, the only
values that depend on the clock; the resume state itself carries them and is not a result. Logs, benchmark files
and figures are not compared. The world has no audio, so no extraction shard is in flight at a kill; a killed
extraction keeping its finished shards is tests/workflow/test_resume.py's.

    python benchmarks/crash_resume.py                  # ~45 min on 2 cores
    python benchmarks/crash_resume.py --scale tiny     # a smoke run of the same steps, ~3 min
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch
import yaml
from onion_scale import CONFIG, DATASET, machine, timed, workflow_copy

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "crash_resume.json"
TRAINED = ("shallow", "musicnn_like", 0)
"""The training job that is killed mid-epoch: (model, backbone, seed)."""
CLOCK_COLUMNS = {"train_seconds", "val_seconds"}
COMPARED = ("data", "split", "embeddings", "runs", "tables")
"""The result folders whose files must match byte for byte (logs, benchmarks and figures are not compared)."""


def crash_config(scale: str, epochs: int, batches: int) -> dict:
    """The Onion-scale example's world with a matrix two cores finish, and a Shallow Net of ``epochs`` epochs."""
    config = yaml.safe_load(CONFIG.read_text())
    config["datasets"][DATASET]["options"]["scale"] = scale
    config["backbones"] = {name: config["backbones"][name] for name in ("musicnn_like", "mert_like")}
    model, backbone, seed = TRAINED
    config["models"] = {
        "knn": {"kind": "knn", "backbones": ["musicnn_like", "mert_like"]},
        "popularity": {"kind": "popularity"},
        model: {
            "kind": "shallow",
            "backbones": [backbone],
            "options": {"max_epochs": epochs, "max_batches_per_epoch": batches, "early_stopping_patience": epochs},
        },
    }
    config["seeds"] = [seed]
    return config


def run_dir(workdir: Path) -> Path:
    model, backbone, seed = TRAINED
    return workdir / "results" / DATASET / "runs" / model / backbone / f"seed{seed}"


def job_log(workdir: Path) -> Path:
    model, backbone, seed = TRAINED
    return workdir / "results" / DATASET / "logs" / "train_recommender" / model / backbone / f"seed{seed}.log"


def finished_epoch(workdir: Path) -> int | None:
    """The last epoch the training job's resume state holds (written atomically after each epoch), if any."""
    state = run_dir(workdir) / "last.pt"
    try:
        return int(torch.load(state, map_location="cpu", weights_only=False)["epoch"])
    except (FileNotFoundError, EOFError, RuntimeError, KeyError):
        return None


def job_processes(snakemake: psutil.Process) -> list[psutil.Process]:
    """The live Python processes Snakemake started (its jobs; a killed job is a zombie until Snakemake reaps it)."""
    jobs = []
    try:
        children = snakemake.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for child in children:
        try:
            if "python" in child.name() and child.status() != psutil.STATUS_ZOMBIE:
                jobs.append(child)
        except psutil.NoSuchProcess:
            continue
    return jobs


def holding(processes: list[psutil.Process], path: Path) -> psutil.Process | None:
    """The process that has ``path`` open (a job writes its rule log through an open handler)."""
    for process in processes:
        try:
            if any(Path(item.path) == path for item in process.open_files()):
                return process
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def wait_for(condition, what: str, process: subprocess.Popen, timeout_s: float):
    """Poll ``condition`` until it returns something truthy; fail if Snakemake ends first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            sys.exit(f"Snakemake ended (status {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            sys.exit(f"no {what} after {timeout_s:.0f} s")
        time.sleep(0.2)


def start_snakemake(workdir: Path, cores: int, env: dict, *extra: str) -> subprocess.Popen:
    """Snakemake in a session of its own, so that one ``killpg`` reaches it and every job it started."""
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), *extra]
    return subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL Snakemake and every job it started (its session), if it still runs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def half_an_epoch_after(workdir: Path, epoch: int, process: subprocess.Popen, timeout_s: float) -> float:
    """Wait until the resume state holds ``epoch``, timing the epoch before it, then half an epoch more."""

    def holds(wanted: int) -> bool:
        done = finished_epoch(workdir)
        return done is not None and done >= wanted

    wait_for(lambda: holds(epoch - 1), f"epoch {epoch - 1}", process, timeout_s)
    started = time.monotonic()
    wait_for(lambda: holds(epoch), f"epoch {epoch}", process, timeout_s)
    epoch_s = time.monotonic() - started
    time.sleep(epoch_s / 2)
    return epoch_s


def resumed_after(workdir: Path) -> int | None:
    """The epoch after which the training job's last run resumed, from its rule log (rewritten by each run)."""
    match = re.search(r"resuming after epoch (\d+)", job_log(workdir).read_text())
    return int(match.group(1)) if match else None


def interrupt(workdir: Path, cores: int, env: dict, timeout_s: float) -> dict:
    """Kill the training job alone mid-epoch, then, in the next run, Snakemake and its jobs mid-epoch; rerun.

    1. ``snakemake --keep-going``; half an epoch after epoch 1, SIGKILL the training job (the process holding its
       rule log open). Snakemake finishes what does not need it and exits.
    2. ``snakemake``; the job resumes; half an epoch after the next epoch, SIGKILL Snakemake's whole session.
    3. ``snakemake --unlock`` (a killed Snakemake leaves its lock), then ``snakemake --rerun-incomplete``.
    """
    phases: dict = {}
    process = start_snakemake(workdir, cores, env, "--keep-going")
    try:
        phases["epoch_s"] = round(half_an_epoch_after(workdir, 1, process, timeout_s), 1)
        job = holding(job_processes(psutil.Process(process.pid)), job_log(workdir).resolve())
        if job is None:
            sys.exit("the training job is not running half an epoch after its first epoch")
        job.send_signal(signal.SIGKILL)
        job.wait()
        killed_at = finished_epoch(workdir)  # read once the job is gone: what its next run can resume from
        process.wait(timeout=timeout_s)  # Snakemake ends the jobs that do not need the killed one, then exits
    finally:
        if process.poll() is None:
            kill_session(process)
    phases["training_job_killed"] = {"epochs_finished": killed_at, "snakemake_status": process.returncode}
    stamps = [output_stamps(workdir)]

    process = start_snakemake(workdir, cores, env)
    try:
        wait_for(
            lambda: job_log(workdir).is_file() and resumed_after(workdir) is not None, "the resume", process, timeout_s
        )
        first = resumed_after(workdir)
        half_an_epoch_after(workdir, first + 1, process, timeout_s)
        running = len(job_processes(psutil.Process(process.pid)))
    finally:
        kill_session(process)
    killed_at = finished_epoch(workdir)
    phases["training_job_killed"]["resumed_after_epoch"] = first
    phases["snakemake_killed"] = {"epochs_finished": killed_at, "jobs_running": running}
    stamps.append(output_stamps(workdir))

    unlock = timed([sys.executable, "-m", "snakemake", "--unlock", "--cores", "1"], workdir, env)
    if unlock["returncode"] != 0:
        sys.exit(f"snakemake --unlock failed:\n{unlock['output'][-5000:]}")
    rerun = timed([sys.executable, "-m", "snakemake", "--cores", str(cores), "--rerun-incomplete"], workdir, env)
    if rerun["returncode"] != 0:
        sys.exit(f"the rerun failed:\n{rerun['output'][-5000:]}")
    phases["snakemake_killed"]["resumed_after_epoch"] = resumed_after(workdir)
    phases["rerun_wall_s"] = rerun["seconds"]
    phases["jobs_rerun"] = jobs_run(rerun["output"])
    after = output_stamps(workdir)
    # The killed job's own run folder is the job in flight at both kills (its training log grows every epoch).
    in_flight = str(run_dir(workdir).relative_to(workdir / "results" / DATASET))
    phases["finished_outputs_rewritten"] = sorted(
        {
            name
            for before in stamps
            for name, stamp in before.items()
            if after.get(name) != stamp and not name.startswith(in_flight)
        }
    )
    return phases


def output_stamps(workdir: Path) -> dict[str, int]:
    """Every compared file that exists now, with its modification time in ns."""
    root = workdir / "results" / DATASET
    return {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for folder in COMPARED
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and path.name != "last.pt"  # the resume state, not a result: it carries wall times
    }


def jobs_run(output: str) -> dict[str, int]:
    """Snakemake's ``Job stats`` table: jobs run per rule."""
    table = output.split("Job stats:", 1)[-1] if "Job stats:" in output else ""
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    counts.pop("all", None)
    counts.pop("total", None)
    return counts


def finished_run(workdir: Path) -> dict:
    """The wall time and jobs of the run that completed last in ``workdir``, from Snakemake's own log of it."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    text = logs[-1].read_text() if logs else ""
    elapsed = re.search(r"Elapsed time: (\d+):(\d+):([\d.]+)", text)
    if "steps (100%) done" not in text or elapsed is None:
        sys.exit(f"--reuse-uninterrupted: no completed run in {workdir}")
    hours, minutes, seconds = elapsed.groups()
    return {"seconds": round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 2), "output": text}


def without_clock(text: str) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in CLOCK_COLUMNS} for row in csv.DictReader(io.StringIO(text))]


def compare(reference: Path, resumed: Path) -> dict:
    """Files of the compared folders: identical, different, or present in one run only."""
    a, b = output_stamps(reference), output_stamps(resumed)
    identical, different = [], []
    for name in sorted(set(a) & set(b)):
        left = (reference / "results" / DATASET / name).read_bytes()
        right = (resumed / "results" / DATASET / name).read_bytes()
        same = left == right
        if not same and name.endswith("training_log.csv"):
            same = without_clock(left.decode()) == without_clock(right.decode())
        (identical if same else different).append(name)
    return {
        "files_compared": len(identical) + len(different),
        "identical": len(identical),
        "different": different,
        "only_uninterrupted": sorted(set(a) - set(b)),
        "only_interrupted": sorted(set(b) - set(a)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiorec-crash-resume"))
    parser.add_argument("--scale", default="onion", help="the synthetic world's preset (tiny: a smoke run)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-batches", type=int, default=200, help="batches per epoch of the Shallow Net")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--timeout-s", type=float, default=3600)
    parser.add_argument(
        "--reuse-uninterrupted",
        action="store_true",
        help="take the uninterrupted run already completed in WORKDIR/uninterrupted (same config) instead of rerunning",
    )
    args = parser.parse_args()

    config = crash_config(args.scale, args.epochs, args.max_batches)
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}
    reference = workflow_copy(args.workdir / "uninterrupted", config)
    if args.reuse_uninterrupted:
        whole = finished_run(reference)
    else:
        whole = timed([sys.executable, "-m", "snakemake", "--cores", str(args.cores)], reference, env)
        if whole["returncode"] != 0:
            sys.exit(f"the uninterrupted run failed:\n{whole['output'][-5000:]}")

    shutil.rmtree(args.workdir / "interrupted", ignore_errors=True)  # from nothing, as the uninterrupted run was
    interrupted = workflow_copy(args.workdir / "interrupted", config)
    phases = interrupt(interrupted, args.cores, env, args.timeout_s)
    comparison = compare(reference, interrupted)
    kills = (phases["training_job_killed"], phases["snakemake_killed"])

    report = {
        "what": __doc__.splitlines()[0],
        "world": f"config/examples/onion_scale.yaml, scale {args.scale}",
        "machine": machine(),
        "cores": args.cores,
        "shallow": {"epochs": args.epochs, "max_batches_per_epoch": args.max_batches},
        "uninterrupted_wall_s": whole["seconds"],
        "jobs_uninterrupted": jobs_run(whole["output"]),
        **phases,
        "comparison": comparison,
        "goals": {
            # Killed after finishing epoch e (mid-epoch e + 1), a run that resumes after e redoes only e + 1.
            "each kill redid at most the epoch in flight": all(
                kill["resumed_after_epoch"] == kill["epochs_finished"] for kill in kills
            ),
            "no finished output redone": not phases["finished_outputs_rewritten"],
            "final tables byte-identical": not comparison["different"]
            and not comparison["only_uninterrupted"]
            and not comparison["only_interrupted"],
        },
    }
    out = RESULTS if args.scale == "onion" else args.workdir / "crash_resume.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: report[key] for key in ("goals", "training_job_killed", "snakemake_killed")}, indent=2))


if __name__ == "__main__":
    main()
