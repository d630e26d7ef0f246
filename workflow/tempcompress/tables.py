"""Tidy tables: one row per measurement, the only hand-off between scoring and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .config import expand_runs
from .provenance import config_hash, git_commit, package_versions

SCORE_KEYS = ["run", "method", "dim", "task"]


def run_table(config: dict[str, Any]) -> pd.DataFrame:
    """Run metadata (model, variant, kind, tau, seed, ...) for every run of the config."""
    return pd.DataFrame([spec.as_dict() for spec in expand_runs(config).values()])


def _read_all(paths: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"dim": str, "tau": str, "seed": str}) for p in paths if Path(p).is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def scores_table(config: dict[str, Any], score_csvs: list[str]) -> pd.DataFrame:
    """Scores joined with run metadata, with full-size score and retention = score / full score."""
    scores = _read_all(score_csvs)
    runs = run_table(config)
    df = scores.merge(runs, on="run", how="left")
    full = df[df.method == "none"][["run", "task", "score"]].rename(columns={"score": "full_score"})
    df = df.merge(full, on=["run", "task"], how="left")
    df["retention"] = df["score"] / df["full_score"]
    df["dim_num"] = pd.to_numeric(df["dim"].replace("full", None), errors="coerce")
    df["config_hash"] = config_hash(config)
    df["git_commit"] = git_commit()
    df["mteb_version"] = package_versions()["mteb"]
    cols = ["model", "variant", "kind", "tau", "taus", "seed", "augmentation", "run", "method", "dim", "dim_num",
            "task", "task_type", "metric", "score", "full_score", "retention", "config_hash", "git_commit",
            "mteb_version"]
    return df[cols].sort_values(["model", "variant", "tau", "seed", "task", "method", "dim_num"]).reset_index(drop=True)


def id_table(config: dict[str, Any], id_csvs: list[str]) -> pd.DataFrame:
    """ID estimates joined with run metadata."""
    return _read_all(id_csvs).merge(run_table(config), on="run", how="left")


def variants_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count over seeds per (variant, tau, method, dim, task)."""
    keys = ["model", "variant", "tau", "method", "dim", "dim_num", "task", "metric"]
    agg = scores.groupby(keys, dropna=False).agg(
        score_mean=("score", "mean"), score_std=("score", "std"),
        retention_mean=("retention", "mean"), retention_std=("retention", "std"),
        n_seeds=("seed", "nunique"),
    )
    return agg.reset_index()


def write_table(df: pd.DataFrame, csv_path: str | Path) -> None:
    """CSV plus a parquet twin (same stem) for fast typed loading."""
    df.to_csv(csv_path, index=False)
    df.to_parquet(Path(csv_path).with_suffix(".parquet"), index=False)


def aggregate(config: dict[str, Any], score_csvs: list[str], id_csvs: list[str], loss_csvs: list[str],
              out: dict[str, str]) -> None:
    """Write scores, intrinsic_dim, variants and training_loss tables."""
    scores = scores_table(config, score_csvs)
    write_table(scores, out["scores"])
    write_table(id_table(config, id_csvs), out["intrinsic_dim"])
    write_table(variants_table(scores), out["variants"])
    write_table(_read_all(loss_csvs), out["training_loss"])
    if "config" in out:
        Path(out["config"]).write_text(yaml.safe_dump(config, sort_keys=False))
