"""Snakemake adapter: rule figures → audiorec.stages.figures."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import figures

figures(
    recommendation_path=snakemake.input.recommendation,
    significance_path=snakemake.input.significance,
    metric=snakemake.params.metric,
    bars_path=snakemake.output.bars,
    training_runs=json.loads(snakemake.params.training_runs),
    curves_path=snakemake.output.curves,
    tests=json.loads(snakemake.params.tests),
    models=snakemake.params.models,
    backbones=snakemake.params.backbones,
    popularity_path=snakemake.output.popularity,
)
