"""Snakemake adapter: rule extract_archive → audiorec.stages.extract."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import extract

extract(snakemake.input[0], snakemake.params.archive, snakemake.output[0])
