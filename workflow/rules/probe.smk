# Frozen-embedding probes (Choi et al. 2022): genre and instrument classification with linear classifiers,
# and playlist continuation with ItemKNN; then one table per dataset in the paper's layout.


rule probe:
    input:
        unpack(probe_inputs),
    output:
        paths.PROBE,
    log:
        "results/{dataset}/logs/probe/{task}/{backbone}.log",
    benchmark:
        "results/{dataset}/benchmarks/probe/{task}/{backbone}.tsv"
    wildcard_constraints:
        task=alternatives(config["probes"]["tasks"]),
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=2000,
    params:
        options=as_json(lambda wildcards: plan.probe_options(wildcards.task)),
    script:
        "../scripts/probe.py"


rule probe_table:
    input:
        lambda wildcards: [
            result["path"] for result in plan.probe_results(wildcards.dataset)
        ],
    output:
        csv=report(
            paths.PROBES_CSV,
            caption="../report/probes.rst",
            category="MIR probes",
        ),
        markdown=paths.PROBES_MD,
    log:
        "results/{dataset}/logs/probe_table.log",
    benchmark:
        "results/{dataset}/benchmarks/probe_table.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=1000,
    params:
        results=as_json(lambda wildcards: plan.probe_results(wildcards.dataset)),
    script:
        "../scripts/probe_table.py"


# The first paper's RQ3 on one set of embeddings: probe results beside recommendation results, per backbone.
rule mir_vs_recs:
    input:
        probes=rules.probe_table.output.csv,
        recommendation=rules.aggregate.output.csv,
    output:
        csv=paths.MIR_VS_RECS_CSV,
        correlations=report(
            paths.MIR_VS_RECS_CORRELATIONS,
            caption="../report/mir_vs_recs_correlations.rst",
            category="MIR versus recommendation",
        ),
        markdown=paths.MIR_VS_RECS_MD,
        scatter=report(
            paths.MIR_VS_RECS_FIGURE,
            caption="../report/mir_vs_recs.rst",
            category="MIR versus recommendation",
        ),
        scatter_pdf=paths.MIR_VS_RECS_FIGURE_PDF,
    log:
        "results/{dataset}/logs/mir_vs_recs.log",
    benchmark:
        "results/{dataset}/benchmarks/mir_vs_recs.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=1000,
    params:
        metric=f"HitRate@{max(config['evaluation']['ks'])}",
    script:
        "../scripts/mir_vs_recs.py"


# The self-supervised encoders beside the baseline backbone, in the layout of Choi et al. (2022), Table 3.
rule ssl_table:
    input:
        probes=rules.probe_table.output.csv,
    output:
        csv=report(
            paths.SSL_CSV,
            caption="../report/ssl.rst",
            category="MIR probes",
        ),
        markdown=paths.SSL_MD,
    log:
        "results/{dataset}/logs/ssl_table.log",
    benchmark:
        "results/{dataset}/benchmarks/ssl_table.tsv"
    localrule: True
    conda:
        "../../envs/tables.yaml"
    resources:
        mem_mb=1000,
    params:
        encoders=canonical_json(plan.ssl_table_encoders()),
    script:
        "../scripts/ssl_table.py"
