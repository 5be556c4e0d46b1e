# Figures of the results, drawn from the tables (never recomputing a number), for `snakemake --report`.


rule figures:
    input:
        recommendation="results/{dataset}/tables/recommendation.csv",
        training_logs=lambda wildcards: [
            run["training_log"] for run in training_runs(wildcards)
        ],
    output:
        bars=report(
            "results/{dataset}/figures/recommendation.png",
            caption="../report/recommendation_figure.rst",
            category="Recommendation",
        ),
        curves=report(
            "results/{dataset}/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
    log:
        "results/{dataset}/logs/figures.log",
    localrule: True
    resources:
        mem_mb=1000,
    params:
        metric=f"HitRate@{max(config['evaluation']['ks'])}",
        training_runs=lambda wildcards: canonical_json(training_runs(wildcards)),
    script:
        "../scripts/figures.py"


# Every hidden layer of the swept backbones, ranked by one training-free model from the shards (no forward pass),
# scored on the validation split: choosing a layer is model selection, which must never look at test.
rule layer_sweep:
    input:
        shards=lambda wildcards: embed_shards(wildcards)["vectors"],
        train="results/{dataset}/split/train.parquet",
        heard_before_window="results/{dataset}/split/heard_before_window.parquet",
        uncovered=lambda wildcards: checkpoints.candidates.get(
            dataset=wildcards.dataset
        ).output.uncovered,
        truth="results/{dataset}/split/val.parquet",
    output:
        csv="results/{dataset}/layers/{backbone}.csv",
    log:
        "results/{dataset}/logs/layer_sweep/{backbone}.log",
    wildcard_constraints:
        backbone=_alternatives(swept_backbones()) or "(?!)",
    resources:
        mem_mb=4000,
    params:
        model=lambda wildcards: canonical_json(layer_sweep_model()),
        ks=config["evaluation"]["ks"],
    script:
        "../scripts/layer_sweep.py"


rule layer_figure:
    input:
        sweeps=expand(
            "results/{{dataset}}/layers/{backbone}.csv", backbone=swept_backbones()
        ),
    output:
        figure=report(
            "results/{dataset}/figures/layers.png",
            caption="../report/layers.rst",
            category="Recommendation",
        ),
    log:
        "results/{dataset}/logs/layer_figure.log",
    localrule: True
    resources:
        mem_mb=1000,
    params:
        backbones=swept_backbones(),
        metric=f"HitRate@{max(config['evaluation']['ks'])}",
    script:
        "../scripts/layer_figure.py"
