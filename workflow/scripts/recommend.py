"""Snakemake adapter: rules recommend and train_recommender → audiorec.stages.recommend.

Rule train_recommender also passes the validation split and names the checkpoint and the training log."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import recommend

recommend(
    model_spec=json.loads(snakemake.params.model),
    seed=int(snakemake.wildcards.seed),
    split_paths={name: snakemake.input[name] for name in snakemake.params.split_files},
    target_paths=snakemake.input.targets,
    embeddings_path=snakemake.input.get("embeddings"),
    top_k=snakemake.params.top_k,
    out_path=snakemake.output.recommendations,
    shuffle=snakemake.params.shuffle,
    checkpoint_path=snakemake.output.get("checkpoint"),
    training_log_path=snakemake.output.get("training_log"),
    threads=snakemake.threads,
    tuned_path=snakemake.input.get("tuned"),
    retrieval=snakemake.params.retrieval,
)
