"""Quality per byte: bytes per vector of every (method, dim), Pareto frontiers and the advisor.

Answers "what should I ship at 64 bytes per vector?" from the tidy scores table alone.
A *configuration* is (model, variant, tau, method, dim); its score for a task type is the
mean main score over the tasks of that type (and over seeds).  Task type ``all`` is the
mean over every task, as in the other headline numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BUDGETS: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
NATIVE = "native"
ALL_TASKS = "all"
CONFIG_KEYS = ["model", "variant", "tau", "method", "dim", "dim_eff", "bytes"]


class BudgetError(ValueError):
    """A byte count that cannot be given (unknown method, missing native dimension)."""


def bytes_per_vector(method: str, dim: int) -> int:
    """Storage of one vector of ``dim`` coordinates compressed by ``method``, in whole bytes
    (``compression.bytes_per_vector``, rounded up: packed sub-byte codes take whole bytes)."""
    from .compression import CompressionError
    from .compression import bytes_per_vector as stored_bytes

    if dim < 1:
        raise BudgetError(f"dimension must be >= 1, got {dim}")
    try:
        return math.ceil(stored_bytes(method, dim))
    except CompressionError as exc:
        raise BudgetError(f"no byte count for compression method '{method}': {exc}") from None


def native_dims(meta_jsons: list[str]) -> dict[str, int]:
    """Native embedding size per run, from the encode step's meta.json (its 'dim')."""
    out = {}
    for path in meta_jsons:
        meta = json.loads(Path(path).read_text())
        if "dim" not in meta or "run" not in meta:
            raise BudgetError(f"{path} has no 'run'/'dim': re-run the encode step of that run")
        out[str(meta["run"])] = int(meta["dim"])
    return out


def budget_table(scores: pd.DataFrame, dims: dict[str, int]) -> pd.DataFrame:
    """The scores table with the stored dimension (``dim_eff``) and bytes per vector of every row.

    ``dim == 'full'`` means the run's native size (from ``dims``, run -> native dim).
    """
    df = scores.copy()
    missing = sorted(set(df["run"]) - set(dims))
    if missing:
        raise BudgetError(f"no native dimension for runs {missing}: their embeddings' meta.json is missing")
    native = df["run"].map(dims)
    df["native_dim"] = native.astype(int)
    df["dim_eff"] = np.where(df["dim"].astype(str) == "full", native, pd.to_numeric(df["dim"], errors="coerce"))
    df["dim_eff"] = df["dim_eff"].astype(int)
    df["bytes"] = [bytes_per_vector(m, int(d)) for m, d in zip(df["method"], df["dim_eff"], strict=True)]
    df["native_bytes"] = [bytes_per_vector("none", int(d)) for d in df["native_dim"]]
    cols = ["model", "variant", "kind", "tau", "seed", "run", "task", "task_type", "metric", "method", "dim",
            "dim_eff", "native_dim", "bytes", "native_bytes", "score", "full_score", "retention"]
    return df[[c for c in cols if c in df]].reset_index(drop=True)


def configurations(budget: pd.DataFrame) -> pd.DataFrame:
    """Mean score per configuration and task type (mean over the type's tasks, then over seeds).

    Also a task type ``all`` (mean over every task).  One row per
    (model, task_type, variant, tau, method, dim) with its bytes and the number of seeds.
    """
    per_type = budget.groupby(["run", "seed", "task_type", *CONFIG_KEYS], dropna=False)["score"].mean().reset_index()
    overall = budget.groupby(["run", "seed", *CONFIG_KEYS], dropna=False)["score"].mean().reset_index()
    overall["task_type"] = ALL_TASKS
    both = pd.concat([per_type, overall], ignore_index=True)
    out = both.groupby(["task_type", *CONFIG_KEYS], dropna=False).agg(
        score=("score", "mean"), score_std=("score", "std"), n_seeds=("seed", "nunique")
    )
    return out.reset_index()


def pareto_frontier(df: pd.DataFrame, x: str = "bytes", y: str = "score") -> pd.DataFrame:
    """Rows not dominated by another (fewer-or-equal bytes and a higher score), sorted by ``x``.

    Of several rows with the same ``x`` only the best-scoring one can be on the frontier;
    a row whose score does not beat every cheaper row's is dominated.
    """
    if df.empty:
        return df.copy()
    d = df.sort_values([x, y], ascending=[True, False], kind="mergesort").reset_index(drop=True)
    keep, best = [], -np.inf
    for pos, yv in enumerate(d[y]):
        if np.isfinite(yv) and yv > best:
            keep.append(pos)
            best = yv
    return d.iloc[keep].reset_index(drop=True)


