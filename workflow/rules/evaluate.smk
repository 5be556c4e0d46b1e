# Per-user metrics for every run and split, then the results table with 95 % intervals over users and the
# paired significance tests of each row against its controls.
# Both take seconds, so on a cluster they run beside Snakemake instead of waiting in the queue.


rule evaluate:
    input:
        recommendations="results/{dataset}/runs/{model}/{backbone}/seed{seed}/recommendations.parquet",
        truth="results/{dataset}/split/{split}.parquet",
    output:
        metrics="results/{dataset}/runs/{model}/{backbone}/seed{seed}/metrics_{split}.parquet",
    log:
        "results/{dataset}/logs/evaluate/{model}/{backbone}/seed{seed}/{split}.log",
    localrule: True
    resources:
        mem_mb=2000,
    params:
        ks=config["evaluation"]["ks"],
    script:
        "../scripts/evaluate.py"


rule aggregate:
    input:
        metrics=lambda wildcards: [run["path"] for run in metrics_runs(wildcards)],
        split_stats="results/{dataset}/split/stats.csv",
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
        tests=lambda wildcards: canonical_json(
            {
                "random_variants": random_variants(),
                "baseline_backbone": config["evaluation"]["baseline_backbone"],
                "shuffled_suffix": SHUFFLED_SUFFIX,
                "alpha": config["evaluation"]["alpha"],
            }
        ),
    script:
        "../scripts/aggregate.py"
