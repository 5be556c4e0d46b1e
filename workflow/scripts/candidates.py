"""Snakemake adapter: checkpoint candidates → audiorec.stages.candidates."""

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import candidates

candidates(
    train_path=snakemake.input.train,
    embeddings=dict(zip(snakemake.params.backbones, snakemake.input.embeddings, strict=True)),
    out_path=snakemake.output.uncovered,
)
