"""Snakemake adapter: rules aggregate and cold_start → audiorec.stages.aggregate."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import aggregate

aggregate(
    json.loads(snakemake.params.runs),
    snakemake.input.split_stats,
    snakemake.output.csv,
    snakemake.output.markdown,
    snakemake.output.significance,
    json.loads(snakemake.params.tests),
    snakemake.params.title,
    snakemake.input.get("uncovered"),
)
