"""Every output path pattern of the workflow, once: the rules, the plan and the tests read them from here.

Patterns carry Snakemake wildcards (``{dataset}``, ``{backbone}``, …); :func:`str.format` fills them for a
concrete file. A results folder is laid out per dataset (DESIGN.md): ``data``, ``embeddings``, ``split``,
``runs``, ``probes``, ``tables`` and ``figures``, with ``logs`` and ``benchmarks`` beside them.
"""

from __future__ import annotations

RESULTS = "results/{dataset}"
DATA = f"{RESULTS}/data"
DATA_TABLE = f"{DATA}/{{table}}.parquet"
INTERACTIONS = f"{DATA}/interactions.parquet"
DOWNLOAD = "resources/datasets/{dataset}/downloads/{file}"
EXTRACTED = "resources/datasets/{dataset}/extracted/{file}"
PUBLISHED_WEIGHTS = "resources/weights/{source}/{file}"

EMBEDDINGS = f"{RESULTS}/embeddings/{{backbone}}.parquet"
EMBEDDING_FAILURES = f"{RESULTS}/embeddings/{{backbone}}.failures.parquet"
SHARD_VECTORS = f"{RESULTS}/embeddings/{{backbone}}/shard{{shard}}.vectors.parquet"
SHARD_FAILURES = f"{RESULTS}/embeddings/{{backbone}}/shard{{shard}}.failures.parquet"

SPLIT = f"{RESULTS}/split/{{split}}.parquet"
SPLIT_STATS = f"{RESULTS}/split/stats.csv"
UNCOVERED = f"{RESULTS}/split/uncovered.csv"

RUN = f"{RESULTS}/runs/{{model}}/{{backbone}}/seed{{seed}}"
RECOMMENDATIONS = f"{RUN}/recommendations.parquet"
NEW_ITEMS = f"{RUN}/new_items.parquet"
CHECKPOINT = f"{RUN}/checkpoint.pt"
TRAINING_LOG = f"{RUN}/training_log.csv"

TUNING = f"{RESULTS}/tuning/{{model}}/{{backbone}}"
TUNING_BEST = f"{TUNING}/best.json"
TUNING_TRIALS = f"{TUNING}/trials.csv"

SSL_TRAIN_TRACKS = f"{RESULTS}/ssl/train_tracks.parquet"
SSL_CHECKPOINT = f"{RESULTS}/ssl/{{backbone}}.pt"
PROBE = f"{RESULTS}/probes/{{task}}/{{backbone}}.json"
LAYER_SWEEP = f"{RESULTS}/layers/{{backbone}}.csv"

TABLES = f"{RESULTS}/tables"
RECOMMENDATION_CSV = f"{TABLES}/recommendation.csv"
RECOMMENDATION_MD = f"{TABLES}/recommendation.md"
SIGNIFICANCE = f"{TABLES}/significance.csv"
PER_USER_METRICS = f"{TABLES}/recommendation_per_user.parquet"
COLD_START_CSV = f"{TABLES}/cold_start.csv"
COLD_START_MD = f"{TABLES}/cold_start.md"
COLD_START_SIGNIFICANCE = f"{TABLES}/cold_start_significance.csv"
COLD_START_PER_USER_METRICS = f"{TABLES}/cold_start_per_user.parquet"
PROBES_CSV = f"{TABLES}/probes.csv"
PROBES_MD = f"{TABLES}/probes.md"
MIR_VS_RECS_CSV = f"{TABLES}/mir_vs_recs.csv"
MIR_VS_RECS_CORRELATIONS = f"{TABLES}/mir_vs_recs_correlations.csv"
MIR_VS_RECS_MD = f"{TABLES}/mir_vs_recs.md"
SSL_CSV = f"{TABLES}/ssl.csv"
TUNING_CSV = f"{TABLES}/tuning.csv"
TUNING_MD = f"{TABLES}/tuning.md"
SSL_MD = f"{TABLES}/ssl.md"

FIGURES = f"{RESULTS}/figures"
RECOMMENDATION_FIGURE = f"{FIGURES}/recommendation.png"
TRAINING_CURVES = f"{FIGURES}/training_curves.png"
LAYERS_FIGURE = f"{FIGURES}/layers.png"
MIR_VS_RECS_FIGURE = f"{FIGURES}/mir_vs_recs.png"
ACCURACY_POPULARITY_FIGURE = f"{FIGURES}/accuracy_vs_popularity.png"
TUNING_FIGURE = f"{FIGURES}/tuning.png"
# Every figure is also written as a vector PDF beside its PNG (audiorec.reporting.figures.style.save), for papers.
RECOMMENDATION_FIGURE_PDF = f"{FIGURES}/recommendation.pdf"
TRAINING_CURVES_PDF = f"{FIGURES}/training_curves.pdf"
LAYERS_FIGURE_PDF = f"{FIGURES}/layers.pdf"
MIR_VS_RECS_FIGURE_PDF = f"{FIGURES}/mir_vs_recs.pdf"
ACCURACY_POPULARITY_FIGURE_PDF = f"{FIGURES}/accuracy_vs_popularity.pdf"

LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
