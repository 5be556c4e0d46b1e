"""Snakemake adapter: rule recommend_new_items → audiorec.runs.recommend_new_items."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.runs import recommend_new_items

recommend_new_items(
    json.loads(snakemake.params.model),
    int(snakemake.wildcards.seed),
    {name: snakemake.input[name] for name in snakemake.params.split_files},
    snakemake.input.get("embeddings"),
    snakemake.params.top_k,
    snakemake.output.recommendations,
    shuffle=snakemake.params.shuffle,
    checkpoint_path=snakemake.input.get("checkpoint"),
    threads=snakemake.threads,
)
