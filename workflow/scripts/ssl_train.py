"""Snakemake adapter: rule ssl_train → audiorec.stages.ssl_train."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import ssl_train

ssl_train(
    tracks_path=snakemake.input.tracks,
    training_tracks_path=snakemake.input.training_tracks,
    options=json.loads(snakemake.params.options),
    out_path=snakemake.output.checkpoint,
    num_workers=snakemake.threads - 1,
)
