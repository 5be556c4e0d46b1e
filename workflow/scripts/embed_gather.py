"""Snakemake adapter: rule embed_gather → audiorec.stages.gather_embeddings."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import gather_embeddings

gather_embeddings(
    snakemake.input.vectors,
    snakemake.input.failures,
    snakemake.wildcards.backbone,
    snakemake.params.layer,
    snakemake.output.embeddings,
    snakemake.output.failures,
)
