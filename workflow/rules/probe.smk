# Frozen-embedding probes (Choi et al. 2022): genre and instrument classification with linear classifiers,
# and playlist continuation with ItemKNN; then one table per dataset in the paper's layout.


rule probe:
    input:
        unpack(probe_inputs),
    output:
        "results/{dataset}/probes/{task}/{backbone}.json",
    log:
        "results/{dataset}/logs/probe/{task}/{backbone}.log",
    wildcard_constraints:
        task=_alternatives(config["probes"]["tasks"]),
    resources:
        mem_mb=2000,
    params:
        options=lambda wildcards: canonical_json(probe_options(wildcards.task)),
    script:
        "../scripts/probe.py"


rule probe_table:
    input:
        lambda wildcards: [
            result["path"] for result in probe_results(wildcards.dataset)
        ],
    output:
        csv="results/{dataset}/tables/probes.csv",
        markdown="results/{dataset}/tables/probes.md",
    log:
        "results/{dataset}/logs/probe_table.log",
    localrule: True
    resources:
        mem_mb=1000,
    params:
        results=lambda wildcards: canonical_json(probe_results(wildcards.dataset)),
    script:
        "../scripts/probe_table.py"
