# Hyper-parameter studies: a model with a `tune` block is searched on the validation split, one study per backbone
# it runs on (Optuna TPE, seeded, a budget of trials and seconds); its runs then train with the best options. A study
# keeps a journal beside its outputs, so a killed study resumes from its finished trials.


if plan.tuned_models():

    rule tune:
        input:
            unpack(tune_inputs),
        output:
            best=paths.TUNING_BEST,
            trials=paths.TUNING_TRIALS,
        log:
            "results/{dataset}/logs/tune/{model}/{backbone}.log",
        benchmark:
            "results/{dataset}/benchmarks/tune/{model}/{backbone}.tsv"
        wildcard_constraints:
            model=alternatives(plan.tuned_models()),
        conda:
            "../../envs/torch.yaml"
        threads: config["recommend"]["threads"]
        resources:
            mem_mb=8000,
            gpu=lambda wildcards: int(plan.models[wildcards.model].traits.uses_gpu),
        params:
            model=lambda wildcards: canonical_json(plan.models[wildcards.model].spec),
        script:
            "../scripts/tune.py"

    rule tuning_table:
        input:
            best=lambda wildcards: [
                fill(paths.TUNING_BEST, wildcards, model=model, backbone=backbone)
                for model, backbone in plan.studies()
            ],
            trials=lambda wildcards: [
                fill(paths.TUNING_TRIALS, wildcards, model=model, backbone=backbone)
                for model, backbone in plan.studies()
            ],
        output:
            csv=paths.TUNING_CSV,
            markdown=paths.TUNING_MD,
            figure=report(
                paths.TUNING_FIGURE,
                caption="../report/tuning.rst",
                category="Recommendation",
            ),
        log:
            "results/{dataset}/logs/tuning_table.log",
        localrule: True
        conda:
            "../../envs/tables.yaml"
        params:
            studies=lambda wildcards: [
                {"model": model, "backbone": backbone}
                for model, backbone in plan.studies()
            ],
        script:
            "../scripts/tuning_table.py"
