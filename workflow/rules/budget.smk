# Quality per byte and the intrinsic-dimension forecast, from the tidy tables.
# Included after analyse.smk and before figures.smk: the figure and summary rules read these
# tables too, so they join TABLES below (aggregate's outputs were fixed when it was defined).
BUDGET_TABLES = {
    name: f"results/tables/{name}.csv" for name in ("budget", "advice", "forecast", "forecast_dims")
}


# Bytes per vector of every (method, dim), the advisor table and the leave-one-out forecast.
rule budget:
    input:
        scores=TABLES["scores"],
        ids=TABLES["intrinsic_dim"],
        meta=expand(emb("{run}", "meta.json"), run=ACTIVE),
    output:
        **BUDGET_TABLES,
    log:
        "results/logs/budget.log",
    localrule: True
    conda:
        CPU_ENV
    script:
        "../scripts/budget.py"


TABLES.update(BUDGET_TABLES)
