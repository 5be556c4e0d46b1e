# Trained recommenders (Shallow Net, BERT4Rec): the same run layout as rule recommend, plus the best
# checkpoint and a per-epoch training log. They learn on train, early-stop on val, and rank val and test users.
# A killed run resumes from runs/.../last.pt, which is rewritten after every epoch.


ruleorder: train_recommender > recommend


rule train_recommender:
    input:
        unpack(recommend_inputs),
    output:
        recommendations="results/{dataset}/runs/{model}/{backbone}/seed{seed}/recommendations.parquet",
        checkpoint="results/{dataset}/runs/{model}/{backbone}/seed{seed}/checkpoint.pt",
        training_log="results/{dataset}/runs/{model}/{backbone}/seed{seed}/training_log.csv",
    log:
        "results/{dataset}/logs/train_recommender/{model}/{backbone}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train_recommender/{model}/{backbone}/seed{seed}.tsv"
    wildcard_constraints:
        # Only models with a training step; "(?!)" matches nothing when the config has none.
        model=_alternatives(trained_models()) or "(?!)",
    # The networks' CPU kernels are small: two jobs side by side use two cores better than two threads in one
    # job, whose threads mostly wait on each other. On a GPU the CPU thread count hardly matters.
    threads: 1
    resources:
        mem_mb=8000,
        gpu=lambda wildcards: model_gpus(wildcards.model),
    params:
        model=lambda wildcards: canonical_json(model_spec(wildcards.model)),
        top_k=config["recommend"]["top_k"],
        shuffle=lambda wildcards: is_shuffled(wildcards.model, wildcards.backbone),
        split_files=run_split_files,
    script:
        "../scripts/recommend.py"
