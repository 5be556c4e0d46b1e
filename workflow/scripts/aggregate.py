"""Snakemake adapter: rules aggregate and cold_start → audiorec.stages.aggregate."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import aggregate

aggregate(
    runs=json.loads(snakemake.params.runs),
    ks=snakemake.params.ks,
    split_stats_path=snakemake.input.split_stats,
    csv_path=snakemake.output.csv,
    markdown_path=snakemake.output.markdown,
    significance_path=snakemake.output.significance,
    per_user_path=snakemake.output.per_user,
    tests=json.loads(snakemake.params.tests),
    title=snakemake.params.title,
    uncovered_path=snakemake.input.get("uncovered"),
    train_path=snakemake.input.train,
    reference_path=snakemake.input.get("diversity") or None,
)
