# One rule per figure, each with a literal output path, reading only the tidy tables.
for _fig in FIGURES:

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
        params:
            name=_fig,
        log:
            f"results/logs/figures/{_fig}.log",
        localrule: True
        conda:
            CPU_ENV
        script:
            "../scripts/figure.py"


# Headline numbers (ID per tau, retention, best variant per dim) as Markdown.
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


# Build every figure.
rule figures:
    input:
        FIGURE_PDFS,
