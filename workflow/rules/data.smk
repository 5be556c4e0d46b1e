# Datasets: every source writes the same tables (DESIGN.md), so later stages never ask where data came from.
# Each source in the config gets its own fetch checkpoint, whose outputs are what the source declares in
# audiorec.datasets.SOURCE_OUTPUTS (a FMA dataset has genre labels but no listening log, for instance). The
# files a dataset declares under `downloads` are fetched into resources/datasets/{dataset}/ first, verified,
# and unpacked when they are archives; options refer to them as "{download:NAME}". The helpers these rules
# use live in common.smk.

for _source in sorted({dataset.source for dataset in plan.datasets.values()}):

    checkpoint:
        name:
            fetch_rule(_source)
        input:
            downloads=lambda wildcards: list(
                plan.datasets[wildcards.dataset].download_locations().values()
            ),
        output:
            **fetch_outputs(_source),
        log:
            f"results/{{dataset}}/logs/{fetch_rule(_source)}.log",
        benchmark:
            f"results/{{dataset}}/benchmarks/{fetch_rule(_source)}.tsv"
        wildcard_constraints:
            dataset=alternatives(
                [d.name for d in plan.datasets.values() if d.source == _source]
            ),
        conda:
            "../../envs/tables.yaml"
        resources:
            mem_mb=4000,
        params:
            source=_source,
            options=as_json(
                lambda wildcards: plan.datasets[wildcards.dataset].options()
            ),
        script:
            "../scripts/fetch_dataset.py"


# A localrule: compute nodes of many clusters cannot reach the internet, the submit host can.
rule download:
    output:
        paths.DOWNLOAD,
    log:
        "results/{dataset}/logs/download/{file}.log",
    benchmark:
        "results/{dataset}/benchmarks/download/{file}.tsv"
    wildcard_constraints:
        file=r"[^/]+",
    localrule: True
    conda:
        "../../envs/download.yaml"
    resources:
        mem_mb=1000,
    params:
        spec=as_json(
            lambda wildcards: plan.datasets[wildcards.dataset].download_entry(
                wildcards.file
            )
        ),
    script:
        "../scripts/download.py"


rule extract_archive:
    input:
        rules.download.output,
    output:
        directory(paths.EXTRACTED),
    log:
        "results/{dataset}/logs/extract_archive/{file}.log",
    benchmark:
        "results/{dataset}/benchmarks/extract_archive/{file}.tsv"
    wildcard_constraints:
        file=r"[^/]+",
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=1000,
    params:
        archive=lambda wildcards: plan.datasets[wildcards.dataset]
        .download_spec(wildcards.file)
        .archive,
    script:
        "../scripts/extract_archive.py"


if plan.precomputed_backbones():

    # A backbone of kind "precomputed" takes the vectors a dataset ships (Music4All-Onion's MFCC statistics) or
    # a Parquet file of the user's own (option path; its layer is chosen here) instead of running a model; the
    # rest of the workflow treats them like any extraction's.
    rule embed_precomputed:
        input:
            tracks=tracks_table,
            features=precomputed_file,
        output:
            embeddings=paths.EMBEDDINGS,
            failures=paths.EMBEDDING_FAILURES,
        log:
            "results/{dataset}/logs/embed_precomputed/{backbone}.log",
        benchmark:
            "results/{dataset}/benchmarks/embed_precomputed/{backbone}.tsv"
        wildcard_constraints:
            backbone=alternatives(plan.precomputed_backbones()),
        conda:
            "../../envs/tables.yaml"
        resources:
            mem_mb=2000,
        params:
            source=lambda wildcards: plan.datasets[wildcards.dataset].source,
            options=as_json(
                lambda wildcards: plan.datasets[wildcards.dataset].options()
            ),
            backbone=as_json(
                lambda wildcards: plan.precomputed_spec(wildcards.backbone)
            ),
        script:
            "../scripts/embed_precomputed.py"
