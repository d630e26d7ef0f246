"""Headline numbers of a finished run as Markdown (results/summary.md), from the tidy tables.

Every row is keyed by model (models are never averaged together); every number is a mean over
seeds with its 95% t-interval and n (``stats.mean_ci``).  Scores are averaged over the tasks
of a task type, then over task types; retention averaged over task types is chance-corrected.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .budget import summary_section
from .stats import fmt_ci, summarise
from .tables import headline_ids, id_samples, per_run, per_run_type


def _fmt(df: pd.DataFrame) -> str:
    """A plain Markdown table (no optional dependency on tabulate)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = ["–" if isinstance(v, float) and math.isnan(v) else f"{v:.3f}" if isinstance(v, float) else str(v)
                 for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cells(stats: pd.DataFrame) -> pd.Series:
    return pd.Series([fmt_ci(r.mean, r.ci_lo, r.ci_hi, int(r.n)) for r in stats.itertuples()], index=stats.index,
                     dtype=object)


def _tau_sort(df: pd.DataFrame) -> pd.DataFrame:
    key = pd.to_numeric(df["tau"], errors="coerce").fillna(-1.0)
    return df.assign(_k=key).sort_values(["model", "variant", "_k"]).drop(columns="_k").reset_index(drop=True)


def id_per_tau(ids: pd.DataFrame) -> pd.DataFrame:
    """Per (model, variant, tau) and estimator: mean ID over seeds with 95% CI and n (as numbers)."""
    d = ids[ids["kind"].isin(["infonce", "base"])]
    return summarise(d, ["model", "variant", "tau", "estimator"], "id")


def id_per_tau_table(ids: pd.DataFrame) -> pd.DataFrame:
    """``id_per_tau`` laid out as text cells, one column per estimator."""
    st = id_per_tau(ids)
    if st.empty:
        return st
    st["cell"] = _cells(st)
    wide = st.pivot_table(index=["model", "variant", "tau"], columns="estimator", values="cell", aggfunc="first")
    return _tau_sort(wide.reset_index().rename_axis(columns=None))


def smallest_dim_rows(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    """Rows of one method at each model's smallest scored dim."""
    d = scores[scores["method"] == method]
    return d[d["dim_num"] == d.groupby("model")["dim_num"].transform("min")]


def largest_dim_rows(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    """Rows of one method at each model's largest scored dim (the native dim for quantization)."""
    d = scores[scores["method"] == method]
    return d[d["dim_num"] == d.groupby("model")["dim_num"].transform("max")]


def retention_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (model, variant, tau): full-size score, and chance-corrected retention of truncation at the
    smallest dim and of binarization / int8 at the smallest and the largest (native) dim.

    Long format: one row per (model, variant, tau, quantity) with mean, ci_lo, ci_hi, n.
    """
    keys = ["model", "variant", "tau"]
    full = summarise(per_run(scores[scores["method"] == "none"], "score"), keys, "score")
    full["quantity"] = "full-size score"
    parts = [full]
    for method in ("truncation", "binarization", "int8"):
        if method not in set(scores["method"]):
            continue
        pickers = [("smallest", smallest_dim_rows)]
        if method != "truncation":
            pickers.append(("largest", largest_dim_rows))
        seen = set()
        for _, pick in pickers:
            rows = pick(scores, method)
            dims = ",".join(sorted(map(str, rows["dim"].unique())))
            if dims in seen:
                continue
            seen.add(dims)
            st = summarise(per_run(rows, "retention_cc"), keys, "retention_cc")
            st["quantity"] = f"{method}@{dims} retention (cc)"
            parts.append(st)
    return pd.concat(parts, ignore_index=True)


def retention_table(scores: pd.DataFrame) -> pd.DataFrame:
    """``retention_stats`` as text cells, one column per quantity."""
    st = retention_stats(scores)
    st["cell"] = _cells(st)
    order = list(dict.fromkeys(st["quantity"]))
    wide = st.pivot_table(index=["model", "variant", "tau"], columns="quantity", values="cell", aggfunc="first")
    return _tau_sort(wide[order].reset_index().rename_axis(columns=None))


def retention_per_type_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (model, variant, tau, task type, method) at the smallest dim: raw retention mean/CI/n."""
    rows = pd.concat([smallest_dim_rows(scores, m) for m in ("truncation", "binarization")
                      if m in set(scores["method"])] or [scores.iloc[0:0]])
    if rows.empty:
        return pd.DataFrame(columns=["model", "variant", "tau", "task_type", "method", "dim", "mean", "ci_lo",
                                     "ci_hi", "n"])
    return summarise(per_run_type(rows, "retention"), ["model", "variant", "tau", "task_type", "method", "dim"],
                     "retention")


def retention_per_type_table(scores: pd.DataFrame) -> pd.DataFrame:
    st = retention_per_type_stats(scores)
    if st.empty:
        return st
    st["cell"] = _cells(st)
    st["column"] = st["method"] + "@" + st["dim"].astype(str) + " " + st["task_type"]
    wide = st.pivot_table(index=["model", "variant", "tau"], columns="column", values="cell", aggfunc="first")
    return _tau_sort(wide.reset_index().rename_axis(columns=None))


def winners(scores: pd.DataFrame, method: str = "truncation") -> pd.DataFrame:
    """Per model and target dim of one method: the best and runner-up (variant, tau) by mean score
    over seeds (score = mean over task types), with the best one's 95% CI and n."""
    d = scores[scores["method"].isin([method, "none"])]
    st = summarise(per_run(d, "score"), ["model", "dim", "variant", "tau"], "score")
    out = []
    for (model, dim), g in st.groupby(["model", "dim"]):
        g = g.sort_values("mean", ascending=False)
        best = g.iloc[0]
        row = {"model": model, "at": dim, "variant": best["variant"], "tau": best["tau"],
               "score": fmt_ci(best["mean"], best["ci_lo"], best["ci_hi"], int(best["n"]))}
        if len(g) > 1:
            r = g.iloc[1]
            row.update({"runner_up": r["variant"], "runner_up_tau": r["tau"], "runner_up_score": r["mean"]})
        out.append(row)
    res = pd.DataFrame(out)
    if res.empty:
        return res
    key = pd.to_numeric(res["at"], errors="coerce").fillna(1e9)
    return res.assign(_k=key).sort_values(["model", "_k"]).drop(columns="_k").reset_index(drop=True)


def seeds_note(scores: pd.DataFrame) -> str:
    """Which variants have how many seeds (per model)."""
    n = scores.groupby(["model", "variant"])["seed"].nunique().reset_index()
    parts = [f"{m}: " + ", ".join(f"{v} {k}" for v, k in zip(g["variant"], g["seed"], strict=True))
             for m, g in n.groupby("model")]
    return "Seeds per variant — " + "; ".join(parts) + ". Variants with one seed have no interval."


def write_summary(tables: dict[str, str], out: str) -> None:
    scores = pd.read_parquet(Path(tables["scores"]).with_suffix(".parquet"))
    ids = pd.read_parquet(Path(tables["intrinsic_dim"]).with_suffix(".parquet"))
    parts = [
        "# Headline numbers",
        "",
        "Each cell: mean over seeds [95% t-interval] (n seeds); every row is one model (models are never "
        "averaged together).  Scores are means over the tasks of a task type, then over task types; "
        "retention averaged over task types is chance-corrected: (score − chance) / (full − chance), "
        "chance = 1/n_classes for accuracy and 0 for Spearman, v-measure and nDCG.",
        "",
        seeds_note(scores),
        "",
    ]
    samples = id_samples(ids)
    headline = headline_ids(ids)
    parts += ["## Intrinsic dimension per temperature", _fmt(id_per_tau_table(headline)), ""]
    if len(samples) > 1:
        for name, g in samples:
            if not g.equals(headline):
                parts += [f"### ID on the '{name}' text sample", _fmt(id_per_tau_table(g)), ""]
    parts += [
        "## Full-size score and chance-corrected retention",
        _fmt(retention_table(scores)),
        "",
        "## Retention per task type at the smallest target dim (compressed / full, not chance-corrected)",
        _fmt(retention_per_type_table(scores)),
        "",
    ]
    for method in ("truncation", "binarization", "pca"):
        if method in set(scores["method"]):
            parts += [f"## Best variant at each dim: {method} (mean main score over task types)",
                      _fmt(winners(scores, method)), ""]
    parts += summary_section(tables)  # advisor and ID forecast (budget.py)
    Path(out).write_text("\n".join(parts) + "\n")
