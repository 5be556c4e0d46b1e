"""Snakemake adapter: rule ssl_table → audiorec.stages.ssl_summary."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import ssl_summary

ssl_summary(
    probes_path=snakemake.input.probes,
    encoders=json.loads(snakemake.params.encoders),
    csv_path=snakemake.output.csv,
    markdown_path=snakemake.output.markdown,
)
