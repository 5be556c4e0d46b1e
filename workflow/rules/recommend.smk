# The candidate set every val/test ranking chooses from: the train items that every backbone a model reads could
# embed (audiorec.protocol.candidates). A checkpoint, so that Snakemake compares the small file's checksum once it is
# rewritten: a new backbone that embeds every train item reruns no model (a dry run still lists them).
checkpoint candidates:
    input:
        train=rules.split_temporal.output.train,
        embeddings=expand(
            paths.EMBEDDINGS,
            backbone=plan.recommendation_backbones(),
            allow_missing=True,
        ),
    output:
        uncovered=paths.UNCOVERED,
    log:
        "results/{dataset}/logs/candidates.log",
    benchmark:
        "results/{dataset}/benchmarks/candidates.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=2000,
    params:
        backbones=plan.recommendation_backbones(),
    script:
        "../scripts/candidates.py"


# One run = (model, backbone, seed): fit on train, rank the candidate set for every val/test user.


rule recommend:
    input:
        unpack(recommend_inputs),
    output:
        recommendations=paths.RECOMMENDATIONS,
    log:
        "results/{dataset}/logs/recommend/{model}/{backbone}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/recommend/{model}/{backbone}/seed{seed}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["recommend"]["threads"]
    resources:
        mem_mb=4000,
        gpu=lambda wildcards: int(plan.models[wildcards.model].traits.uses_gpu),
    params:
        **run_params(),
        # The retrieval setting reaches the models that rank by inner product (None for the others).
        retrieval=lambda wildcards: plan.retrieval_param(wildcards.model),
    script:
        "../scripts/recommend.py"


# The new releases of the evaluation window ranked for every user who heard one (models that score a track by
# its content, and the random ranking as chance). A trained model is restored from its checkpoint, not retrained.
rule recommend_new_items:
    input:
        unpack(new_items_inputs),
    output:
        recommendations=paths.NEW_ITEMS,
    log:
        "results/{dataset}/logs/recommend_new_items/{model}/{backbone}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/recommend_new_items/{model}/{backbone}/seed{seed}.tsv"
    wildcard_constraints:
        model=alternatives(plan.new_item_models()),
    conda:
        "../../envs/torch.yaml"
    threads: config["recommend"]["threads"]
    resources:
        mem_mb=4000,
    params:
        **run_params(extra_splits=[COLD_SPLIT]),
    script:
        "../scripts/recommend_new_items.py"
