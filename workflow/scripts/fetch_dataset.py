"""Snakemake adapter: rule fetch_demo → audiorec.stages.fetch_dataset."""

import json
from pathlib import Path

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import fetch_dataset

fetch_dataset(
    source=snakemake.params.source,
    options=json.loads(snakemake.params.options),
    out_dir=Path(snakemake.output.tracks).parent,
)
