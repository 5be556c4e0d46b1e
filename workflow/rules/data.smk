# Datasets: every source writes the same tables (DESIGN.md), so later stages never ask where data came from.
# Each source in the config gets its own fetch checkpoint, whose outputs are what the source declares in
# audiorec.datasets.SOURCE_OUTPUTS (a FMA dataset has genre labels but no listening log, for instance). The
# files a dataset declares under `downloads` are fetched into resources/datasets/{dataset}/ first, verified,
# and unpacked when they are archives; options refer to them as "{download:NAME}". The helpers these rules
# use live in common.smk.

for _source in sorted({entry["source"] for entry in config["datasets"].values()}):

    checkpoint:
        name:
            fetch_rule(_source)
        input:
            downloads=dataset_downloads,
        output:
            **fetch_outputs(_source),
        log:
            f"results/{{dataset}}/logs/{fetch_rule(_source)}.log",
        benchmark:
            f"results/{{dataset}}/benchmarks/{fetch_rule(_source)}.tsv"
        wildcard_constraints:
            dataset=_alternatives(datasets_of(_source)),
        resources:
            mem_mb=4000,
        params:
            source=_source,
            options=lambda wildcards: canonical_json(dataset_options(wildcards.dataset)),
        script:
            "../scripts/fetch_dataset.py"


# A localrule: compute nodes of many clusters cannot reach the internet, the submit host can.
rule download:
    output:
        DOWNLOADS,
    log:
        "results/{dataset}/logs/download/{file}.log",
    wildcard_constraints:
        file=r"[^/]+",
    localrule: True
    resources:
        mem_mb=1000,
    params:
        spec=download_entry,
    script:
        "../scripts/download.py"


rule extract_archive:
    input:
        DOWNLOADS,
    output:
        directory(EXTRACTED),
    log:
        "results/{dataset}/logs/extract_archive/{file}.log",
    wildcard_constraints:
        file=r"[^/]+",
    resources:
        mem_mb=1000,
    params:
        archive=lambda wildcards: declared_download(wildcards).archive,
    script:
        "../scripts/extract_archive.py"


if precomputed_backbones():

    # A backbone of kind "precomputed" takes the vectors a dataset ships (Music4All-Onion's MFCC statistics)
    # instead of running a model; the rest of the workflow treats them like any extraction's.
    rule embed_precomputed:
        input:
            tracks=tracks_table,
            features=precomputed_file,
        output:
            embeddings="results/{dataset}/embeddings/{backbone}.parquet",
            failures="results/{dataset}/embeddings/{backbone}.failures.parquet",
        log:
            "results/{dataset}/logs/embed_precomputed/{backbone}.log",
        wildcard_constraints:
            backbone=_alternatives(precomputed_backbones()),
        resources:
            mem_mb=2000,
        params:
            source=lambda wildcards: config["datasets"][wildcards.dataset]["source"],
            options=lambda wildcards: canonical_json(dataset_options(wildcards.dataset)),
            backbone=lambda wildcards: canonical_json(backbone_spec(wildcards.backbone)),
        script:
            "../scripts/embed_precomputed.py"
