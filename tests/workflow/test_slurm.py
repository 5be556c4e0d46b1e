"""The demo DAG through a real single-node Slurm cluster gives the same results table as a local run.

The cluster (munged, slurmctld, slurmd with one fake GPU) is started by .ci/slurm-up.sh and stopped by PID by
.ci/slurm-down.sh; .ci/install-slurm.sh installs the Debian packages. Without them, or without root, the test
is skipped with the reason.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from tiny_workflow import snakemake
from workflow_copies import REPO, copy_workflow, small_world_config

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

SLURM_BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")
LOCK = Path(tempfile.gettempdir()) / "audiorec-slurm-test.lock"
"""Serialises test clusters on one machine: they share /etc/slurm, where the job steps' srun looks."""


def cannot_run(reason: str) -> None:
    """Skip, unless the environment demands the cluster (.ci/run does where Slurm is installed)."""
    if os.environ.get("AUDIOREC_REQUIRE_SLURM"):
        pytest.fail(f"AUDIOREC_REQUIRE_SLURM is set, but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[Path]:
    """A running single-node cluster for this module; its state folder is yielded, its daemons stopped after."""
    missing = [name for name in SLURM_BINARIES if shutil.which(name) is None]
    if missing:
        cannot_run(f"Slurm is not installed ({', '.join(missing)} missing): run .ci/install-slurm.sh")
    if os.geteuid() != 0:
        cannot_run("a test Slurm cluster needs root (slurmd starts jobs as their owner)")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        cannot_run("snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')")
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Outside pytest's private temporary folders: munged, running as user munge, must reach its socket.
        state = Path(tempfile.mkdtemp(prefix="audiorec-slurm-"))
        try:
            up = subprocess.run(
                ["bash", str(REPO / ".ci" / "slurm-up.sh"), str(state)], capture_output=True, text=True, check=False
            )
            if up.returncode == 3:
                cannot_run(up.stderr.strip())
            if up.returncode != 0:
                logs = "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in sorted(state.rglob("*.log")))
                pytest.fail(f"slurm-up.sh failed:\n{up.stdout}\n{up.stderr}\n{logs}")
            yield state
        finally:
            subprocess.run(["bash", str(REPO / ".ci" / "slurm-down.sh"), str(state)], check=False)
            shutil.rmtree(state, ignore_errors=True)


def cluster_profile(workdir: Path) -> str:
    """profiles/slurm adapted to the test node, the way a user adapts it to a cluster; returns its folder.

    The node has 2 CPUs and no accounting: threads and CPUs per GPU come from the rules (as in the local run,
    so both runs compute with the same number of BLAS threads), memory is capped to fit several jobs, status
    comes from squeue, and extraction asks for the fake GPU so that a GPU request is scheduled for real.
    """
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    del profile["set-threads"]
    for resources in profile["set-resources"].values():
        resources.pop("cpus_per_gpu", None)
        resources["mem_mb"] = min(resources["mem_mb"], 1500)
    profile["set-resources"]["embed_shard"]["gpu"] = 1
    profile["default-resources"]["mem_mb"] = 1000
    profile.update(
        {
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 1,
            "seconds-between-status-checks": 1,
            "slurm-no-account": True,
            "latency-wait": 5,
        }
    )
    folder = workdir / "profiles" / "slurm-test"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return str(folder.relative_to(workdir))


def test_demo_dag_on_slurm_equals_the_local_run(slurm_cluster, tmp_path):
    config = small_world_config(n_tracks=40, shard_size=20)
    local = copy_workflow(tmp_path / "local", config)
    snakemake(local)
    cluster = copy_workflow(tmp_path / "cluster", config)
    command = [sys.executable, "-m", "snakemake", "--workflow-profile", cluster_profile(cluster)]
    process = subprocess.run(command, cwd=cluster, capture_output=True, text=True, timeout=540, check=False)
    (tmp_path / "cluster.log").write_text(process.stdout + process.stderr)
    if process.returncode != 0:
        pytest.fail(f"the Slurm run failed:\n{process.stdout[-6000:]}\n{process.stderr[-6000:]}")
    output = process.stdout + process.stderr
    # Jobs went through sbatch; only the localrules ran beside Snakemake.
    assert "submitted with SLURM jobid" in output
    started = {kind: set() for kind in ("rule", "localrule")}
    for line in output.splitlines():
        kind, _, name = line.partition(" ")
        if kind in started and name.endswith(":"):
            started[kind].add(name.removesuffix(":"))
    assert {"embed_shard", "embed_gather", "split_temporal", "recommend"} <= started["rule"]
    assert {"aggregate", "cold_start"} <= started["localrule"]
    for table in ("recommendation.csv", "recommendation.md"):
        path = Path("results/demo/tables") / table
        assert (cluster / path).read_bytes() == (local / path).read_bytes()
    # The scheduler allocated the fake GPU to the extraction jobs, and to no other job.
    jobs = subprocess.run(["scontrol", "--oneliner", "show", "job"], capture_output=True, text=True, check=True)
    gpu_rules = {
        line.split("Comment=rule_", 1)[1].split("_wildcards", 1)[0]
        for line in jobs.stdout.splitlines()
        if "Comment=rule_" in line and ("gres:gpu" in line or "gres/gpu" in line)
    }
    assert gpu_rules == {"embed_shard"}
