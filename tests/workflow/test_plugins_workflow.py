"""The worked plugin example (examples/plugins) through the demo DAG: installed as a real package, its rows sit in
the tables beside the built-ins with significance, an edit reruns only its kind's jobs, and a broken plugin
fails its own job in one line while the others finish."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from tiny_workflow import REPO, jobs_in, write_config
from workflow_copies import copy_workflow, small_world_config

from audiorec.storage.logs import FAILURE_PREFIX

pytestmark = pytest.mark.workflow

BROKEN = "plugin_fixtures:HeardFirstRecommender"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example package installed the way a user installs it (a wheel built from its pyproject.toml)."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(REPO / "examples" / "plugins"),
        ],
        check=True,
    )
    return site


@pytest.fixture(scope="module")
def plugin_config() -> dict:
    """The example config's kinds on a small world: KNN on MFCC, on the plugin backbone and on its shuffled
    control; the plugin RP3beta; popularity; and a broken plugin recommender."""
    config = small_world_config(n_tracks=60, shard_size=60, models=("knn", "popularity"))
    example = yaml.safe_load((REPO / "examples" / "plugins" / "config.yaml").read_text())
    config["backbones"]["tiny_cnn"] = {
        **example["backbones"]["tiny_cnn"],
        "options": {"n_mels": 16, "channels": [4, 8]},
    }
    config["models"]["knn"] = {
        "kind": "knn",
        "backbones": ["mfcc", "tiny_cnn", {"backbone": "tiny_cnn", "shuffle": True}],
    }
    config["models"]["rp3beta"] = example["models"]["rp3beta"]
    config["models"]["heard_first"] = {"kind": BROKEN}
    return config


@pytest.fixture(scope="module")
def plugin_workdir(tmp_path_factory, plugin_site, plugin_config) -> Path:
    root = copy_workflow(tmp_path_factory.mktemp("plugins") / "workflow", plugin_config)
    return root


def environment(site: Path) -> dict[str, str]:
    """Jobs import the installed example, and the tests' own broken plugin, as a user's jobs import theirs."""
    paths = [str(site), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    return os.environ | {"PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def run(workdir: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False, env=environment(site))


@pytest.fixture(scope="module")
def first_run(plugin_workdir, plugin_site) -> subprocess.CompletedProcess[str]:
    """The whole config, broken plugin included, with ``--keep-going``."""
    return run(plugin_workdir, plugin_site, "--keep-going")


@pytest.fixture(scope="module")
def finished(first_run, plugin_workdir, plugin_site, plugin_config) -> Path:
    """The same workflow once the broken plugin is taken out of the config: only the tables are left to make."""
    config = yaml.safe_load(yaml.safe_dump(plugin_config, sort_keys=False))
    del config["models"]["heard_first"]
    write_config(plugin_workdir, config)
    process = run(plugin_workdir, plugin_site)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return plugin_workdir


def test_a_broken_plugin_fails_its_own_job_in_one_line_and_the_rest_finish(first_run, plugin_workdir):
    assert first_run.returncode != 0
    results = plugin_workdir / "results" / "demo"
    log = (results / "logs" / "recommend" / "heard_first" / "none" / "seed0.log").read_text().strip().splitlines()
    assert log[-1].startswith(FAILURE_PREFIX) and f"model kind {BROKEN!r}: recommend returned" in log[-1]
    assert "heard before the evaluation window" in log[-1]
    assert not list((results / "runs").glob("heard_first/**/*.parquet"))
    for model, backbone in [("knn", "mfcc"), ("knn", "tiny_cnn"), ("knn", "tiny_cnn_shuffled"), ("rp3beta", "none")]:
        assert (results / "runs" / model / backbone / "seed0" / "recommendations.parquet").exists()


def test_plugin_rows_sit_in_the_tables_with_significance_against_the_built_ins(finished):
    tables = finished / "results" / "demo" / "tables"
    table = pl.read_csv(tables / "recommendation.csv").filter(pl.col("split") == "test")
    rows = set(zip(table["model"], table["backbone"], strict=True))
    assert {("knn", "tiny_cnn"), ("knn", "tiny_cnn_shuffled"), ("rp3beta", "none"), ("knn", "mfcc")} <= rows
    assert table.filter(pl.col("model") == "rp3beta")["HitRate@50"].item() > 0
    tests = pl.read_csv(tables / "significance.csv").filter(pl.col("split") == "test")
    pairs = set(tests.select("model", "backbone", "versus", "reference_backbone").iter_rows())
    assert ("knn", "tiny_cnn", "baseline", "mfcc") in pairs
    assert ("knn", "tiny_cnn", "shuffled", "tiny_cnn_shuffled") in pairs


def test_editing_a_plugin_module_reruns_only_that_kinds_jobs(finished, plugin_site):
    walk = plugin_site / "audiorec_example" / "rp3beta.py"
    walk.write_text(walk.read_text() + "\n# a comment: the module's digest changes\n")
    process = run(finished, plugin_site)
    assert process.returncode == 0, process.stderr[-3000:]
    jobs = jobs_in(process.stdout + process.stderr)
    ranked = {(w.get("model"), w.get("backbone")) for rule, w in jobs if rule in ("recommend", "recommend_new_items")}
    assert ranked == {("rp3beta", "none")}
    assert not any(rule.startswith("embed") for rule, _ in jobs)
    backbone = plugin_site / "audiorec_example" / "backbone.py"
    backbone.write_text(backbone.read_text() + "\n# a comment\n")
    process = run(finished, plugin_site)
    assert process.returncode == 0, process.stderr[-3000:]
    jobs = jobs_in(process.stdout + process.stderr)
    assert {w["backbone"] for rule, w in jobs if rule.startswith("embed")} == {"tiny_cnn"}
    # A comment changes no vector: Snakemake finds the rewritten table's checksum unchanged, and nothing downstream
    # of it needs to rank again; no other backbone's or model's job runs in any case.
    ranked = {(w.get("model"), w.get("backbone")) for rule, w in jobs if rule in ("recommend", "recommend_new_items")}
    assert ranked <= {("knn", "tiny_cnn"), ("knn", "tiny_cnn_shuffled")}
