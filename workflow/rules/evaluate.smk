# The results tables: every run's ranked lists scored per user against the held-out split, 95 % intervals over
# users, and the paired significance tests of each row against its controls. One job per table: scoring a run
# takes about a second even at the Onion's size, far less than starting a job per run and split did.
# Both tables take seconds, so on a cluster they run beside Snakemake instead of waiting in the queue.
# Beyond accuracy, each table reads the train split (item popularity) and the diversity backbone's embeddings
# (the one space every row's intra-list diversity is measured in).


rule aggregate:
    input:
        rankings=lambda wildcards: scored_files(plan.scored_runs(wildcards.dataset)),
        split_stats=rules.split_temporal.output.stats,
        uncovered=rules.candidates.output.uncovered,
        train=rules.split_temporal.output.train,
        diversity=diversity_space,
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
        per_user=paths.PER_USER_METRICS,
    log:
        "results/{dataset}/logs/aggregate.log",
    benchmark:
        "results/{dataset}/benchmarks/aggregate.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=4000,
    params:
        runs=as_json(lambda wildcards: plan.scored_runs(wildcards.dataset)),
        ks=config["evaluation"]["ks"],
        tests=canonical_json(plan.significance_tests()),
        title="Recommendation results",
    script:
        "../scripts/aggregate.py"


# New releases (tracks first heard in the evaluation window) ranked apart, for the models that score a track by
# its content: how well each representation places music nobody has listened to yet.
rule cold_start:
    input:
        rankings=lambda wildcards: scored_files(plan.cold_start_runs(wildcards.dataset)),
        split_stats=rules.split_temporal.output.stats,
        train=rules.split_temporal.output.train,
        diversity=diversity_space,
    output:
        csv=report(
            paths.COLD_START_CSV,
            caption="../report/cold_start.rst",
            category="Cold start",
        ),
        markdown=paths.COLD_START_MD,
        significance=paths.COLD_START_SIGNIFICANCE,
        per_user=paths.COLD_START_PER_USER_METRICS,
    log:
        "results/{dataset}/logs/cold_start.log",
    benchmark:
        "results/{dataset}/benchmarks/cold_start.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=4000,
    params:
        runs=as_json(lambda wildcards: plan.cold_start_runs(wildcards.dataset)),
        ks=config["evaluation"]["cold_ks"],
        tests=canonical_json(plan.significance_tests(against_chance=True)),
        title="Cold-start results: ranking new releases",
    script:
        "../scripts/aggregate.py"
