"""The tiny demo world run once per session through the whole workflow, shared by its result and rebuild tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from tiny_workflow import CORRUPTED, REPO, snakemake, write_config


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    config = yaml.safe_load((REPO / ".test" / "config_tiny" / "config.yaml").read_text())
    # A second backbone, so a change to one of them can be shown not to touch the other.
    config["backbones"]["mfcc8"] = {"kind": "mfcc", "options": {"n_mfcc": 8}}
    # A self-supervised backbone the workflow trains: a tiny encoder, one epoch, augmented positives (the tiny
    # world's 3-s clips hold one segment, too short for adjacent or random positives), with the multi-level loss
    # so that its shards hold six layers (five blocks and their concatenation) for the layer sweep.
    options = {"loss": "multi", "positive": "self", "channels": [4, 8, 8, 16, 16], "embedding_dim": 32, "epochs": 1}
    config["backbones"]["ssl_tiny"] = {"kind": "ssl", "options": {**options, "batch_size": 16}}
    config["layer_sweep"] = {"backbones": ["ssl_tiny"], "model": "knn"}
    return config


@pytest.fixture(scope="session")
def workdir(tmp_path_factory, tiny_config) -> Path:
    """A copy of the workflow, run once on the tiny world with two audio files broken after generation."""
    root = tmp_path_factory.mktemp("workflow")
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflow", root / "workflow")
    shutil.copytree(REPO / "config", root / "config")
    # profiles/default (picked up automatically) sets the rerun triggers the rebuild tests rely on.
    shutil.copytree(REPO / "profiles", root / "profiles")
    shutil.copytree(REPO / "envs", root / "envs")  # each rule's conda environment, recorded in job metadata
    write_config(root, tiny_config)
    snakemake(root, "results/demo/data/tracks.parquet")
    audio = root / "results" / "demo" / "data" / "audio"
    (audio / f"{CORRUPTED['corrupt']}.flac").write_bytes(b"fLaC\x00\x00\x00\x22" + b"\x13" * 500)
    (audio / f"{CORRUPTED['empty']}.flac").write_bytes(b"")
    snakemake(root)
    return root
