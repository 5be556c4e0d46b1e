# One run = (model, backbone, seed): fit on train, rank the catalogue for every val/test user.


rule recommend:
    input:
        unpack(recommend_inputs),
    output:
        recommendations="results/{dataset}/runs/{model}/{backbone}/seed{seed}/recommendations.parquet",
    log:
        "results/{dataset}/logs/recommend/{model}/{backbone}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/recommend/{model}/{backbone}/seed{seed}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        gpu=lambda wildcards: model_gpus(wildcards.model),
    params:
        model=lambda wildcards: canonical_json(model_spec(wildcards.model)),
        top_k=config["recommend"]["top_k"],
        shuffle=lambda wildcards: is_shuffled(wildcards.backbone),
    script:
        "../scripts/recommend.py"


# The new releases of the evaluation window ranked for every user who heard one (models that score a track by
# its content, and the random ranking as chance). A trained model is restored from its checkpoint, not retrained.
rule recommend_new_items:
    input:
        unpack(new_items_inputs),
    output:
        recommendations="results/{dataset}/runs/{model}/{backbone}/seed{seed}/new_items.parquet",
    log:
        "results/{dataset}/logs/recommend_new_items/{model}/{backbone}/seed{seed}.log",
    threads: 2
    resources:
        mem_mb=4000,
    params:
        model=lambda wildcards: canonical_json(model_spec(wildcards.model)),
        top_k=config["recommend"]["top_k"],
        shuffle=lambda wildcards: is_shuffled(wildcards.backbone),
    script:
        "../scripts/recommend_new_items.py"
