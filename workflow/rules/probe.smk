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
        csv=report(
            "results/{dataset}/tables/probes.csv",
            caption="../report/probes.rst",
            category="MIR probes",
        ),
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


# The first paper's RQ3 on one set of embeddings: probe results beside recommendation results, per backbone.
rule mir_vs_recs:
    input:
        probes="results/{dataset}/tables/probes.csv",
        recommendation="results/{dataset}/tables/recommendation.csv",
    output:
        csv="results/{dataset}/tables/mir_vs_recs.csv",
        correlations=report(
            "results/{dataset}/tables/mir_vs_recs_correlations.csv",
            caption="../report/mir_vs_recs_correlations.rst",
            category="MIR versus recommendation",
        ),
        markdown="results/{dataset}/tables/mir_vs_recs.md",
        scatter=report(
            "results/{dataset}/figures/mir_vs_recs.png",
            caption="../report/mir_vs_recs.rst",
            category="MIR versus recommendation",
        ),
    log:
        "results/{dataset}/logs/mir_vs_recs.log",
    localrule: True
    resources:
        mem_mb=1000,
    params:
        metric=f"HitRate@{max(config['evaluation']['ks'])}",
    script:
        "../scripts/mir_vs_recs.py"


# The self-supervised encoders beside the baseline backbone, in the layout of Choi et al. (2022), Table 3.
rule ssl_table:
    input:
        probes="results/{dataset}/tables/probes.csv",
    output:
        csv=report(
            "results/{dataset}/tables/ssl.csv",
            caption="../report/ssl.rst",
            category="MIR probes",
        ),
        markdown="results/{dataset}/tables/ssl.md",
    log:
        "results/{dataset}/logs/ssl_table.log",
    localrule: True
    resources:
        mem_mb=1000,
    params:
        encoders=canonical_json(ssl_table_encoders()),
    script:
        "../scripts/ssl_table.py"
