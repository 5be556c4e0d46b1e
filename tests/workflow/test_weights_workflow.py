"""From a model id to embeddings: rule download_weights fetches a pinned source, extraction reads the verified copy."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import polars as pl
import pytest
import torch
from hub_emulator import Hub, serve_hub
from workflow_copies import copy_workflow, small_world_config

from audiorec.backbones.shipped import shipped_config

pytestmark = pytest.mark.workflow

REPO_ID = "audiorec-test/mert-tiny"
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def tiny_mert_files() -> dict[str, bytes]:
    """A tiny MERT release (config.json, pytorch_model.bin), built here so the test needs no model download."""
    from audiorec.backbones import build_backbone

    torch.manual_seed(5)
    buffer = io.BytesIO()
    torch.save(build_backbone("mert", {"size": "tiny", "device": "cpu"}).model.state_dict(), buffer)
    return {
        "config.json": json.dumps(shipped_config("mert", "tiny")["model"]).encode(),
        "pytorch_model.bin": buffer.getvalue(),
    }


def test_a_published_source_is_fetched_by_one_command_and_feeds_extraction(tmp_path):
    files = tiny_mert_files()
    config = small_world_config(n_tracks=10, shard_size=10)
    source = {
        "repo": REPO_ID,
        "revision": COMMIT,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()
        },
    }
    config["backbones"] = {
        "mert": {"kind": "mert", "options": {"size": "tiny", "device": "cpu", "clip_seconds": 1.0, "weights": source}}
    }
    workdir = copy_workflow(tmp_path / "run", config)
    hub = Hub(repos={(REPO_ID, COMMIT): files})
    env = os.environ | {
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    target = "results/demo/embeddings/mert.parquet"
    with serve_hub(hub):
        env["HF_ENDPOINT"] = hub.endpoint
        command = [sys.executable, "-m", "snakemake", "--cores", "2", target]
        process = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    assert process.returncode == 0, process.stdout + process.stderr

    for name, data in files.items():
        assert (workdir / "resources" / "weights" / "mert" / name).read_bytes() == data
    assert all(f"/resolve/{COMMIT}/" in path for _, path, _ in hub.requests if "/resolve/" in path)
    shard_log = next((workdir / "results" / "demo" / "logs" / "embed_shard" / "mert").glob("*.log")).read_text()
    assert f"{REPO_ID}@{COMMIT}, every file verified" in shard_log
    embeddings = pl.read_parquet(workdir / target)
    assert embeddings.height == 10
