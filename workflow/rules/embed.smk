# Extraction in shards (a crash loses one shard; a cluster runs them in parallel), then a cheap gather that
# selects the configured layer. Only the forward-pass settings reach embed_shard's params, so a layer change
# reruns embed_gather alone.


rule embed_shard:
    input:
        unpack(embed_inputs),
    output:
        vectors=paths.SHARD_VECTORS,
        failures=paths.SHARD_FAILURES,
    log:
        "results/{dataset}/logs/embed_shard/{backbone}/shard{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/embed_shard/{backbone}/shard{shard}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["embed"]["threads"]
    resources:
        mem_mb=4000,
        gpu=lambda wildcards: int(plan.backbones[wildcards.backbone].traits.uses_gpu),
    params:
        backbone=as_json(lambda wildcards: plan.backbones[wildcards.backbone].spec),
        shard_size=config["embed"]["shard_size"],
        batch_size=config["embed"]["batch_size"],
    script:
        "../scripts/embed_shard.py"


rule embed_gather:
    input:
        unpack(embed_shards),
    output:
        embeddings=paths.EMBEDDINGS,
        failures=paths.EMBEDDING_FAILURES,
    log:
        "results/{dataset}/logs/embed_gather/{backbone}.log",
    benchmark:
        "results/{dataset}/benchmarks/embed_gather/{backbone}.tsv"
    wildcard_constraints:
        backbone=alternatives(plan.extracted_backbones()),
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=2000,
    params:
        layer=lambda wildcards: plan.backbones[wildcards.backbone].layer,
    script:
        "../scripts/embed_gather.py"
