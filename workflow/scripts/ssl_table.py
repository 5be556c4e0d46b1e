"""Snakemake adapter: rule ssl_table → audiorec.stages.ssl_summary."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import ssl_summary

ssl_summary(
    snakemake.input.probes,
    json.loads(snakemake.params.encoders),
    snakemake.output.csv,
    snakemake.output.markdown,
)
