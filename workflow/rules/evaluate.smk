# Per-user metrics for every run and split, then the results table with 95 % intervals over users and the
# paired significance tests of each row against its controls.
# Both take seconds, so on a cluster they run beside Snakemake instead of waiting in the queue.


rule evaluate:
    input:
        recommendations=ranked_lists,
        truth="results/{dataset}/split/{split}.parquet",
    output:
        metrics="results/{dataset}/runs/{model}/{backbone}/seed{seed}/metrics_{split}.parquet",
    log:
        "results/{dataset}/logs/evaluate/{model}/{backbone}/seed{seed}/{split}.log",
    localrule: True
    resources:
        mem_mb=2000,
    params:
        ks=lambda wildcards: config["evaluation"][
            "cold_ks" if wildcards.split == COLD_SPLIT else "ks"
        ],
    script:
        "../scripts/evaluate.py"


rule aggregate:
    input:
        metrics=lambda wildcards: [run["path"] for run in metrics_runs(wildcards)],
        split_stats="results/{dataset}/split/stats.csv",
        uncovered="results/{dataset}/split/uncovered.csv",
    output:
        csv=report(
            "results/{dataset}/tables/recommendation.csv",
            caption="../report/recommendation.rst",
            category="Recommendation",
        ),
        markdown="results/{dataset}/tables/recommendation.md",
        significance=report(
            "results/{dataset}/tables/significance.csv",
            caption="../report/significance.rst",
            category="Recommendation",
        ),
    log:
        "results/{dataset}/logs/aggregate.log",
    localrule: True
    resources:
        mem_mb=2000,
    params:
        runs=lambda wildcards: canonical_json(metrics_runs(wildcards)),
        tests=aggregate_tests(),
        title="Recommendation results",
    script:
        "../scripts/aggregate.py"


# New releases (tracks first heard in the evaluation window) ranked apart, for the models that score a track by
# its content: how well each representation places music nobody has listened to yet.
rule cold_start:
    input:
        metrics=lambda wildcards: [run["path"] for run in cold_start_runs(wildcards)],
        split_stats="results/{dataset}/split/stats.csv",
    output:
        csv=report(
            "results/{dataset}/tables/cold_start.csv",
            caption="../report/cold_start.rst",
            category="Cold start",
        ),
        markdown="results/{dataset}/tables/cold_start.md",
        significance="results/{dataset}/tables/cold_start_significance.csv",
    log:
        "results/{dataset}/logs/cold_start.log",
    localrule: True
    resources:
        mem_mb=2000,
    params:
        runs=lambda wildcards: canonical_json(cold_start_runs(wildcards)),
        tests=aggregate_tests(against_chance=True),
        title="Cold-start results: ranking new releases",
    script:
        "../scripts/aggregate.py"
