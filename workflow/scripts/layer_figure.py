"""Snakemake adapter: rule layer_figure → audiorec.stages.layer_figure."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import layer_figure

layer_figure(
    dict(zip(snakemake.params.backbones, snakemake.input.sweeps, strict=True)),
    snakemake.params.metric,
    snakemake.output.figure,
)
