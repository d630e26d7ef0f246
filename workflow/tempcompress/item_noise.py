"""Item-level uncertainty: bootstrap over test items, recomputed from cached embeddings.

The seed intervals say how a number moves with another training seed on the same test set;
these say how it moves with another draw of test items from the same source.  Both local tasks
with few items are covered, recomputed from the cached embedding matrices (no re-encoding):

- LeeSTS: Spearman ρ between cosine similarity and the human rating over the 1,225 pairs of
  50 documents.  The pairs share documents, so the bootstrap resamples *documents* (50 with
  replacement) and scores every pair of two distinct drawn documents.
- BBCHeadlineRetrieval: nDCG@10 with one relevant article per headline query, ranking the
  sampled articles by cosine; the bootstrap resamples *queries*.

95% percentile intervals from ``n_boot`` fixed-seed resamples.  Real MTEB tasks are not covered.
Every run draws the same resamples (one fixed seed for all), so replicate k of two runs scores
the same documents / queries: the replicates (``item_noise_reps.parquet``) are paired across
runs, which is what the hierarchical bootstrap of the findings needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ITEM_TASKS = ("LeeSTS", "BBCHeadlineRetrieval")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def _rank(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    from scipy.stats import rankdata

    return rankdata(a, axis=-1)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = _rank(x), _rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def sts_bootstrap(emb: np.ndarray, pairs: list[tuple[int, int, float]], n_boot: int = 1000,
                  seed: int = 0) -> tuple[float, np.ndarray]:
    """Spearman(cosine, gold) over all pairs, and its document-bootstrap replicates."""
    e = _unit(emb)
    n_docs = e.shape[0]
    sim = e @ e.T
    gold = np.full((n_docs, n_docs), np.nan)
    for i, j, g in pairs:
        gold[i, j] = gold[j, i] = g
    iu = np.array([(i, j) for i, j, _ in pairs])
    full = _spearman(sim[iu[:, 0], iu[:, 1]], gold[iu[:, 0], iu[:, 1]])
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    a, b = np.triu_indices(n_docs, k=1)
    for k in range(n_boot):
        draw = rng.integers(0, n_docs, n_docs)
        i, j = draw[a], draw[b]
        keep = (i != j) & ~np.isnan(gold[i, j])
        reps[k] = _spearman(sim[i[keep], j[keep]], gold[i[keep], j[keep]])
    return full, reps


def retrieval_bootstrap(queries: np.ndarray, docs: np.ndarray, n_boot: int = 1000,
                        seed: int = 0) -> tuple[float, np.ndarray]:
    """nDCG@10 with query i's relevant document = document i, and its query-bootstrap replicates."""
    s = _unit(queries) @ _unit(docs).T
    true = np.diag(s)
    rank = 1 + (s > true[:, None]).sum(axis=1)
    gain = np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0)
    rng = np.random.default_rng(seed)
    reps = gain[rng.integers(0, len(gain), (n_boot, len(gain)))].mean(axis=1)
    return float(gain.mean()), reps


def _matrices(emb_dir: Path, variants: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The full-size matrix and its truncations (the first d columns of eval.npy: no stored codes needed)."""
    from .artifacts import load_matrix

    full = load_matrix(emb_dir / "eval.npy", mmap=True)
    out = {}
    for method, dim in variants:
        if method not in ("none", "truncation"):
            raise ValueError(f"item-level bootstrap covers full size and truncation, not '{method}'")
        out[(method, dim)] = full if method == "none" else full[:, : int(dim)]
    return out


def item_noise(config: dict[str, Any], runs: list[str], emb_root: str, out_csv: str,
               n_boot: int = 1000, out_reps: str | None = None) -> pd.DataFrame:
    """Per run, task and (method, dim) among full size and truncation to the smallest dim: the score
    recomputed from cached embeddings with its 95% item-bootstrap interval; with ``out_reps``, every
    replicate score too (columns run, task, method, dim, rep, score; paired across runs)."""
    from .data import bbc_sample, lee_documents, lee_similarity_pairs
    from .stages import read_texts

    ev = config["evaluation"]
    tasks = [t for t in ITEM_TASKS if t in ev["tasks"]]
    dims = [str(d) for d in config["compression"]["dims"]]
    variants = [("none", "full")]
    if "truncation" in config["compression"]["methods"] and dims:
        variants.append(("truncation", str(min(int(d) for d in dims))))
    rows, reps_all = [], []
    lee_docs, lee_pairs = (lee_documents(), lee_similarity_pairs()) if "LeeSTS" in tasks else ((), [])
    arts = bbc_sample(ev["max_documents"], 0) if "BBCHeadlineRetrieval" in tasks else []
    for run in runs:
        emb_dir = Path(emb_root) / run
        index = {t: i for i, t in enumerate(read_texts(emb_dir / "eval_texts.parquet"))}
        for (method, dim), m in _matrices(emb_dir, variants).items():
            for task in tasks:
                if task == "LeeSTS":
                    score, reps = sts_bootstrap(m[[index[d] for d in lee_docs]], lee_pairs, n_boot)
                    n_items, unit = len(lee_docs), "documents"
                else:
                    q = m[[index[a.headline] for a in arts]]
                    d = m[[index[a.body] for a in arts]]
                    score, reps = retrieval_bootstrap(q, d, n_boot)
                    n_items, unit = len(arts), "queries"
                lo, hi = np.nanpercentile(reps, [2.5, 97.5])
                rows.append({"run": run, "task": task, "method": method, "dim": dim, "score_items": score,
                             "item_ci_lo": float(lo), "item_ci_hi": float(hi), "n_items": n_items,
                             "item_unit": unit, "n_boot": n_boot})
                reps_all.append(pd.DataFrame({"run": run, "task": task, "method": method, "dim": dim,
                                              "rep": np.arange(len(reps)), "score": reps}))
    df = pd.DataFrame(rows, columns=["run", "task", "method", "dim", "score_items", "item_ci_lo", "item_ci_hi",
                                     "n_items", "item_unit", "n_boot"])
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_csv, index=False)
    if out_reps:
        cols = ["run", "task", "method", "dim", "rep", "score"]
        reps_df = pd.concat(reps_all, ignore_index=True) if reps_all else pd.DataFrame(columns=cols)
        reps_df.to_parquet(out_reps, index=False)
    return df


def compare_noise(items: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Per (model, variant, tau, task, method, dim): the 95% half-width over seeds (from scores) next to
    the mean 95% half-width over test items (from the bootstrap)."""
    from .stats import mean_ci

    if items.empty:
        return pd.DataFrame()
    meta = scores[["run", "model", "variant", "tau", "seed"]].drop_duplicates()
    it = items.merge(meta, on="run")
    it["item_half"] = (it["item_ci_hi"] - it["item_ci_lo"]) / 2
    s = scores[scores["task"].isin(set(items["task"]))]
    rows = []
    for key, g in it.groupby(["model", "variant", "tau", "task", "method", "dim"]):
        model, variant, tau, task, method, dim = key
        sc = s[(s.model == model) & (s.variant == variant) & (s.tau == tau) & (s.task == task)
               & (s.method == method) & (s.dim.astype(str) == str(dim))]
        est = mean_ci(sc["score"])
        rows.append({"model": model, "variant": variant, "tau": tau, "task": task, "method": method, "dim": dim,
                     "score": est.value, "seed_half_width": (est.hi - est.lo) / 2, "n_seeds": est.n,
                     "item_half_width": g["item_half"].mean(), "n_items": int(g["n_items"].iloc[0]),
                     "item_unit": g["item_unit"].iloc[0]})
    return pd.DataFrame(rows)
