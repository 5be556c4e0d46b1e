"""Snakemake adapter: rule evaluate → audiorec.stages.evaluate."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import evaluate

evaluate(
    snakemake.input.recommendations,
    snakemake.input.truth,
    snakemake.params.ks,
    snakemake.output.metrics,
)
