"""Snakemake adapter: rule tune → audiorec.stages.tuning.tune."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import tune

tune(
    model_spec=json.loads(snakemake.params.model),
    split_paths={name: snakemake.input[name] for name in ("train", "val", "heard_before_window", "uncovered")},
    embeddings_path=snakemake.input.get("embeddings"),
    best_path=snakemake.output.best,
    trials_path=snakemake.output.trials,
    threads=snakemake.threads,
)
