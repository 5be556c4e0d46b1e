"""Snakemake adapter: rule embed_precomputed → audiorec.stages.embed_precomputed."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import embed_precomputed

embed_precomputed(
    snakemake.params.source,
    json.loads(snakemake.params.options),
    snakemake.wildcards.backbone,
    json.loads(snakemake.params.backbone)["options"],
    snakemake.input.tracks,
    snakemake.output.embeddings,
    snakemake.output.failures,
)
