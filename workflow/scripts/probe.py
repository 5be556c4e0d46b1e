"""Snakemake adapter: rule probe → audiorec.stages.probe."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import probe

probe(
    task=snakemake.wildcards.task,
    embeddings_path=snakemake.input.embeddings,
    task_table_path=snakemake.input.table,
    options=json.loads(snakemake.params.options),
    out_path=snakemake.output[0],
    excluded_path=snakemake.input.get("excluded"),
)
