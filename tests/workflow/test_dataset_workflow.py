"""Real-dataset sources through the Snakemake DAG: a local collection and Music4All-Onion fixtures end to end.

The Onion listening log is served compressed by a loopback HTTP server and declared as a download with a
checksum and ``archive: bz2``, so the run also goes through rules ``download`` and ``extract_archive``.
"""

from __future__ import annotations

import bz2
import copy
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from dataset_fixtures import write_aotm, write_fma, write_irmas, write_local, write_onion
from loopback import Site, serve
from tiny_workflow import REPO, jobs_in, planned_jobs, snakemake, write_config
from workflow_copies import copy_workflow

from audiorec.storage.tables import read_embeddings, read_table

pytestmark = pytest.mark.workflow

EVENTS = "userid_trackid_timestamp.tsv.bz2"


def _sha256_of(data: bytes | Path) -> str:
    return hashlib.sha256(data.read_bytes() if isinstance(data, Path) else data).hexdigest()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("datasets")
    onion = write_onion(root / "onion")
    return {"root": root, "local": write_local(root / "local"), "onion": onion}


@pytest.fixture(scope="module")
def site(data: dict) -> Site:
    with serve(Site(files={f"/{EVENTS}": bz2.compress(data["onion"]["events"].read_bytes())})) as running:
        yield running


@pytest.fixture(scope="module")
def config(data: dict, site: Site) -> dict:
    """The tiny test config with a local collection and a Music4All-Onion dataset instead of the demo world."""
    config = yaml.safe_load((REPO / ".test" / "config_tiny" / "config.yaml").read_text())
    local, onion = data["local"], data["onion"]
    split = {"test_start": "2020-02-20"}
    config["datasets"] = {
        "mine": {
            "source": "local",
            "options": {
                "interactions": str(local["interactions"]),
                "audio_dir": str(local["audio_dir"]),
                "user_column": "listener",
                "track_column": "song",
                "timestamp_column": "played_at",
            },
            "split": split,
        },
        "onion": {
            "source": "music4all_onion",
            "downloads": {
                EVENTS: {
                    "url": site.url(f"/{EVENTS}"),
                    "sha256": _sha256_of(site.files[f"/{EVENTS}"]),
                    "archive": "bz2",
                },
                "id_mfcc_stats.tsv": {"path": str(onion["mfcc_stats"]), "sha256": _sha256_of(onion["mfcc_stats"])},
            },
            "options": {
                "listening_events": f"{{download:{EVENTS}}}/userid_trackid_timestamp.tsv",
                "audio_dir": str(onion["audio_dir"]),
                "mfcc_stats": "{download:id_mfcc_stats.tsv}",
            },
            "split": split,
        },
    }
    config["models"] = {"knn": {"kind": "knn"}}
    config["recommend"] = {"top_k": 5}
    config["evaluation"] = {"ks": [2, 5]}
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, config: dict) -> Path:
    root = copy_workflow(tmp_path_factory.mktemp("datasets_workflow"), config)
    snakemake(root)
    return root


def _dry_run_error(workdir: Path, config: dict) -> str:
    """Write ``config``, dry-run, restore nothing; return Snakemake's output of the failed DAG build."""
    write_config(workdir, config)
    command = [sys.executable, "-m", "snakemake", "--cores", "1", "--dry-run"]
    process = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    assert process.returncode != 0
    return " ".join((process.stdout + process.stderr).split())


def test_local_and_onion_datasets_run_end_to_end(workdir: Path, data: dict, site: Site) -> None:
    for name in ("mine", "onion"):
        table = pl.read_csv(workdir / f"results/{name}/tables/recommendation.csv")
        assert sorted(zip(table["split"], table["model"], table["backbone"], strict=True)) == [
            ("test", "knn", "mfcc"),
            ("val", "knn", "mfcc"),
        ]
        stats = pl.read_csv(workdir / f"results/{name}/split/stats.csv")
        assert stats.filter(pl.col("split") == "train").select("users", "items").row(0) == (10, 12)
        embedded, _ = read_embeddings(workdir / f"results/{name}/embeddings/mfcc.parquet")
        assert len(embedded) == 12
    assert read_table(workdir / "results/mine/data/tracks.parquet")["track_id"][0] == "jazz/song00"
    assert site.requests == [(f"/{EVENTS}", None)]  # downloaded once, through the loopback server
    resources = workdir / "resources/datasets/onion"
    assert (resources / "downloads" / "id_mfcc_stats.tsv").is_symlink()
    unpacked = resources / "extracted" / EVENTS / "userid_trackid_timestamp.tsv"
    assert unpacked.read_bytes() == data["onion"]["events"].read_bytes()
    log = (workdir / "results/onion/logs/download" / f"{EVENTS}.log").read_text()
    assert "sha256 verified" in log


