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
