"""Snakemake adapter: rule figures → audiorec.stages.figures."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import figures

figures(
    snakemake.input.recommendation,
    snakemake.params.metric,
    snakemake.output.bars,
    json.loads(snakemake.params.training_runs),
    snakemake.output.curves,
)
