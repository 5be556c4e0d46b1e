# Figures of the results, drawn from the tables (never recomputing a number), for `snakemake --report`.


rule figures:
    input:
        recommendation=rules.aggregate.output.csv,
        significance=rules.aggregate.output.significance,
        training_logs=lambda wildcards: [
            run["training_log"] for run in plan.training_runs(wildcards.dataset)
        ],
    output:
        bars=report(
            paths.RECOMMENDATION_FIGURE,
            caption="../report/recommendation_figure.rst",
            category="Recommendation",
        ),
        curves=report(
            paths.TRAINING_CURVES,
            caption="../report/training_curves.rst",
            category="Training",
        ),
        popularity=report(
            paths.ACCURACY_POPULARITY_FIGURE,
            caption="../report/accuracy_vs_popularity.rst",
            category="Recommendation",
        ),
        bars_pdf=paths.RECOMMENDATION_FIGURE_PDF,
        curves_pdf=paths.TRAINING_CURVES_PDF,
        popularity_pdf=paths.ACCURACY_POPULARITY_FIGURE_PDF,
    log:
        "results/{dataset}/logs/figures.log",
    benchmark:
        "results/{dataset}/benchmarks/figures.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=1000,
    params:
        metric=f"HitRate@{max(config['evaluation']['ks'])}",
        training_runs=as_json(lambda wildcards: plan.training_runs(wildcards.dataset)),
        tests=canonical_json(plan.significance_tests()),
        models=list(plan.models),
        backbones=list(plan.backbones),
    script:
        "../scripts/figures.py"


# Every hidden layer of the swept backbones, ranked by one training-free model from the shards (no forward pass),
# scored on the validation split: choosing a layer is model selection, which must never look at test.
rule layer_sweep:
    input:
        shards=lambda wildcards: embed_shards(wildcards)["vectors"],
        train=rules.split_temporal.output.train,
        heard_before_window=rules.split_temporal.output.heard_before_window,
        uncovered=candidate_set,
        truth=rules.split_temporal.output.val,
    output:
        csv=paths.LAYER_SWEEP,
    log:
        "results/{dataset}/logs/layer_sweep/{backbone}.log",
    benchmark:
        "results/{dataset}/benchmarks/layer_sweep/{backbone}.tsv"
    wildcard_constraints:
        backbone=alternatives(plan.swept_backbones()),
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=4000,
    params:
        model=lambda wildcards: canonical_json(plan.layer_sweep_model()),
        ks=config["evaluation"]["ks"],
    script:
        "../scripts/layer_sweep.py"


rule layer_figure:
    input:
        sweeps=expand(
            rules.layer_sweep.output.csv,
            backbone=plan.swept_backbones(),
            allow_missing=True,
        ),
    output:
        figure=report(
            paths.LAYERS_FIGURE,
            caption="../report/layers.rst",
            category="Recommendation",
        ),
        figure_pdf=paths.LAYERS_FIGURE_PDF,
    log:
        "results/{dataset}/logs/layer_figure.log",
    benchmark:
        "results/{dataset}/benchmarks/layer_figure.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=1000,
    params:
        swept=plan.swept_backbones(),
        layers=canonical_json(
            {name: plan.backbones[name].layer for name in plan.swept_backbones()}
        ),
        backbones=list(plan.backbones),
        metric=f"HitRate@{max(config['evaluation']['ks'])}",
    script:
        "../scripts/layer_figure.py"
