# Datasets: every source writes the same tables (DESIGN.md), so later stages never ask where data came from.


checkpoint fetch_demo:
    output:
        tracks="results/{dataset}/data/tracks.parquet",
        interactions="results/{dataset}/data/interactions.parquet",
        playlists="results/{dataset}/data/playlists.parquet",
        genre="results/{dataset}/data/labels/genre.parquet",
        instrument="results/{dataset}/data/labels/instrument.parquet",
        audio=directory("results/{dataset}/data/audio"),
    log:
        "results/{dataset}/logs/fetch_demo.log",
    benchmark:
        "results/{dataset}/benchmarks/fetch_demo.tsv"
    resources:
        mem_mb=2000,
    params:
        source=lambda wildcards: dataset_config(wildcards)["source"],
        options=lambda wildcards: canonical_json(dataset_config(wildcards)["options"]),
    script:
        "../scripts/fetch_dataset.py"
