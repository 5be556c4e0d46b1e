"""Snakemake adapter: rule layer_figure → audiorec.stages.layer_figure."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import layer_figure

layer_figure(
    sweeps=dict(zip(snakemake.params.backbones, snakemake.input.sweeps, strict=True)),
    metric=snakemake.params.metric,
    path=snakemake.output.figure,
)
