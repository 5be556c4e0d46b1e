"""The Snakemake workflow end to end on the tiny demo world: results, idempotence, partial rebuilds, bad audio."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from audiorec.tables import read_embeddings, read_table

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
CORRUPTED = {"corrupt": "t0003", "empty": "t0007"}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in ``workdir``; fail the test with its output if it fails."""
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    process = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    if process.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{process.stdout}\n{process.stderr}")
    return process


def planned_jobs(workdir: Path) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run would execute, leaving out the target rule ``all``."""
    output = snakemake(workdir, "--dry-run").stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", output):
        header = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block.strip())
        if not header or header.group(1) == "all":
            continue
        found = re.search(r"wildcards: (.*)", block)
        wildcards = dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}
        jobs.append((header.group(1), wildcards))
    return jobs


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def tiny_config() -> dict:
    config = yaml.safe_load((REPO / ".test" / "config_tiny" / "config.yaml").read_text())
    # A second backbone, so a change to one of them can be shown not to touch the other.
    config["backbones"]["mfcc8"] = {"kind": "mfcc", "options": {"n_mfcc": 8}}
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_config) -> Path:
    """A copy of the workflow, run once on the tiny world with two audio files broken after generation."""
    root = tmp_path_factory.mktemp("workflow")
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflow", root / "workflow")
    shutil.copytree(REPO / "config", root / "config")
    write_config(root, tiny_config)
    snakemake(root, "results/demo/data/tracks.parquet")
    audio = root / "results" / "demo" / "data" / "audio"
    (audio / f"{CORRUPTED['corrupt']}.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + b"\x13" * 500)
    (audio / f"{CORRUPTED['empty']}.flac").write_bytes(b"")
    snakemake(root)
    return root


def test_results_table_has_every_run(workdir):
    table = pl.read_csv(workdir / "results/demo/tables/recommendation.csv")
    runs = set(zip(table["split"], table["model"], table["backbone"], strict=True))
    expected = {
        (split, model, backbone)
        for split in ("val", "test")
        for model, backbone in [("knn", "mfcc"), ("knn", "mfcc8"), ("popularity", "none"), ("random", "none")]
    }
    assert runs == expected
    for column in ("HitRate@10", "Recall@50", "NDCG@50", "Precision@10", "MRR@50", "NDCG@50 ci_low"):
        assert column in table.columns
    markdown = (workdir / "results/demo/tables/recommendation.md").read_text()
    assert "## test" in markdown and "## Split statistics" in markdown and "cold_test" in markdown


def test_content_matters_knn_beats_random(workdir):
    table = pl.read_csv(workdir / "results/demo/tables/recommendation.csv").filter(pl.col("split") == "test")
    hit_rate = {row["model"] + "/" + row["backbone"]: row["HitRate@50"] for row in table.iter_rows(named=True)}
    assert hit_rate["knn/mfcc"] > hit_rate["random/none"]


def test_broken_audio_is_recorded_and_every_other_track_embedded(workdir):
    failures = read_table(workdir / "results/demo/embeddings/mfcc.failures.parquet", "failures")
    errors = dict(zip(failures["track_id"], failures["error"], strict=True))
    assert set(errors) == set(CORRUPTED.values())
    assert "empty" in errors[CORRUPTED["empty"]]
    assert "cannot decode" in errors[CORRUPTED["corrupt"]]
    track_ids, vectors = read_embeddings(workdir / "results/demo/embeddings/mfcc.parquet")
    n_tracks = read_table(workdir / "results/demo/data/tracks.parquet", "tracks").height
    assert len(track_ids) == n_tracks - 2 and not set(track_ids) & set(CORRUPTED.values())
    assert vectors.shape == (n_tracks - 2, 104)
    log = (workdir / "results/demo/logs/embed_shard/mfcc/shard0.log").read_text()
    assert CORRUPTED["corrupt"] in log


def test_second_run_has_nothing_to_do(workdir):
    assert planned_jobs(workdir) == []


def test_changing_one_backbone_reruns_only_its_descendants(workdir, tiny_config):
    changed = yaml.safe_load(yaml.safe_dump(tiny_config))
    changed["backbones"]["mfcc8"]["options"]["n_fft"] = 1024
    write_config(workdir, changed)
    try:
        jobs = planned_jobs(workdir)
    finally:
        write_config(workdir, tiny_config)
    rules = sorted({rule for rule, _ in jobs})
    assert rules == ["aggregate", "embed_gather", "embed_shard", "evaluate", "recommend"]
    assert all(w.get("backbone", "mfcc8") == "mfcc8" for _, w in jobs)
    assert sum(rule == "embed_shard" for rule, _ in jobs) == 3  # 200 tracks in shards of 80
    assert sum(rule == "evaluate" for rule, _ in jobs) == 2  # knn on mfcc8, val and test


def test_changing_only_the_layer_reruns_no_forward_pass(workdir, tiny_config):
    changed = yaml.safe_load(yaml.safe_dump(tiny_config))
    changed["backbones"]["mfcc"]["layer"] = "mean"
    write_config(workdir, changed)
    try:
        jobs = planned_jobs(workdir)
    finally:
        write_config(workdir, tiny_config)
    assert "embed_shard" not in {rule for rule, _ in jobs}
    assert ("embed_gather", {"dataset": "demo", "backbone": "mfcc"}) in jobs


def test_changing_a_model_reruns_only_that_model(workdir, tiny_config):
    changed = yaml.safe_load(yaml.safe_dump(tiny_config))
    changed["models"]["knn"]["options"] = {"standardize": True}
    write_config(workdir, changed)
    try:
        jobs = planned_jobs(workdir)
    finally:
        write_config(workdir, tiny_config)
    assert sorted({rule for rule, _ in jobs}) == ["aggregate", "evaluate", "recommend"]
    assert {w["model"] for rule, w in jobs if rule != "aggregate"} == {"knn"}


def test_invalid_config_is_rejected_before_anything_runs(workdir, tiny_config):
    broken = yaml.safe_load(yaml.safe_dump(tiny_config))
    broken["models"]["knn"]["kind"] = "svd"
    write_config(workdir, broken)
    try:
        process = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", "--dry-run"],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        write_config(workdir, tiny_config)
    assert process.returncode != 0
    assert "svd" in process.stdout + process.stderr
