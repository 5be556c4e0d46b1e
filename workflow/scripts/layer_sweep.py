"""Snakemake adapter: rule layer_sweep → audiorec.stages.layer_sweep."""

import json

from audiorec.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import layer_sweep

layer_sweep(
    snakemake.input.shards,
    {name: snakemake.input[name] for name in ("train", "heard_before_window", "uncovered")},
    snakemake.input.truth,
    json.loads(snakemake.params.model),
    snakemake.params.ks,
    snakemake.output.csv,
)
