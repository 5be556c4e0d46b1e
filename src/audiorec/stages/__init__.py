"""Path-level entry points, one per workflow stage: read tables, call the library, write tables atomically.

The Snakemake scripts and the command-line interface both call these, so a stage behaves the same inside
and outside the workflow. Everything below them works on arrays and DataFrames. The modules follow the rule
files (``workflow/rules/*.smk``): :mod:`~audiorec.stages.data`, :mod:`~audiorec.stages.embed`,
:mod:`~audiorec.stages.split`, :mod:`~audiorec.stages.recommendation` (rules recommend and train),
:mod:`~audiorec.stages.evaluation`, :mod:`~audiorec.stages.probing`, :mod:`~audiorec.stages.ssl` and
:mod:`~audiorec.stages.report`; the two named otherwise would be shadowed here by the functions ``recommend`` and
``probe``.

Each stage imports the heavy parts of the library (torch, librosa, SciPy) inside its function: every
Snakemake job is a fresh process, and a job should not pay seconds of imports for code it never runs.
"""

from audiorec.stages.data import download, download_weights, embed_precomputed, extract, fetch_dataset
from audiorec.stages.embed import embed_files, embed_shard, extract_tracks, gather_embeddings
from audiorec.stages.evaluation import aggregate, score_runs
from audiorec.stages.probing import mir_versus_recommendation, probe, probe_table, ssl_summary
from audiorec.stages.recommendation import (
    RankingInputs,
    build_model,
    candidates,
    embedding_width,
    read_model_embeddings,
    recommend,
    recommend_new_items,
)
from audiorec.stages.report import figures, layer_figure, layer_sweep
from audiorec.stages.split import split_dataset
from audiorec.stages.ssl import ssl_train, ssl_training_tracks
from audiorec.stages.tuning import tune, tuning_table

__all__ = [
    "RankingInputs",
    "aggregate",
    "build_model",
    "candidates",
    "download",
    "download_weights",
    "embed_files",
    "embed_precomputed",
    "embed_shard",
    "embedding_width",
    "extract",
    "extract_tracks",
    "fetch_dataset",
    "figures",
    "gather_embeddings",
    "layer_figure",
    "layer_sweep",
    "mir_versus_recommendation",
    "probe",
    "probe_table",
    "read_model_embeddings",
    "recommend",
    "recommend_new_items",
    "score_runs",
    "split_dataset",
    "ssl_summary",
    "ssl_train",
    "ssl_training_tracks",
    "tune",
    "tuning_table",
]
