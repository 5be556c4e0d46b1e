"""Snakemake adapter: rules recommend and train_recommender → audiorec.runs.recommend.

Rule train_recommender also passes the validation split and names the checkpoint and the training log."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.runs import recommend

recommend(
    json.loads(snakemake.params.model),
    int(snakemake.wildcards.seed),
    {name: snakemake.input[name] for name in snakemake.params.split_files},
    snakemake.input.targets,
    snakemake.input.get("embeddings"),
    snakemake.params.top_k,
    snakemake.output.recommendations,
    shuffle=snakemake.params.shuffle,
    checkpoint_path=snakemake.output.get("checkpoint"),
    training_log_path=snakemake.output.get("training_log"),
    threads=snakemake.threads,
)
