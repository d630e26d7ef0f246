# tempcompress: temperature control in contrastive training vs post-training compression.
#   snakemake --cores all                      the default (offline) pipeline -> paper_figures/
#   snakemake --configfile config/paper.yaml   the full-scale grid (hub models, MTEB tasks)
#   snakemake --profile slurm                  the same on a SLURM cluster (see profiles/)
#   snakemake paper_figures/<name>.pdf         one figure from the cached tables
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/prefetch.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/analyse.smk"
include: "workflow/rules/budget.smk"  # after analyse, before figures (see there)
include: "workflow/rules/figures.smk"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    run=_alternatives(RUNS),


localrules:
    all,
    aggregate,
    figures,


rule all:
    default_target: True
    input:
        FIGURE_PDFS,
        TABLES.values(),
        "results/summary.md",
        "results/findings.md",
