"""Snakemake adapter: rule mir_vs_recs → audiorec.stages.mir_versus_recommendation."""

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import mir_versus_recommendation

mir_versus_recommendation(
    snakemake.input.probes,
    snakemake.input.recommendation,
    snakemake.params.metric,
    snakemake.output.csv,
    snakemake.output.correlations,
    snakemake.output.markdown,
    snakemake.output.scatter,
)
