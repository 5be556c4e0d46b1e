"""Running the workflow on the tiny demo world and reading which jobs Snakemake planned or ran."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CORRUPTED = {"corrupt": "t0003", "empty": "t0007"}


TABLE_RULES = ("aggregate", "cold_start", "probe_table", "ssl_table", "mir_vs_recs", "figures", "layer_figure")
"""Rules that gather a whole dataset's results into tables; they rerun whenever any of their inputs do."""


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in ``workdir``; fail the test with its output if it fails."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    process = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{process.stdout}\n{process.stderr}")
    return process


def planned_jobs(workdir: Path, *args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run (with extra ``args``) would execute, leaving out rule ``all``."""
    return jobs_in(snakemake(workdir, "--dry-run", *args).stdout)


def jobs_in(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job Snakemake's output announces, leaving out rule ``all``."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", output):
        header = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block.strip())
        if not header or header.group(1) == "all":
            continue
        found = re.search(r"wildcards: (.*)", block)
        wildcards = dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}
        jobs.append((header.group(1), wildcards))
    return jobs


def planned_after(workdir: Path, config: dict, change) -> list[tuple[str, dict[str, str]]]:
    """The jobs a dry run plans after ``change`` edits a copy of ``config``; the config is restored afterwards."""
    changed = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))  # key order is the table order
    change(changed)
    write_config(workdir, changed)
    try:
        return planned_jobs(workdir)
    finally:
        write_config(workdir, config)


def executed_after(workdir: Path, config: dict, change, scratch: Path) -> list[tuple[str, dict[str, str]]]:
    """The jobs a real run executes after ``change`` edits ``config``, in a copy of ``workdir`` (times kept)."""
    copy = scratch / "workflow"
    shutil.copytree(workdir, copy, symlinks=True)
    changed = yaml.safe_load(yaml.safe_dump(config, sort_keys=False))
    change(changed)
    write_config(copy, changed)
    process = snakemake(copy)
    return jobs_in(process.stdout + process.stderr)


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
