"""Snakemake adapter: rule recommend_new_items → audiorec.stages.recommend_new_items."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import recommend_new_items

recommend_new_items(
    model_spec=json.loads(snakemake.params.model),
    seed=int(snakemake.wildcards.seed),
    split_paths={name: snakemake.input[name] for name in snakemake.params.split_files},
    embeddings_path=snakemake.input.get("embeddings"),
    top_k=snakemake.params.top_k,
    out_path=snakemake.output.recommendations,
    shuffle=snakemake.params.shuffle,
    checkpoint_path=snakemake.input.get("checkpoint"),
    threads=snakemake.threads,
    tuned_path=snakemake.input.get("tuned"),
)
