# The first paper's temporal split: 12 months of train, one month of val/test split by user, and what each
# evaluation user heard before the training window (removed from their rankings with train).


rule split_temporal:
    input:
        interactions="results/{dataset}/data/interactions.parquet",
    output:
        train="results/{dataset}/split/train.parquet",
        val="results/{dataset}/split/val.parquet",
        test="results/{dataset}/split/test.parquet",
        cold_test="results/{dataset}/split/cold_test.parquet",
        heard_before_window="results/{dataset}/split/heard_before_window.parquet",
        stats="results/{dataset}/split/stats.csv",
    log:
        "results/{dataset}/logs/split_temporal.log",
    benchmark:
        "results/{dataset}/benchmarks/split_temporal.tsv"
    resources:
        mem_mb=4000,
    params:
        split=lambda wildcards: canonical_json(dataset_config(wildcards)["split"]),
    script:
        "../scripts/split_temporal.py"
