"""Snakemake adapter: rule download_weights → audiorec.stages.download_weights."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import download_weights

download_weights(
    source=snakemake.wildcards.source,
    entry=json.loads(snakemake.params.entry),
    file=snakemake.wildcards.file,
    dest=snakemake.output[0],
)
