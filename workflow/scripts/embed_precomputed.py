"""Snakemake adapter: rule embed_precomputed → audiorec.stages.embed_precomputed."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import embed_precomputed

backbone = json.loads(snakemake.params.backbone)
embed_precomputed(
    source=snakemake.params.source,
    dataset_options=json.loads(snakemake.params.options),
    backbone_name=snakemake.wildcards.backbone,
    backbone_options=backbone["options"],
    tracks_path=snakemake.input.tracks,
    embeddings_path=snakemake.output.embeddings,
    failures_path=snakemake.output.failures,
    layer=backbone.get("layer", "last"),
)
