# Config access, wildcard constraints and input functions shared by every stage.

import math
import re

import pyarrow.parquet as pq

from audiorec.config import canonical_json
from audiorec.backbones import backbone_class
from audiorec.datasets import get_source
from audiorec.recommenders import recommender_class


def _alternatives(names):
    return "|".join(re.escape(name) for name in names)


def check_registry_kinds():
    """Fail before any job runs if the config names a source, backbone or model that is not implemented."""
    for entry in config["datasets"].values():
        get_source(entry["source"])
    for entry in config["backbones"].values():
        backbone_class(entry["kind"])
    for entry in config["models"].values():
        recommender_class(entry["kind"])


check_registry_kinds()

# The {backbone} of models that use no embeddings (popularity, random).
NO_BACKBONE = "none"
EVAL_SPLITS = ["val", "test"]


wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    backbone=_alternatives([*config["backbones"], NO_BACKBONE]),
    model=_alternatives(config["models"]),
    seed=r"\d+",
    shard=r"\d+",
    split=_alternatives(EVAL_SPLITS),


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def backbone_spec(name):
    """What determines a backbone's forward pass; its layer is left out (see embed_gather)."""
    entry = config["backbones"][name]
    return {"kind": entry["kind"], "options": entry.get("options", {})}


def backbone_gpus(name):
    """GPUs an extraction job of this backbone asks the scheduler for (0 for CPU-only features)."""
    return int(backbone_class(config["backbones"][name]["kind"]).uses_gpu)


def model_spec(name):
    entry = config["models"][name]
    return {"kind": entry["kind"], "options": entry.get("options", {})}


def model_uses_embeddings(name):
    return recommender_class(config["models"][name]["kind"]).uses_embeddings


def model_is_deterministic(name):
    return recommender_class(config["models"][name]["kind"]).deterministic


def model_runs():
    """(model, backbone, seed) of every run in the results table."""
    runs = []
    for model, entry in config["models"].items():
        if model_uses_embeddings(model):
            backbones = entry.get("backbones", list(config["backbones"]))
            unknown = sorted(set(backbones) - set(config["backbones"]))
            if unknown:
                raise ValueError(f"model {model!r} names unknown backbone(s) {unknown}")
        else:
            backbones = [NO_BACKBONE]
        seeds = (
            config["seeds"][:1] if model_is_deterministic(model) else config["seeds"]
        )
        runs += [(model, backbone, seed) for backbone in backbones for seed in seeds]
    return runs


def tracks_table(wildcards):
    """The tracks table, through the fetch checkpoint, so the shard count is known once it exists."""
    return checkpoints.fetch_demo.get(dataset=wildcards.dataset).output.tracks


def embed_shards(wildcards):
    n_tracks = pq.ParquetFile(tracks_table(wildcards)).metadata.num_rows
    n_shards = max(1, math.ceil(n_tracks / config["embed"]["shard_size"]))
    pattern = "results/{dataset}/embeddings/{backbone}/shard{shard}.{kind}.parquet"
    return {
        kind: [
            pattern.format(
                dataset=wildcards.dataset,
                backbone=wildcards.backbone,
                shard=shard,
                kind=kind,
            )
            for shard in range(n_shards)
        ]
        for kind in ("vectors", "failures")
    }


def recommend_inputs(wildcards):
    inputs = {
        "train": f"results/{wildcards.dataset}/split/train.parquet",
        "targets": [
            f"results/{wildcards.dataset}/split/{split}.parquet"
            for split in EVAL_SPLITS
        ],
        "tracks": f"results/{wildcards.dataset}/data/tracks.parquet",
    }
    if model_uses_embeddings(wildcards.model):
        if wildcards.backbone == NO_BACKBONE:
            raise ValueError(f"model {wildcards.model!r} needs a backbone")
        inputs["embeddings"] = (
            f"results/{wildcards.dataset}/embeddings/{wildcards.backbone}.parquet"
        )
    return inputs


def metrics_runs(wildcards):
    """Every (split, model, backbone, seed) metrics file of a dataset, with its path."""
    return [
        {
            "split": split,
            "model": model,
            "backbone": backbone,
            "seed": seed,
            "path": f"results/{wildcards.dataset}/runs/{model}/{backbone}/seed{seed}/metrics_{split}.parquet",
        }
        for model, backbone, seed in model_runs()
        for split in EVAL_SPLITS
    ]


def final_outputs():
    return expand(
        "results/{dataset}/tables/recommendation.{ext}",
        dataset=list(config["datasets"]),
        ext=["csv", "md"],
    )
