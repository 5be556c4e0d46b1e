# Figures of the results, drawn from the tables (never recomputing a number), for `snakemake --report`.


rule figures:
    input:
        recommendation="results/{dataset}/tables/recommendation.csv",
        training_logs=lambda wildcards: [
            run["training_log"] for run in training_runs(wildcards)
        ],
    output:
        bars=report(
            "results/{dataset}/figures/recommendation.png",
            caption="../report/recommendation_figure.rst",
            category="Recommendation",
        ),
        curves=report(
            "results/{dataset}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
    log:
        "results/{dataset}/logs/figures.log",
    localrule: True
    resources:
        mem_mb=1000,
    params:
        metric=f"HitRate@{max(config['evaluation']['ks'])}",
        training_runs=lambda wildcards: canonical_json(training_runs(wildcards)),
    script:
        "../scripts/figures.py"
