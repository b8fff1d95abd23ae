# kdmem: Memorization Dynamics in Knowledge Distillation (arXiv 2601.15394), as one DAG.
# Stages, in order (one rules/ file each): data -> pretrain -> finetune -> logits -> distill -> score -> analysis (with the report).
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless --configfile names another study (Snakemake would merge the two).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "rules/common.smk"  # kdmem's config check (the schema, with one clear line per error), then config -> jobs


include: "rules/data.smk"
include: "rules/pretrain.smk"
include: "rules/finetune.smk"
include: "rules/logits.smk"
include: "rules/distill.smk"
include: "rules/score.smk"
include: "rules/analysis.smk"


rule all:
    input:
        all_targets(),
    default_target: True
