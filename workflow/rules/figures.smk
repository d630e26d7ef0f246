# One rule per figure, each with a literal output path, reading only the tidy tables.
# Beside each PDF, the data it plots (one row per drawn point: model, mean, 95% CI, n).
for _fig in FIGURE_NAMES:

    rule:
        name:
            f"figure_{_fig}"
        input:
            **TABLES,
        output:
            figure=report(
                f"paper_figures/{_fig}.pdf",
                caption=f"../report/{_fig}.rst",
                category="Figures",
            ),
            data=f"results/figure_data/{_fig}.csv",
        params:
            name=_fig,
        log:
            f"results/logs/figures/{_fig}.log",
        localrule: True
        conda:
            CPU_ENV
        script:
            "../scripts/figure.py"


# Headline numbers per model (ID per tau, retention, best variant per dim) with 95% CIs.
rule summary:
    input:
        **TABLES,
    output:
        summary="results/summary.md",
    log:
        "results/logs/summary.log",
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/summary.py"


# Item-level uncertainty of the small local tasks (bootstrap over Lee documents / BBC queries),
# recomputed from the cached embeddings at full size and truncated to the smallest dim.
rule item_noise:
    input:
        eval=expand(emb("{run}", "eval.npy"), run=ACTIVE),
        texts=expand(emb("{run}", "eval_texts.parquet"), run=ACTIVE),
    output:
        table="results/tables/item_noise.csv",
        reps="results/tables/item_noise_reps.parquet",
    params:
        runs=sorted(ACTIVE),  # sorted: reordering the config is not a change
        settings={
            **config_keys("evaluation.tasks", "evaluation.max_documents"),
            # the only compressed variant it bootstraps: truncation to the smallest dim
            "truncation_dim": min(map(int, DIMS)) if "truncation" in METHODS else None,
        },
    log:
        "results/logs/item_noise.log",
    threads: stage_threads("cpu")
    resources:
        **res("cpu"),
    conda:
        CPU_ENV
    script:
        "../scripts/item_noise.py"


# The paper's claims as tests per model: effect size, 95% CI, n, verdict.
rule findings:
    input:
        **TABLES,
        item_noise="results/tables/item_noise.csv",
        item_reps="results/tables/item_noise_reps.parquet",
    output:
        findings=report("results/findings.md", caption="../report/findings.rst", category="Findings"),
        table=report("results/tables/findings.csv", caption="../report/findings_table.rst", category="Findings"),
    log:
        "results/logs/findings.log",
    params:
        settings=config_keys("findings", "training.corpus", "evaluation.tasks"),
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/findings.py"


# Build every figure.
rule figures:
    input:
        FIGURE_PDFS,
