# audiorec: how well do music audio representations serve recommendation?
# This file is a table of contents; each stage lives in workflow/rules/, its logic in the audiorec package.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/ssl.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/recommend.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        plan.final_targets(),
    localrule: True
