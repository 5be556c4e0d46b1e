"""Snakemake adapter: rule evaluate → audiorec.stages.evaluate."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import evaluate

evaluate(
    recommendations_path=snakemake.input.recommendations,
    truth_path=snakemake.input.truth,
    ks=snakemake.params.ks,
    out_path=snakemake.output.metrics,
)
