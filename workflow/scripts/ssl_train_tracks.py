"""Snakemake adapter: rule ssl_train_tracks → audiorec.stages.ssl_training_tracks."""

from audiorec.storage.logs import log_to

log_to(snakemake.log[0], snakemake.rule, snakemake.output)

from audiorec.stages import ssl_training_tracks

ssl_training_tracks(
    tracks_path=snakemake.input.tracks,
    label_paths=snakemake.input.labels,
    train_split_path=snakemake.input.get("train"),
    out_path=snakemake.output[0],
)