def frontier_label(row: Any) -> str:
    """'variant / tau / method / dim' as printed beside a frontier point."""
    tau = "" if row["tau"] in ("none",) else f"τ={row['tau']} / "
    return f"{row['variant']} / {tau}{row['method']} / {row['dim_eff']}"


def best_full_scores(conf: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task type): the best uncompressed (method 'none') score over all runs."""
    full = conf[conf["method"] == "none"]
    return full.groupby(["model", "task_type"])["score"].max().rename("best_full_score").reset_index()


def advice_table(conf: pd.DataFrame, budgets: tuple[int, ...] = BUDGETS) -> pd.DataFrame:
    """For every byte budget (and the native size) per model and task type, the best configuration.

    ``retention_vs_best_full`` = its score / the best uncompressed score of the same model and
    task type over every run (so a compressed fine-tune can beat the best full-size model: > 1).
    A budget that nothing fits gets a row with an empty choice.
    """
    best_full = best_full_scores(conf).set_index(["model", "task_type"])["best_full_score"]
    rows = []
    for (model, ttype), g in conf.groupby(["model", "task_type"], sort=True):
        native = int(g.loc[g["method"] == "none", "bytes"].max()) if (g["method"] == "none").any() else None
        levels: list[tuple[str, int]] = [(str(b), b) for b in budgets]
        if native is not None:
            levels.append((NATIVE, native))
        for label, limit in levels:
            fits = g[g["bytes"] <= limit]
            row: dict[str, Any] = {"model": model, "task_type": ttype, "budget": label, "budget_bytes": limit}
            if fits.empty:
                row.update(variant="", tau="", method="", dim=np.nan, bytes=np.nan, score=np.nan,
                           retention_vs_best_full=np.nan, n_seeds=0)
            else:
                best = fits.sort_values(["score", "bytes"], ascending=[False, True], kind="mergesort").iloc[0]
                ref = best_full.get((model, ttype), np.nan)
                row.update(variant=best["variant"], tau=best["tau"], method=best["method"], dim=int(best["dim_eff"]),
                           bytes=int(best["bytes"]), score=float(best["score"]),
                           retention_vs_best_full=float(best["score"] / ref) if ref else np.nan,
                           n_seeds=int(best["n_seeds"]))
            rows.append(row)
    return pd.DataFrame(rows)


def write_budget_tables(scores_csv: str, ids_csv: str, meta_jsons: list[str], out: dict[str, str]) -> None:
    """budget.csv, advice.csv and the intrinsic-dimension forecast tables (forecast, forecast_dims)."""
    from .forecast import forecast_tables
    from .tables import write_table

    scores = pd.read_parquet(Path(scores_csv).with_suffix(".parquet"))
    ids = pd.read_parquet(Path(ids_csv).with_suffix(".parquet"))
    budget = budget_table(scores, native_dims(meta_jsons))
    write_table(budget, out["budget"])
    write_table(advice_table(configurations(budget)), out["advice"])
    mae, smallest = forecast_tables(scores, ids)
    write_table(mae, out["forecast"])
    write_table(smallest, out["forecast_dims"])


# ---- summary.md section ----------------------------------------------------------------------


def summary_section(tables: dict[str, str]) -> list[str]:
    """Markdown lines for summary.md: the advisor table and the ID forecast (empty if not built)."""
    from .summary import _fmt

    if "advice" not in tables:
        return []
    advice = pd.read_parquet(Path(tables["advice"]).with_suffix(".parquet"))
    shown = advice[["model", "task_type", "budget", "variant", "tau", "method", "dim", "bytes", "score",
                    "retention_vs_best_full"]].copy()
    shown["dim"] = shown["dim"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    shown["bytes"] = shown["bytes"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    parts = [
        "## What to ship at a byte budget (advisor; results/tables/advice.csv)",
        "Best (variant, τ, method, dim) per bytes-per-vector budget; retention relative to the best "
        "uncompressed model of the same model and task type (mean main score over the type's tasks and seeds).",
        "",
        _fmt(shown),
        "",
    ]
    if "forecast" in tables:
        from .forecast import summary_lines

        parts += summary_lines(tables)
    return parts
