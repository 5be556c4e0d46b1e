# The candidate set every val/test ranking chooses from: the train items that every backbone a model reads could
# embed (audiorec.candidates). A checkpoint, so that Snakemake compares the small file's checksum once it is
# rewritten: a new backbone that embeds every train item reruns no model (a dry run still lists them).
checkpoint candidates:
    input:
        train="results/{dataset}/split/train.parquet",
        embeddings=expand(
            "results/{{dataset}}/embeddings/{backbone}.parquet",
            backbone=recommendation_backbones(),
        ),
    output:
        uncovered="results/{dataset}/split/uncovered.csv",
    log:
        "results/{dataset}/logs/candidates.log",
    localrule: True
    resources:
        mem_mb=2000,
    params:
        backbones=recommendation_backbones(),
    script:
        "../scripts/candidates.py"


# One run = (model, backbone, seed): fit on train, rank the candidate set for every val/test user.


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
        shuffle=lambda wildcards: is_shuffled(wildcards.model, wildcards.backbone),
        split_files=run_split_files,
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
        shuffle=lambda wildcards: is_shuffled(wildcards.model, wildcards.backbone),
        split_files=lambda wildcards: [*run_split_files(wildcards), COLD_SPLIT],
    script:
        "../scripts/recommend_new_items.py"
