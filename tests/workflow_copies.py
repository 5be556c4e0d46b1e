"""Copies of the workflow on small demo worlds, for tests that run Snakemake in a folder of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def small_world_config(n_tracks: int, shard_size: int, models: tuple[str, ...] | None = ("knn", "popularity")) -> dict:
    """The tiny test config shrunk to ``n_tracks`` 2-second tracks in shards of ``shard_size``.

    ``models`` replaces the tiny config's models with default-option ones of these kinds, its backbones with
    ``mfcc`` and drops the MIR probes; ``None`` keeps all three.
    """
    config = yaml.safe_load((REPO / ".test" / "config_tiny" / "config.yaml").read_text())
    config["datasets"]["demo"]["options"].update(
        n_tracks=n_tracks, n_users=60, n_artists=12, clip_seconds=2.0, mean_events_per_user=40, n_playlists=10
    )
    if models is not None:
        config["models"] = {name: {"kind": name} for name in models}
        config["backbones"] = {"mfcc": config["backbones"]["mfcc"]}
        config["probes"] = {"tasks": []}
    # One decoding thread per shard job, so two shards run side by side on two cores.
    config["embed"] = {"shard_size": shard_size, "threads": 1}
    return config


def copy_workflow(root: Path, config: dict) -> Path:
    """Copy the Snakefile, rules, scripts, config, profiles and environments into ``root``; write ``config`` there."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    for folder in ("workflow", "config", "profiles", "envs"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root
