"""Snakemake adapter: rule tuning_table → audiorec.stages.tuning_table."""

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import tuning_table

studies = [
    {**study, "best": best, "trials": trials}
    for study, best, trials in zip(snakemake.params.studies, snakemake.input.best, snakemake.input.trials, strict=True)
]
tuning_table(studies, snakemake.output.csv, snakemake.output.markdown, snakemake.output.figure)
