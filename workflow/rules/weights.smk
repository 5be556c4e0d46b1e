# Published weights (audiorec.storage.published_weights): a backbone whose `weights` is `published` (or omitted, where
# its size has a published source) reads files that this rule fetches from a pinned Hugging Face commit or a
# URL, each checked against its declared sha256 before it appears. A localrule: compute nodes of many
# clusters cannot reach the internet, the submit host can. Extraction jobs then read only the local copy.


rule download_weights:
    output:
        paths.PUBLISHED_WEIGHTS,
    log:
        "logs/download_weights/{source}/{file}.log",
    benchmark:
        "logs/download_weights/{source}/{file}.tsv"
    wildcard_constraints:
        source=alternatives(list(plan.published_sources())),
    localrule: True
    conda:
        "../../envs/download.yaml"
    resources:
        mem_mb=1000,
    params:
        entry=as_json(
            lambda wildcards: plan.published_sources()[wildcards.source].as_entry()
        ),
    script:
        "../scripts/download_weights.py"
