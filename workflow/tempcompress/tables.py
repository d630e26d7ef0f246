"""Tidy tables: one row per measurement, the only hand-off between scoring and figures."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .config import expand_runs
from .provenance import config_hash, git_commit, package_versions

SCORE_KEYS = ["run", "method", "dim", "task"]


# Known class counts of local classification tasks (real MTEB tasks: mteb's descriptive stats).
LOCAL_N_CLASSES = {"BBCNewsClassification": 5}
# Main-score metrics whose chance level is ~0: rank / agreement measures of a random embedding.
ZERO_CHANCE_PREFIXES = ("cosine_spearman", "cosine_pearson", "spearman", "pearson", "v_measure", "ndcg", "map",
                        "mrr", "recall", "precision", "nmi", "ari")


@cache
def mteb_n_classes(task: str, task_type: str) -> int | None:
    """Number of labels of an MTEB task from the descriptive statistics mteb ships (no download)."""
    spec = importlib.util.find_spec("mteb")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "descriptive_stats" / task_type / f"{task}.json"
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())
    for split in ("test", "validation", "dev", *stats):
        labels = (stats.get(split) or {}).get("label_statistics") or {}
        if labels.get("unique_labels"):
            return int(labels["unique_labels"])
    return None


@cache
def mteb_retrieval_size(task: str) -> tuple[int, float] | None:
    """(documents, mean relevant documents per query) of an MTEB retrieval task from the descriptive
    statistics mteb ships (no download); None where they are missing."""
    spec = importlib.util.find_spec("mteb")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "descriptive_stats" / "Retrieval" / f"{task}.json"
    if not path.is_file():
        return None
    stats = json.loads(path.read_text())
    for split in ("test", "dev", "validation", *stats):
        s = stats.get(split) or {}
        rel = (s.get("relevant_docs_statistics") or {}).get("average_relevant_docs_per_query")
        if s.get("num_documents") and rel:
            return int(s["num_documents"]), float(rel)
    return None


def random_ranking_score(metric: str, n_docs: int, n_relevant: float = 1.0) -> float | None:
    """Expected score of a uniformly random ranking of ``n_docs`` documents, ``n_relevant`` of them
    relevant, for ndcg_at_k, recall_at_k, precision_at_k and mrr_at_k (one relevant document);
    None for other metrics.  nDCG@10 over 300 documents with one relevant: 0.0151."""
    m = re.fullmatch(r"(ndcg|recall|precision|mrr)_at_(\d+)", str(metric).lower())
    if m is None or n_docs < 1:
        return None
    kind, k = m.group(1), min(int(m.group(2)), n_docs)
    p_rel = min(1.0, n_relevant / n_docs)  # chance that a given rank holds a relevant document
    if kind == "ndcg":
        ideal = sum(1 / math.log2(r + 1) for r in range(1, min(math.ceil(n_relevant), k) + 1))
        return p_rel * sum(1 / math.log2(r + 1) for r in range(1, k + 1)) / ideal
    if kind == "recall":
        return min(1.0, k / n_docs)
    if kind == "precision":
        return p_rel
    return sum(1 / r for r in range(1, k + 1)) / n_docs


def chance_level(task: str, task_type: str, metric: str, n_docs: int | None = None) -> float:
    """Score of an uninformative embedding: 1/n_classes for accuracy / F1, the expected score of a
    random ranking for nDCG@k / recall@k / precision@k / MRR@k (``n_docs`` documents, else the
    corpus size mteb's statistics give; ~0 when neither is known), 0 for the other rank measures.

    Spearman / Pearson and v-measure are ~0 for random embeddings.  NaN (with a warning) where
    the class count of a classification task is unknown.
    """
    m = str(metric).lower()
    if task_type == "Retrieval":
        size = (n_docs, 1.0) if n_docs else mteb_retrieval_size(task)
        value = random_ranking_score(m, *size) if size else None
        if value is not None:
            return value
    if m.startswith(("accuracy", "f1", "macro_f1", "weighted_f1")):
        k = LOCAL_N_CLASSES.get(task) or mteb_n_classes(task, task_type)
        if not k:
            warnings.warn(f"chance level of {task} ({metric}) unknown: its chance-corrected retention is NaN "
                          "and left out of means over task types; add it to tables.LOCAL_N_CLASSES", stacklevel=2)
            return math.nan
        return 1.0 / k
    if m.startswith(ZERO_CHANCE_PREFIXES):
        return 0.0
    warnings.warn(f"chance level of metric '{metric}' ({task}) unknown: chance-corrected retention is NaN",
                  stacklevel=2)
    return math.nan


def chance_corrected(score: pd.Series, full: pd.Series, chance: pd.Series) -> pd.Series:
    """(score - chance) / (full - chance): 1 = as good as the float model, 0 = chance."""
    return (score - chance) / (full - chance)


def local_retrieval_sizes(config: dict[str, Any], tasks: set[str]) -> dict[str, int]:
    """Corpus size of each local retrieval task present (its evaluation sample of BBC articles)."""
    max_documents = (config.get("evaluation") or {}).get("max_documents")
    if "BBCHeadlineRetrieval" not in tasks or not max_documents:
        return {}
    from .data import bbc_sample

    return {"BBCHeadlineRetrieval": len(bbc_sample(int(max_documents), 0))}


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
    sizes = local_retrieval_sizes(config, set(df["task"]))
    df["chance"] = [chance_level(t, ty, m, sizes.get(t))
                    for t, ty, m in zip(df["task"], df["task_type"], df["metric"], strict=True)]
    df["retention_cc"] = chance_corrected(df["score"], df["full_score"], df["chance"])
    df["dim_num"] = pd.to_numeric(df["dim"].replace("full", None), errors="coerce")
    df["config_hash"] = config_hash(config)
    df["git_commit"] = git_commit()
    df["mteb_version"] = package_versions()["mteb"]
    cols = ["model", "variant", "kind", "tau", "taus", "seed", "augmentation", "run", "method", "dim", "dim_num",
            "task", "task_type", "metric", "score", "full_score", "retention", "chance", "retention_cc", "config_hash",
            "git_commit", "mteb_version"]
    cols += [c for c in df.columns if c not in cols]  # columns other stages add travel along
    return df[cols].sort_values(["model", "variant", "tau", "seed", "task", "method", "dim_num"]).reset_index(drop=True)


def id_table(config: dict[str, Any], id_csvs: list[str]) -> pd.DataFrame:
    """ID estimates joined with run metadata."""
    return _read_all(id_csvs).merge(run_table(config), on="run", how="left")


def loss_table(config: dict[str, Any], loss_csvs: list[str]) -> pd.DataFrame:
    """Training loss per step, with the run's model (and any run metadata the loss file lacks)."""
    loss = _read_all(loss_csvs)
    if loss.empty:
        return loss
    runs = run_table(config)
    extra = ["run", *[c for c in runs.columns if c not in loss.columns]]
    return loss.merge(runs[extra], on="run", how="left")


def variants_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (model, variant, tau, method, dim, task): mean, sd, 95% t-interval over seeds and n_seeds
    of the score and the retention, and the mean chance-corrected retention."""
    from .stats import mean_ci

    keys = ["model", "variant", "tau", "method", "dim", "dim_num", "task", "task_type", "metric"]
    rows = []
    for key, g in scores.groupby(keys, dropna=False, sort=True):
        sc, rt = mean_ci(g["score"]), mean_ci(g["retention"])
        rows.append({**dict(zip(keys, key, strict=True)),
                     "score_mean": sc.value, "score_std": g["score"].std(), "score_ci_lo": sc.lo, "score_ci_hi": sc.hi,
                     "retention_mean": rt.value, "retention_std": g["retention"].std(), "retention_ci_lo": rt.lo,
                     "retention_ci_hi": rt.hi, "retention_cc_mean": g["retention_cc"].mean(),
                     "n_seeds": g["seed"].nunique()})
    return pd.DataFrame(rows)


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
    write_table(loss_table(config, loss_csvs), out["training_loss"])
    if "config" in out:
        Path(out["config"]).write_text(yaml.safe_dump(config, sort_keys=False))


# ---- derived views shared by figures, summary and findings ----------------------------------

RUN_KEYS = ["model", "variant", "kind", "tau", "taus", "seed", "augmentation", "run", "method", "dim", "dim_num"]
METHOD_ORDER = ["truncation", "binarization", "int8", "int4", "float16", "bfloat16", "float8", "pca",
                "random_projection", "simproj", "hpd"]
LEARNED_OR_QUANT = ("binarization", "int8", "int4", "float16", "bfloat16", "float8")


def ordered_methods(methods: Any) -> list[str]:
    """Compression methods present (never 'none'), in a fixed reading order, unknown ones last."""
    present = [m for m in dict.fromkeys(methods) if m != "none"]
    return [m for m in METHOD_ORDER if m in present] + sorted(m for m in present if m not in METHOD_ORDER)


def per_run(scores: pd.DataFrame, value: str = "score") -> pd.DataFrame:
    """One row per (run, method, dim): ``value`` averaged over the tasks of each task type, then
    over task types (each type weighs the same, whatever its number of tasks)."""
    keys = [k for k in RUN_KEYS if k in scores.columns]
    by_type = scores.groupby([*keys, "task_type"], dropna=False)[value].mean().reset_index()
    return by_type.groupby(keys, dropna=False)[value].mean().reset_index()


def per_run_type(scores: pd.DataFrame, value: str = "score") -> pd.DataFrame:
    """One row per (run, method, dim, task_type): ``value`` averaged over the tasks of that type."""
    keys = [k for k in RUN_KEYS if k in scores.columns]
    return scores.groupby([*keys, "task_type"], dropna=False)[value].mean().reset_index()


def headline_ids(ids: pd.DataFrame) -> pd.DataFrame:
    """The ID rows headline figures and claims use: the evaluation-text sample when the table
    has a ``sample`` column with 'eval' rows, else every row."""
    if "sample" in ids.columns and (ids["sample"] == "eval").any():
        return ids[ids["sample"] == "eval"]
    return ids


def id_samples(ids: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(sample name, rows) for each ID sample of the table ('all' when there is no sample column)."""
    if "sample" not in ids.columns:
        return [("all", ids)]
    return [(str(s), g) for s, g in ids.groupby("sample", sort=True)]


def core_variant(df: pd.DataFrame, augmentation: str = "crop") -> str | None:
    """The temperature-sweep variant: the 'infonce' variant with this augmentation, preferring the one
    named like the augmentation, then the one with the most runs."""
    d = df[(df["kind"] == "infonce") & (df["augmentation"] == augmentation)]
    if d.empty:
        return None
    if augmentation in set(d["variant"]):
        return augmentation
    return str(d.groupby("variant")["run"].nunique().sort_values(ascending=False).index[0])


def tau_float(tau: Any) -> float:
    """Numeric temperature of a tau label; NaN for 'multi' / 'none'."""
    try:
        return float(tau)
    except (TypeError, ValueError):
        return math.nan
