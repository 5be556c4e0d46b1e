"""Snakemake adapter: rule probe_table → audiorec.stages.probe_table."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import probe_table

probe_table(
    results=json.loads(snakemake.params.results),
    csv_path=snakemake.output.csv,
    markdown_path=snakemake.output.markdown,
)
