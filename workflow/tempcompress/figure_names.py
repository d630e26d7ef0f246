"""The paper figures' names: one rule and one ``paper_figures/<name>.pdf`` each.

Apart from ``figures`` (matplotlib, seaborn and scipy take 1.6 s to import) because every
Snakemake start-up reads them, each cluster job's included.  ``figures.FIGURES`` draws exactly
these, in this order, and checks so when it is imported.
"""

FIGURE_NAMES: tuple[str, ...] = (
    "id_vs_tau",
    "score_vs_dim",
    "retention_vs_score",
    "retention_vs_id",
    "task_type_tradeoff",
    "retention_by_task_type",
    "variants_pareto",
    "variants_retention",
    "training_loss",
    "score_vs_bytes",
    "id_forecast",
)
