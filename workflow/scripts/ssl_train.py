"""Snakemake adapter: rule ssl_train → audiorec.stages.ssl_train."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import ssl_train

ssl_train(
    snakemake.input.tracks,
    snakemake.input.training_tracks,
    json.loads(snakemake.params.options),
    snakemake.output.checkpoint,
    num_workers=snakemake.threads - 1,
)
