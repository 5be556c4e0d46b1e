"""Snakemake adapter: rule ssl_train_tracks → audiorec.stages.ssl_training_tracks."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import ssl_training_tracks

ssl_training_tracks(
    snakemake.input.tracks,
    snakemake.input.labels,
    snakemake.input.get("train"),
    snakemake.output[0],
)
