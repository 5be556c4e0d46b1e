"""Snakemake adapter: rule embed_shard → audiorec.stages.embed_shard."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import embed_shard

embed_shard(
    snakemake.input.tracks,
    json.loads(snakemake.params.backbone),
    int(snakemake.wildcards.shard),
    snakemake.params.shard_size,
    snakemake.output.vectors,
    snakemake.output.failures,
    batch_size=snakemake.params.batch_size,
    num_workers=snakemake.threads - 1,
    weights=snakemake.input.get("weights"),
)
