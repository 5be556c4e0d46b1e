# The plan (audiorec.plan: what this config runs, checked before any job), wildcard constraints, and the input
# functions that need Snakemake's checkpoints. Every output path pattern is a constant of audiorec.plan.paths.

import re

import pyarrow.parquet as pq

from audiorec.common.config import canonical_json
from audiorec.common.names import COLD_SPLIT, EVALUATION_SPLITS, SPLITS
from audiorec.datasets import fetch_output_paths
from audiorec.evaluation.controls import NO_BACKBONE
from audiorec.plan import Plan, paths

plan = Plan.from_config(config)
plan.check()


def alternatives(names):
    """A wildcard constraint matching exactly ``names``; "(?!)" matches nothing when there are none."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


wildcard_constraints:
    dataset=alternatives(plan.datasets),
    backbone=alternatives(plan.run_backbones() + [NO_BACKBONE]),
    model=alternatives(plan.models),
    seed=r"\d+",
    shard=r"\d+",
    split=alternatives([*EVALUATION_SPLITS, COLD_SPLIT]),


def as_json(function):
    """A params function returning ``function(wildcards)`` as canonical JSON, so reordered keys rerun nothing."""
    return lambda wildcards: canonical_json(function(wildcards))


def fill(pattern, wildcards, **values):
    """``pattern`` (a constant of audiorec.plan.paths) with a job's wildcards and ``values`` filled in."""
    return pattern.format(**(dict(wildcards.items()) | values))


def split_path(wildcards, split):
    return fill(paths.SPLIT, wildcards, split=split)


def fetch_rule(source):
    """The checkpoint that fetches datasets of a source (data.smk defines one per source in the config)."""
    return f"fetch_{source}"


def fetch_outputs(source):
    """Output files of a source's fetch checkpoint, named after their last path component."""
    return {
        key: directory(path) if is_folder else path
        for key, (path, is_folder) in fetch_output_paths(source, paths.DATA).items()
    }


def tracks_table(wildcards):
    """The tracks table, through the fetch checkpoint, so the shard count is known once it exists."""
    fetch = getattr(checkpoints, fetch_rule(plan.datasets[wildcards.dataset].source))
    return fetch.get(dataset=wildcards.dataset).output.tracks


def embed_shards(wildcards):
    """Every extraction shard of a backbone (and its failures), as many as the tracks table needs."""
    n_tracks = pq.ParquetFile(tracks_table(wildcards)).metadata.num_rows
    shards = plan.shards(n_tracks)
    return {
        "vectors": [
            fill(paths.SHARD_VECTORS, wildcards, shard=shard) for shard in shards
        ],
        "failures": [
            fill(paths.SHARD_FAILURES, wildcards, shard=shard) for shard in shards
        ],
    }


def candidate_set(wildcards):
    """The train items left out of every ranking, through checkpoint candidates (see recommend.smk)."""
    return checkpoints.candidates.get(dataset=wildcards.dataset).output.uncovered


def run_inputs(wildcards):
    """Split tables, the candidate set and the embeddings a run of a model reads."""
    inputs = {
        split: split_path(wildcards, split)
        for split in plan.run_splits(wildcards.model)
    }
    inputs["uncovered"] = candidate_set(wildcards)
    source = plan.models[wildcards.model].source_of(wildcards.backbone)
    if source is not None:
        inputs["embeddings"] = fill(paths.EMBEDDINGS, wildcards, backbone=source)
    return inputs


def tuned_options(wildcards):
    """A tuned model's best options (rule tune's best.json), as an input of its runs; none for other models."""
    pattern = plan.tuning_path(wildcards.model, wildcards.backbone)
    return (
        {} if pattern is None else {"tuned": pattern.format(dataset=wildcards.dataset)}
    )


