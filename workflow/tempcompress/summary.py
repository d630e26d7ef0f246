"""Headline numbers of a finished run as Markdown (results/summary.md), from the tidy tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .budget import summary_section


def _fmt(df: pd.DataFrame) -> str:
    """A plain Markdown table (no optional dependency on tabulate)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def id_per_tau(ids: pd.DataFrame) -> pd.DataFrame:
    """Mean ID per (variant, tau) and estimator, single-temperature runs and the base model."""
    d = ids[ids["kind"].isin(["infonce", "base"])]
    return d.pivot_table(index=["variant", "tau"], columns="estimator", values="id", aggfunc="mean").reset_index()


def retention_per_run(scores: pd.DataFrame, methods: tuple[str, ...] = ("truncation", "binarization")) -> pd.DataFrame:
    """Per variant and tau: full-size score and retention at the smallest dim (mean over tasks and seeds)."""
    dmin = scores["dim_num"].min()
    full = scores[scores.method == "none"].groupby(["variant", "tau"])["score"].mean().rename("full_score")
    out = [full]
    for m in methods:
        d = scores[(scores.method == m) & (scores.dim_num == dmin)]
        out.append(d.groupby(["variant", "tau"])["retention"].mean().rename(f"{m}@{int(dmin)} retention"))
    return pd.concat(out, axis=1).reset_index()


def winners(scores: pd.DataFrame, method: str = "truncation") -> pd.DataFrame:
    """The best (variant, tau) by mean score over tasks at each target dim of one method."""
    d = scores[scores.method.isin([method, "none"])].copy()
    d["at"] = d["dim"]
    g = d.groupby(["at", "variant", "tau"])["score"].mean().reset_index()
    best = g.loc[g.groupby("at")["score"].idxmax()]
    runner = g.sort_values("score", ascending=False).groupby("at").nth(1)[["at", "variant", "tau", "score"]]
    runner = runner.rename(columns={"variant": "runner_up", "tau": "runner_up_tau", "score": "runner_up_score"})
    return best.merge(runner, on="at").sort_values("at", key=lambda s: pd.to_numeric(s, errors="coerce"))


def write_summary(tables: dict[str, str], out: str) -> None:
    scores = pd.read_parquet(Path(tables["scores"]).with_suffix(".parquet"))
    ids = pd.read_parquet(Path(tables["intrinsic_dim"]).with_suffix(".parquet"))
    parts = [
        "# Headline numbers",
        "",
        "## Intrinsic dimension per temperature (mean over seeds)",
        _fmt(id_per_tau(ids)),
        "",
        "## Full-size score and retention at the smallest target dim (mean over tasks and seeds)",
        _fmt(retention_per_run(scores)),
        "",
    ]
    for method in ("truncation", "binarization", "pca"):
        if method in set(scores.method):
            parts += [f"## Best variant at each dim: {method} (mean main score over tasks)",
                      _fmt(winners(scores, method)), ""]
    parts += summary_section(tables)  # advisor and ID forecast (budget.py)
    Path(out).write_text("\n".join(parts) + "\n")
