"""Snakemake adapter: rule probe_table → audiorec.stages.probe_table."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import probe_table

probe_table(json.loads(snakemake.params.results), snakemake.output.csv, snakemake.output.markdown)
