"""Snakemake adapter: rule split_temporal → audiorec.stages.split_dataset."""

import json
from pathlib import Path

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import split_dataset

split_dataset(
    interactions_path=snakemake.input.interactions,
    split_options=json.loads(snakemake.params.split),
    out_dir=Path(snakemake.output.train).parent,
)
