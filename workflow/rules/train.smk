# Trained recommenders (Shallow Net, BERT4Rec): the same run layout as rule recommend, plus the best
# checkpoint and a per-epoch training log. They learn on train, early-stop on val, and rank val and test users.
# A killed run resumes from runs/.../last.pt, which is rewritten after every epoch.


ruleorder: train_recommender > recommend


rule train_recommender:
    input:
        unpack(recommend_inputs),
    output:
        recommendations=paths.RECOMMENDATIONS,
        checkpoint=paths.CHECKPOINT,
        training_log=paths.TRAINING_LOG,
    log:
        "results/{dataset}/logs/train_recommender/{model}/{backbone}/seed{seed}.log",
    benchmark:
        "results/{dataset}/benchmarks/train_recommender/{model}/{backbone}/seed{seed}.tsv"
    wildcard_constraints:
        model=alternatives(plan.trained_models()),
    conda:
        "../../envs/torch.yaml"
    # The networks' CPU kernels are small: two jobs side by side use two cores better than two threads in one
    # job, whose threads mostly wait on each other. On a GPU the CPU thread count hardly matters.
    threads: 1
    resources:
        mem_mb=8000,
        gpu=lambda wildcards: int(plan.models[wildcards.model].traits.uses_gpu),
    params:
        **run_params(),
        # The retrieval setting reaches the models that rank by inner product (None for the others). Changing it
        # reruns this job, which finds its finished resume state (last.pt) and only ranks again: no epoch retrains.
        retrieval=lambda wildcards: plan.retrieval_param(wildcards.model),
    script:
        "../scripts/recommend.py"
