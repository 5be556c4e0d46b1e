"""Snakemake adapter: rule extract_archive → audiorec.stages.extract."""

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import extract

extract(archive_path=snakemake.input[0], archive_format=snakemake.params.archive, out_dir=snakemake.output[0])
