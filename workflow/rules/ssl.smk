# Self-supervised encoders (Choi et al. 2022) trained by the workflow on the dataset's training tracks: those
# in the train split of every label table and heard in the recommendation train window (audiorec.ssl.data).
# Each checkpoint feeds its backbone's extraction (embed_inputs), so retraining reruns only its descendants.
# Both go before other ready jobs (priority): every recommender waits on the candidate set, and the candidate set
# on every backbone's embeddings, so an encoder trained after the other extractions holds back the whole table.


rule ssl_train_tracks:
    input:
        unpack(ssl_training_inputs),
    output:
        paths.SSL_TRAIN_TRACKS,
    log:
        "results/{dataset}/logs/ssl_train_tracks.log",
    benchmark:
        "results/{dataset}/benchmarks/ssl_train_tracks.tsv"
    priority: 10
    localrule: True
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=2000,
    script:
        "../scripts/ssl_train_tracks.py"


rule ssl_train:
    input:
        tracks=tracks_table,
        training_tracks=rules.ssl_train_tracks.output[0],
    output:
        checkpoint=paths.SSL_CHECKPOINT,
    log:
        "results/{dataset}/logs/ssl_train/{backbone}.log",
    benchmark:
        "results/{dataset}/benchmarks/ssl_train/{backbone}.tsv"
    wildcard_constraints:
        backbone=alternatives(plan.trained_backbones()),
    priority: 10
    conda:
        "../../envs/torch.yaml"
    threads: config["ssl_train"]["threads"]
    resources:
        mem_mb=8000,
        gpu=1,
    params:
        options=as_json(
            lambda wildcards: plan.backbones[wildcards.backbone].spec["options"]
        ),
    script:
        "../scripts/ssl_train.py"
