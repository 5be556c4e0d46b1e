"""Snakemake adapter: checkpoint candidates → audiorec.runs.candidates."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.runs import candidates

candidates(
    snakemake.input.train,
    dict(zip(snakemake.params.backbones, snakemake.input.embeddings, strict=True)),
    snakemake.output.uncovered,
)
