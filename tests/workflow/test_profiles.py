"""The Slurm profile: Snakemake accepts it, and every job it submits gets memory, wall time and matching CPUs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from tiny_workflow import snakemake
from workflow_copies import REPO, copy_workflow, small_world_config

from audiorec.datasets import DATASET_SOURCES

pytest.importorskip("snakemake_executor_plugin_slurm", reason="the Slurm profile needs snakemake-executor-plugin-slurm")
pytestmark = pytest.mark.workflow

PROFILE = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())


def rule_blocks() -> dict[str, str]:
    """Name → definition of every rule in the Snakefile and workflow/rules, whatever the config enables."""
    rules = {}
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for block in re.split(r"\n(?=\s*(?:rule|checkpoint)\b)", path.read_text()):
            header = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            if header:
                rules[header.group(1)] = block
    return rules


def local_rules() -> set[str]:
    """Rules declared with ``localrule: True`` (a dry run does not say which jobs are local)."""
    return {name for name, block in rule_blocks().items() if re.search(r"^\s+localrule: True$", block, re.MULTILINE)}


def job_blocks(output: str) -> list[dict]:
    """Rule, locality, threads and resources of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=(?:rule|checkpoint) \w+:)", output):
        header = re.match(r"(?:rule|checkpoint) (\w+):", block.strip())
        if not header:
            continue
        threads = re.search(r"\bthreads: (\d+)", block)
        found = re.search(r"\bresources: (.*)", block)
        resources = dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}
        jobs.append(
            {
                "rule": header.group(1),
                "local": header.group(1) in local_rules(),
                "threads": int(threads.group(1)) if threads else 1,
                "resources": resources,
            }
        )
    return jobs


@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> list[dict]:
    """Every job of the tiny DAG (all of the tiny config's models) as the Slurm profile would submit it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("profile"), small_world_config(24, 12, models=None))
    # Past both checkpoints (the tracks table, then the candidate set), so that shards and runs are planned too.
    snakemake(workdir, "results/demo/split/uncovered.csv")
    jobs = []
    # A dry run caps threads at --cores (1 by default); a Slurm run leaves them uncapped.
    command = [sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm", "--dry-run", "--cores", "64"]
    # Jobs behind a checkpoint that must run again are planned only once it has run, so three dry runs together
    # show every rule: the runs (both checkpoints done), the fetch and split, and the extraction.
    for force in ([], ["--forcerun", "fetch_demo"], ["--forcerun", "embed_shard"]):
        process = subprocess.run(
            [*command, *force],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        if process.returncode != 0:
            pytest.fail(f"the Slurm profile is rejected:\n{process.stdout}\n{process.stderr}")
        jobs += job_blocks(process.stdout)
    return jobs


def test_cheap_rules_run_beside_snakemake(planned):
    local = {job["rule"] for job in planned if job["local"]}
    assert {"aggregate", "cold_start", "all"} <= local
    assert not local & {"fetch_demo", "embed_shard", "embed_gather", "split_temporal", "recommend"}


def test_every_submitted_job_has_the_profiles_memory_and_wall_time(planned):
    submitted = [job for job in planned if not job["local"]]
    assert {"fetch_demo", "embed_shard", "embed_gather", "split_temporal", "recommend"} <= {
        job["rule"] for job in submitted
    }
    for job in submitted:
        family = PROFILE["set-resources"].get(job["rule"])
        assert family is not None, f"profiles/slurm sets no resources for rule {job['rule']}"
        assert int(job["resources"]["mem_mb"]) == family["mem_mb"]
        assert int(job["resources"]["runtime"]) == family["runtime"]


def test_gpu_rules_get_as_many_cpus_per_gpu_as_they_use_threads(planned):
    gpu_rules = {job["rule"] for job in planned if "gpu" in job["resources"]}
    assert {"embed_shard", "recommend"} <= gpu_rules
    for rule in gpu_rules:
        assert PROFILE["set-resources"][rule]["cpus_per_gpu"] == PROFILE["set-threads"][rule]
    for job in planned:
        if job["rule"] in gpu_rules:
            assert job["threads"] == PROFILE["set-threads"][job["rule"]]
            assert int(job["resources"]["gpu"]) in (0, 1)


def test_profile_names_only_rules_that_exist():
    # Fetch checkpoints are defined per configured source, as fetch_<source>.
    defined = set(rule_blocks()) | {f"fetch_{source}" for source in DATASET_SOURCES}
    for section in ("set-resources", "set-threads"):
        assert set(PROFILE[section]) <= defined, f"{section} names unknown rules {set(PROFILE[section]) - defined}"
    assert not set(PROFILE["set-resources"]) & local_rules()
