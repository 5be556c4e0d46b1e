"""A researcher's own vectors through the workflow: a ``precomputed`` backbone read from a Parquet file, a knn run
on it in the results tables, and a replaced file rerunning that backbone's jobs and their descendants only."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from tiny_workflow import CORRUPTED, TABLE_RULES, jobs_in, planned_jobs, snakemake, write_config

from audiorec.storage.tables import read_embeddings, read_metadata, read_table

pytestmark = pytest.mark.workflow

BACKBONE = "mine"
FILE = "my_vectors.parquet"
UNKNOWN = ["not_a_track_1", "not_a_track_2"]


def write_vectors(workdir: Path, seed: int) -> None:
    """Two layers keyed by track id, random projections of the tiny world's MFCC vectors (so every track the mfcc
    backbone embedded has one, and the two broken files have none), in shuffled order, plus two unknown ids."""
    rng = np.random.default_rng(seed)
    track_ids, mfcc = read_embeddings(workdir / "results/demo/embeddings/mfcc.parquet")
    track_ids += UNKNOWN
    mfcc = np.vstack([mfcc, rng.standard_normal((len(UNKNOWN), mfcc.shape[1]))])
    order = rng.permutation(len(track_ids))
    layers = {name: mfcc @ rng.standard_normal((mfcc.shape[1], width)) for name, width in (("early", 8), ("late", 16))}
    columns = {name: pa.array(vectors[order].tolist(), type=pa.list_(pa.float32())) for name, vectors in layers.items()}
    pq.write_table(pa.table({"track_id": [track_ids[row] for row in order], **columns}), workdir / FILE)


def test_a_user_file_runs_as_a_backbone_and_replacing_it_reruns_only_its_jobs(workdir, tiny_config, tmp_path):
    copy = tmp_path / "workflow"
    shutil.copytree(workdir, copy, symlinks=True)  # file times kept: the copy is up to date
    write_vectors(copy, seed=0)
    config = yaml.safe_load(yaml.safe_dump(tiny_config, sort_keys=False))
    config["backbones"][BACKBONE] = {"kind": "precomputed", "options": {"path": FILE}}
    write_config(copy, config)

    process = snakemake(copy)
    added = jobs_in(process.stdout + process.stderr)
    assert ("embed_precomputed", {"dataset": "demo", "backbone": BACKBONE}) in added
    assert not {rule for rule, _ in added} & {"embed_shard", "embed_gather", "ssl_train", "train_recommender"}
    for table in ("recommendation", "cold_start"):
        rows = pl.read_csv(copy / f"results/demo/tables/{table}.csv")
        assert rows.filter((pl.col("model") == "knn") & (pl.col("backbone") == BACKBONE)).height > 0, table
    embeddings = copy / f"results/demo/embeddings/{BACKBONE}.parquet"
    track_ids, vectors = read_embeddings(embeddings)
    assert track_ids == read_embeddings(copy / "results/demo/embeddings/mfcc.parquet")[0]  # in tracks-table order
    assert vectors.shape == (len(track_ids), 16)  # the last layer
    metadata = read_metadata(embeddings)
    assert metadata["columns"] == ["late"] and metadata["unknown_track_ids"] == len(UNKNOWN)
    failures = read_table(copy / f"results/demo/embeddings/{BACKBONE}.failures.parquet", "failures")
    assert sorted(failures["track_id"]) == sorted(CORRUPTED.values())
    assert set(failures["error"]) == {f"no vector for this track in {FILE}"}

    write_vectors(copy, seed=1)
    process = snakemake(copy)
    rerun = jobs_in(process.stdout + process.stderr)
    own = {"embed_precomputed", "candidates", "recommend", "recommend_new_items", "probe"}
    assert ("embed_precomputed", {"dataset": "demo", "backbone": BACKBONE}) in rerun
    assert {rule for rule, _ in rerun} <= own | set(TABLE_RULES)
    assert {w["backbone"] for rule, w in rerun if rule not in (*TABLE_RULES, "candidates")} == {BACKBONE}
    assert {(w["model"], w["backbone"]) for rule, w in rerun if rule == "recommend"} == {("knn", BACKBONE)}
    assert read_metadata(embeddings)["sha256"] == hashlib.sha256((copy / FILE).read_bytes()).hexdigest()
    assert not np.allclose(read_embeddings(embeddings)[1], vectors)
    assert planned_jobs(copy) == []
