"""Snakemake adapter: rule layer_sweep → audiorec.stages.layer_sweep."""

import json

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import layer_sweep

layer_sweep(
    shard_paths=snakemake.input.shards,
    split_paths={name: snakemake.input[name] for name in ("train", "heard_before_window", "uncovered")},
    truth_path=snakemake.input.truth,
    model_spec=json.loads(snakemake.params.model),
    ks=snakemake.params.ks,
    csv_path=snakemake.output.csv,
)
