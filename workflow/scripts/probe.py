"""Snakemake adapter: rule probe → audiorec.stages.probe."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import probe

probe(
    snakemake.wildcards.task,
    snakemake.input.embeddings,
    snakemake.input.table,
    json.loads(snakemake.params.options),
    snakemake.output[0],
    excluded_path=snakemake.input.get("excluded"),
)
