"""Snakemake adapter: rule download → audiorec.stages.download."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import download

download(name=snakemake.wildcards.file, spec=json.loads(snakemake.params.spec), dest=snakemake.output[0])