def recommend_inputs(wildcards):
    """Inputs of rules recommend and train_recommender: what the run reads, and the users to rank."""
    targets = [split_path(wildcards, split) for split in EVALUATION_SPLITS]
    return run_inputs(wildcards) | tuned_options(wildcards) | {"targets": targets}


def new_items_inputs(wildcards):
    """What recommend_new_items reads besides the run's inputs: the cold split, a trained model's weights."""
    inputs = run_inputs(wildcards) | tuned_options(wildcards)
    inputs[COLD_SPLIT] = split_path(wildcards, COLD_SPLIT)
    if plan.models[wildcards.model].traits.trained:
        inputs["checkpoint"] = fill(paths.CHECKPOINT, wildcards)
    return inputs


def tune_inputs(wildcards):
    """What a study reads: train, val, what its users heard before the window, the candidate set and the
    embeddings. Never the test split: only the tuned runs read it, for the tables."""
    inputs = run_inputs(wildcards)
    inputs["val"] = split_path(wildcards, "val")
    return inputs


def run_params(extra_splits=()):
    """What a run's script is told besides its inputs: the model, its cut-off, the shuffle flag, the split names."""
    return {
        "model": lambda wildcards: canonical_json(plan.models[wildcards.model].spec),
        "top_k": config["recommend"]["top_k"],
        "shuffle": lambda wildcards: plan.models[wildcards.model].is_shuffled(
            wildcards.backbone
        ),
        "split_files": lambda wildcards: [
            *plan.run_splits(wildcards.model),
            "uncovered",
            *extra_splits,
        ],
    }


def scored_files(runs):
    """What a results table reads: each run's ranked lists and the held-out splits they are scored against."""
    return sorted({run["rankings"] for run in runs} | {run["truth"] for run in runs})


def diversity_space(wildcards):
    """The diversity backbone's embeddings table, or nothing (no ILD) when the config names none."""
    backbone = plan.diversity_backbone()
    return (
        [] if backbone is None else fill(paths.EMBEDDINGS, wildcards, backbone=backbone)
    )


def ssl_training_inputs(wildcards):
    """What decides the training tracks: the tracks, every label table, and the recommendation train split."""
    dataset = plan.datasets[wildcards.dataset]
    inputs = {
        "tracks": tracks_table(wildcards),
        "labels": [
            paths.DATA_TABLE.format(dataset=dataset.name, table=table)
            for table in dataset.label_tables
        ],
    }
    if dataset.has_log:
        inputs["train"] = split_path(wildcards, "train")
    return inputs


def embed_inputs(wildcards):
    """The tracks table, and the backbone's weights: a trained checkpoint, or published files once verified."""
    inputs = {"tracks": tracks_table(wildcards)}
    if wildcards.backbone in plan.trained_backbones():
        inputs["weights"] = fill(paths.SSL_CHECKPOINT, wildcards)
    published = plan.backbones[wildcards.backbone].weights_files
    if published:
        inputs["published"] = published
    return inputs


def probe_inputs(wildcards):
    """A probe's embeddings and task table; playlists also leave out the self-supervised training tracks."""
    dataset = plan.datasets[wildcards.dataset]
    table = plan.probe_table(wildcards.task)
    inputs = {
        "embeddings": fill(paths.EMBEDDINGS, wildcards),
        "table": paths.DATA_TABLE.format(dataset=dataset.name, table=table),
    }
    if table == "playlists" and dataset.holds_out_tracks:
        inputs["excluded"] = paths.SSL_TRAIN_TRACKS.format(dataset=dataset.name)
    return inputs


def precomputed_file(wildcards):
    """The file a precomputed backbone reads: the user's own (option path), else the dataset's feature file (an
    option of the dataset, or one of its downloads). An input, so replacing it rebuilds the backbone's table.
    """
    options = plan.backbones[wildcards.backbone].checked
    if options.path is not None:
        return options.path
    dataset = plan.datasets[wildcards.dataset]
    return dataset.options()[dataset.feature_option(options.feature)]
