"""Snakemake adapter: rule layer_figure → audiorec.stages.layer_figure."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import layer_figure

layer_figure(
    sweeps=dict(zip(snakemake.params.swept, snakemake.input.sweeps, strict=True)),
    metric=snakemake.params.metric,
    path=snakemake.output.figure,
    layers=json.loads(snakemake.params.layers),
    backbones=snakemake.params.backbones,
)
