"""Snakemake adapter: rule mir_vs_recs → audiorec.stages.mir_versus_recommendation."""

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import mir_versus_recommendation

mir_versus_recommendation(
    probes_path=snakemake.input.probes,
    recommendation_path=snakemake.input.recommendation,
    metric=snakemake.params.metric,
    csv_path=snakemake.output.csv,
    correlations_path=snakemake.output.correlations,
    markdown_path=snakemake.output.markdown,
    scatter_path=snakemake.output.scatter,
)
