"""Snakemake adapter: rule embed_gather → audiorec.stages.gather_embeddings."""

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import gather_embeddings

gather_embeddings(
    shard_paths=snakemake.input.vectors,
    failure_paths=snakemake.input.failures,
    backbone_name=snakemake.wildcards.backbone,
    layer=snakemake.params.layer,
    embeddings_path=snakemake.output.embeddings,
    failures_path=snakemake.output.failures,
)
