# The first paper's temporal split: 12 months of train, one month of val/test split by user, and what each
# evaluation user heard before the training window (removed from their rankings with train); or, with
# split.protocol journal2026, the journal version's (audiorec.protocol.journal), which writes the same tables.
# It goes before other ready jobs (priority): self-supervised encoders train on its train tracks, and every
# recommender waits on those encoders' embeddings through the candidate set.


rule split_temporal:
    input:
        interactions=paths.INTERACTIONS,
    output:
        **{split: paths.SPLIT.replace("{split}", split) for split in SPLITS},
        stats=paths.SPLIT_STATS,
    log:
        "results/{dataset}/logs/split_temporal.log",
    benchmark:
        "results/{dataset}/benchmarks/split_temporal.tsv"
    priority: 10
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=4000,
    params:
        split=as_json(lambda wildcards: plan.datasets[wildcards.dataset].split),
    script:
        "../scripts/split_temporal.py"
