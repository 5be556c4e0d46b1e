"""Snakemake adapter: rule figures → audiorec.stages.figures."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import figures

figures(
    recommendation_path=snakemake.input.recommendation,
    metric=snakemake.params.metric,
    bars_path=snakemake.output.bars,
    training_runs=json.loads(snakemake.params.training_runs),
    curves_path=snakemake.output.curves,
)