def test_second_run_has_nothing_to_do(workdir: Path) -> None:
    assert planned_jobs(workdir) == []


def test_precomputed_mfcc_joins_as_a_backbone_without_refetching(workdir: Path, config: dict, data: dict) -> None:
    changed = copy.deepcopy(config)
    del changed["datasets"]["mine"]  # a precomputed backbone needs every dataset to ship the feature
    changed["backbones"]["onion_mfcc"] = {"kind": "precomputed", "options": {"feature": "mfcc_stats"}}
    write_config(workdir, changed)
    try:
        process = snakemake(workdir)
        jobs = jobs_in(process.stdout + process.stderr)
        # The new backbone embeds every train track, so the candidate set keeps its checksum: knn/mfcc is not
        # ranked again.
        assert sorted({rule for rule, _ in jobs}) == [
            "aggregate",
            "candidates",
            "cold_start",
            "embed_precomputed",
            "figures",
            "recommend",
            "recommend_new_items",
        ]
        assert all(w.get("backbone", "onion_mfcc") == "onion_mfcc" for rule, w in jobs)
    finally:
        write_config(workdir, config)
    track_ids, vectors = read_embeddings(workdir / "results/onion/embeddings/onion_mfcc.parquet")
    assert track_ids == data["onion"]["track_ids"] and vectors.shape == (12, 104)
    expected = pl.read_csv(data["onion"]["mfcc_stats"], separator="\t").drop("id").to_numpy()
    assert np.allclose(vectors, expected, atol=1e-6)
    assert read_table(workdir / "results/onion/embeddings/onion_mfcc.failures.parquet", "failures").is_empty()
    table = pl.read_csv(workdir / "results/onion/tables/recommendation.csv")
    assert set(table["backbone"]) == {"mfcc", "onion_mfcc"}


def test_sources_without_a_listening_log_are_fetched_and_embedded_but_not_split(
    workdir: Path, config: dict, data: dict
) -> None:
    root = data["root"]
    fma, irmas, aotm = write_fma(root / "fma"), write_irmas(root / "irmas"), write_aotm(root / "aotm")
    changed = copy.deepcopy(config)
    changed["datasets"] = {
        "fma_small": {"source": "fma", "options": {key: str(fma[key]) for key in ("metadata", "audio_dir")}},
        "irmas": {"source": "irmas", "options": {"root": str(irmas)}},
        "aotm": {"source": "aotm2011", "options": {key: str(aotm[key]) for key in ("playlists", "audio_map")}},
    }
    write_config(workdir, changed)
    try:
        jobs = planned_jobs(workdir)
    finally:
        write_config(workdir, config)
    rules = {rule for rule, _ in jobs}
    assert {"fetch_aotm2011", "fetch_fma", "fetch_irmas", "embed_gather"} <= rules
    assert not rules & {"split_temporal", "recommend", "aggregate", "cold_start"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["backbones"].update(onion_mfcc={"kind": "precomputed", "options": {"feature": "mfcc_stats"}}),
            "backbone 'onion_mfcc' reads the precomputed feature 'mfcc_stats', which datasets.mine (source 'local') "
            "does not provide",
        ),
        (lambda c: c["datasets"]["mine"].pop("split"), "datasets.mine: source 'local' has a listening log, so a split"),
    ],
)
def test_dataset_configs_that_cannot_work_fail_before_anything_runs(workdir: Path, config: dict, change, message):
    broken = copy.deepcopy(config)
    change(broken)
    try:
        output = _dry_run_error(workdir, broken)
    finally:
        write_config(workdir, config)
    assert message in output
