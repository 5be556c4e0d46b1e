# Per-user metrics for every run and split, then the results table with 95 % intervals over users and the
# paired significance tests of each row against its controls.
# Both take seconds, so on a cluster they run beside Snakemake instead of waiting in the queue.


rule evaluate:
    input:
        recommendations=ranked_lists,
        truth=paths.SPLIT,
    output:
        metrics=paths.METRICS,
    log:
        "results/{dataset}/logs/evaluate/{model}/{backbone}/seed{seed}/{split}.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate/{model}/{backbone}/seed{seed}/{split}.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
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
        metrics=lambda wildcards: [
            run["path"] for run in plan.metrics_runs(wildcards.dataset)
        ],
        split_stats=rules.split_temporal.output.stats,
        uncovered=rules.candidates.output.uncovered,
    output:
        csv=report(
            paths.RECOMMENDATION_CSV,
            caption="../report/recommendation.rst",
            category="Recommendation",
        ),
        markdown=paths.RECOMMENDATION_MD,
        significance=report(
            paths.SIGNIFICANCE,
            caption="../report/significance.rst",
            category="Recommendation",
        ),
    log:
        "results/{dataset}/logs/aggregate.log",
    benchmark:
        "results/{dataset}/benchmarks/aggregate.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=2000,
    params:
        runs=as_json(lambda wildcards: plan.metrics_runs(wildcards.dataset)),
        tests=canonical_json(plan.significance_tests()),
        title="Recommendation results",
    script:
        "../scripts/aggregate.py"


# New releases (tracks first heard in the evaluation window) ranked apart, for the models that score a track by
# its content: how well each representation places music nobody has listened to yet.
rule cold_start:
    input:
        metrics=lambda wildcards: [
            run["path"] for run in plan.cold_start_runs(wildcards.dataset)
        ],
        split_stats=rules.split_temporal.output.stats,
    output:
        csv=report(
            paths.COLD_START_CSV,
            caption="../report/cold_start.rst",
            category="Cold start",
        ),
        markdown=paths.COLD_START_MD,
        significance=paths.COLD_START_SIGNIFICANCE,
    log:
        "results/{dataset}/logs/cold_start.log",
    benchmark:
        "results/{dataset}/benchmarks/cold_start.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=2000,
    params:
        runs=as_json(lambda wildcards: plan.cold_start_runs(wildcards.dataset)),
        tests=canonical_json(plan.significance_tests(against_chance=True)),
        title="Cold-start results: ranking new releases",
    script:
        "../scripts/aggregate.py"
