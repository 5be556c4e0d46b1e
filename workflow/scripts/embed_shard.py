"""Snakemake adapter: rule embed_shard → audiorec.stages.embed_shard."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import embed_shard

embed_shard(
    tracks_path=snakemake.input.tracks,
    backbone_spec=json.loads(snakemake.params.backbone),
    shard=int(snakemake.wildcards.shard),
    shard_size=snakemake.params.shard_size,
    vectors_path=snakemake.output.vectors,
    failures_path=snakemake.output.failures,
    batch_size=snakemake.params.batch_size,
    num_workers=snakemake.threads - 1,
    weights=snakemake.input.get("weights"),
)
