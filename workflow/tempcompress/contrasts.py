"""Per-run values with their evaluation-item replicates, and paired contrasts over seeds.

A run's value (score, chance-corrected retention, or the full/compressed trade-off) is a mean
over the tasks of each task type, then over task types.  For the tasks whose items were
bootstrapped (``item_noise``: LeeSTS documents, BBC headline queries), every item replicate
gives the run another value; replicate r is the same item draw for every run, so a contrast
of two runs within replicate r is paired in the items as well as in the seed.  Tasks without
item replicates keep their observed score in every replicate (seed noise only).

``run_matrix`` returns the runs' metadata and a matrix M of shape (1 + replicates, runs): row 0
holds the observed values, row r the values on item replicate r (observed score plus the
replicate's deviation from the replicates' mean, so every row is centred on the observation).
``paired_by_seed`` turns two selections of runs into per-seed contrasts of shape
(1 + replicates, seeds), the input of ``stats.hierarchical_contrast``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

META = ["run", "model", "variant", "kind", "tau", "seed", "augmentation"]
VALUES = ("score", "retention_cc", "full", "tradeoff")


def item_deviations(reps: pd.DataFrame | None, max_reps: int = 500) -> dict[tuple, np.ndarray]:
    """{(run, task, method, dim): replicate score minus the replicates' mean} for the first
    ``max_reps`` replicates (the same replicate indices for every key)."""
    if reps is None or reps.empty:
        return {}
    r = reps[reps["rep"] < max_reps].sort_values("rep")
    out = {}
    for key, g in r.groupby(["run", "task", "method", "dim"], sort=False):
        v = g["score"].to_numpy(float)
        out[tuple(str(k) for k in key)] = v - np.nanmean(v)
    n = min((len(v) for v in out.values()), default=0)
    return {k: v[:n] for k, v in out.items()}


def pick_dim(scores: pd.DataFrame, method: str, dim: str = "smallest") -> pd.DataFrame:
    """Rows of one method at one dim per model: 'smallest' / 'largest' numeric dim, or a label."""
    d = scores[scores["method"] == method]
    if method == "none" or d.empty:
        return d
    if dim in ("smallest", "largest"):
        agg = "min" if dim == "smallest" else "max"
        return d[d["dim_num"] == d.groupby("model")["dim_num"].transform(agg)]
    return d[d["dim"].astype(str) == str(dim)]


def run_matrix(scores: pd.DataFrame, deviations: dict[tuple, np.ndarray], method: str, value: str,
               dim: str = "smallest", tasks: set[str] | None = None,
               exclude_tasks: set[str] | frozenset[str] = frozenset()) -> tuple[pd.DataFrame, np.ndarray]:
    """(run metadata, M): M[0] observed values, M[r] the values on item replicate r (see module doc).

    ``value``: 'score' (the method's score), 'retention_cc' ((score - chance) / (full - chance)),
    'full' (the full-size score) or 'tradeoff' ((full + score) / 2).
    """
    if value not in VALUES:
        raise ValueError(f"value must be one of {VALUES}")
    sel = pick_dim(scores, "none" if value == "full" else method, dim)
    full = scores[scores["method"] == "none"]
    if tasks is not None:
        sel, full = sel[sel["task"].isin(tasks)], full[full["task"].isin(tasks)]
    sel, full = sel[~sel["task"].isin(exclude_tasks)], full[~full["task"].isin(exclude_tasks)]
    n_rep = len(next(iter(deviations.values()))) if deviations else 0
    full_idx = {(r, t): (s, str(d)) for r, t, s, d in zip(full["run"], full["task"], full["score"], full["dim"],
                                                             strict=True)}
    runs, columns = [], []
    for run, g in sel.groupby("run", sort=True):
        by_type: dict[str, list[np.ndarray]] = {}
        for row in g.itertuples(index=False):
            s = row.score + _dev(deviations, run, row.task, row.method, row.dim, n_rep)
            f_obs, f_dim = full_idx.get((run, row.task), (np.nan, "full"))
            f = f_obs + _dev(deviations, run, row.task, "none", f_dim, n_rep)
            if value in ("score", "full"):
                v = s
            elif value == "retention_cc":
                v = (s - row.chance) / (f - row.chance)
            else:
                v = (f + s) / 2
            by_type.setdefault(row.task_type, []).append(v)
        types = [np.nanmean(np.vstack(vs), axis=0) for vs in by_type.values()]
        runs.append(g.iloc[0])
        columns.append(np.nanmean(np.vstack(types), axis=0))
    meta = pd.DataFrame(runs, columns=scores.columns)[[c for c in META if c in scores.columns]]
    meta = meta.reset_index(drop=True)
    m = np.column_stack(columns) if columns else np.zeros((1 + n_rep, 0))
    return meta, m


def _dev(deviations: dict[tuple, np.ndarray], run: str, task: str, method: str, dim: object, n_rep: int) -> np.ndarray:
    """[0, replicate deviations...] of one (run, task, method, dim); zeros without item data."""
    d = deviations.get((str(run), str(task), str(method), str(dim)))
    return np.concatenate([[0.0], d]) if d is not None else np.zeros(1 + n_rep)


def paired_by_seed(meta: pd.DataFrame, m: np.ndarray, a: pd.Series, b: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Per-seed contrast mean(M[:, a runs of the seed]) - mean(M[:, b runs of the seed]) over the
    seeds both selections have (several runs of one seed, e.g. one per τ, are averaged first)."""
    seeds = sorted(set(meta.loc[a, "seed"]) & set(meta.loc[b, "seed"]), key=str)
    cols = []
    for s in seeds:
        ia = np.flatnonzero((a & (meta["seed"] == s)).to_numpy())
        ib = np.flatnonzero((b & (meta["seed"] == s)).to_numpy())
        cols.append(m[:, ia].mean(axis=1) - m[:, ib].mean(axis=1))
    return (np.column_stack(cols) if cols else np.zeros((m.shape[0], 0))), seeds


def by_seed(meta: pd.DataFrame, m: np.ndarray, sel: pd.Series) -> pd.Series:
    """Observed values (row 0) of the selected runs, averaged per seed."""
    d = pd.DataFrame({"seed": meta.loc[sel, "seed"].to_numpy(), "v": m[0, sel.to_numpy()]})
    return d.groupby("seed")["v"].mean()
