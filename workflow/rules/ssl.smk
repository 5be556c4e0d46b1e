# Self-supervised encoders (Choi et al. 2022) trained by the workflow on the dataset's training tracks: those
# in the train split of every label table and heard in the recommendation train window (audiorec.ssl.data).
# Each checkpoint feeds its backbone's extraction (embed_inputs), so retraining reruns only its descendants.


rule ssl_train_tracks:
    input:
        unpack(ssl_training_inputs),
    output:
        "results/{dataset}/ssl/train_tracks.parquet",
    log:
        "results/{dataset}/logs/ssl_train_tracks.log",
    localrule: True
    resources:
        mem_mb=2000,
    script:
        "../scripts/ssl_train_tracks.py"


rule ssl_train:
    input:
        tracks=tracks_table,
        training_tracks="results/{dataset}/ssl/train_tracks.parquet",
    output:
        checkpoint="results/{dataset}/ssl/{backbone}.pt",
    log:
        "results/{dataset}/logs/ssl_train/{backbone}.log",
    benchmark:
        "results/{dataset}/benchmarks/ssl_train/{backbone}.tsv"
    wildcard_constraints:
        # Only self-supervised backbones; "(?!)" matches nothing when the config has none.
        backbone=_alternatives(ssl_backbones()) or "(?!)",
    threads: 2
    resources:
        mem_mb=8000,
        gpu=1,
    params:
        options=lambda wildcards: canonical_json(
            backbone_spec(wildcards.backbone)["options"]
        ),
    script:
        "../scripts/ssl_train.py"
