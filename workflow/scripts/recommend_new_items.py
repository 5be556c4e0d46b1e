"""Snakemake adapter: rule recommend_new_items → audiorec.stages.recommend_new_items."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import recommend_new_items

recommend_new_items(
    json.loads(snakemake.params.model),
    int(snakemake.wildcards.seed),
    snakemake.input.train,
    snakemake.input.cold,
    snakemake.input.tracks,
    snakemake.input.get("embeddings"),
    snakemake.params.top_k,
    snakemake.output.recommendations,
    shuffle=snakemake.params.shuffle,
    validation_path=snakemake.input.get("validation"),
    checkpoint_path=snakemake.input.get("checkpoint"),
    threads=snakemake.threads,
)
