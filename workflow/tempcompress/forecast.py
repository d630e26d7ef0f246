"""Intrinsic dimension as a compression forecast: does retention depend mainly on d / ID?

For truncation and binarization, every run gives points (d, retention at d), retention
being the mean over tasks of score / full-size score.  A monotone logistic curve in
x = log(d / ID),

    retention(x) = 1 / (1 + exp(-(a + b x))),   b >= 0,

is fitted by least squares on all runs but one and predicts the held-out run
(leave-one-run-out), and likewise on all temperatures but one (leave-one-tau-out; the base
model and the aggregation variants form the groups 'none' and 'multi').  The same
predictor with x = log(d) (no ID: estimator ``d-only``) is the baseline: ID adds
predictive power only if its error is lower.  Each ID estimator is used in turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORECAST_METHODS: tuple[str, ...] = ("truncation", "binarization")
THRESHOLDS: tuple[float, ...] = (0.95, 0.90)
NO_ID = "d-only"
SCHEMES = {"leave-one-run-out": "run", "leave-one-tau-out": "tau"}
_CLIP = (0.02, 0.98)


# ---- data --------------------------------------------------------------------------------


def retention_points(scores: pd.DataFrame, methods: tuple[str, ...] = FORECAST_METHODS) -> pd.DataFrame:
    """One row per (run, method, d): mean retention over tasks at every numeric target dim."""
    d = scores[scores["method"].isin(methods) & scores["dim_num"].notna()]
    keys = ["run", "model", "variant", "tau", "seed", "method", "dim_num"]
    out = d.groupby(keys, dropna=False)["retention"].mean().reset_index()
    return out.rename(columns={"dim_num": "d"}).astype({"d": float})


def id_per_run(ids: pd.DataFrame) -> pd.DataFrame:
    """(run, estimator, id); where the table has a ``sample`` column, the ``eval`` sample is used
    for every (run, estimator) that has one, else the estimate on the sample that exists."""
    d = ids.copy()
    if "sample" in d:
        d["_rank"] = (d["sample"] != "eval").astype(int)
        d = d.sort_values("_rank", kind="mergesort").drop_duplicates(["run", "estimator"], keep="first")
    return d[["run", "estimator", "id"]].reset_index(drop=True)


def with_feature(points: pd.DataFrame, ids: pd.DataFrame, estimator: str) -> pd.DataFrame:
    """Points with the predictor's input x: log(d / ID) for an estimator, log(d) for ``d-only``."""
    if estimator == NO_ID:
        out = points.copy()
        out["id"] = np.nan
        out["x"] = np.log(out["d"])
        return out
    est = ids[ids["estimator"] == estimator][["run", "id"]]
    out = points.merge(est, on="run", how="inner")
    out["x"] = np.log(out["d"] / out["id"])
    return out


# ---- the predictor -----------------------------------------------------------------------


def logistic(x: np.ndarray, a: float, b: float) -> np.ndarray:
    """1 / (1 + exp(-(a + b x)))."""
    return 1.0 / (1.0 + np.exp(-(a + b * np.asarray(x, dtype=float))))


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Least-squares (a, b >= 0) of the logistic curve; None if x has fewer than 2 distinct values."""
    from scipy.optimize import least_squares

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(np.unique(x)) < 2:
        return None
    z = np.log(np.clip(y, *_CLIP) / (1 - np.clip(y, *_CLIP)))
    b0, a0 = np.polyfit(x, z, 1)
    b0 = max(float(b0), 1e-3)
    res = least_squares(lambda p: logistic(x, p[0], p[1]) - y, x0=[float(a0), b0],
                        bounds=([-np.inf, 0.0], [np.inf, np.inf]), xtol=1e-12, ftol=1e-12, gtol=1e-12)
    return float(res.x[0]), float(res.x[1])


def held_out_predictions(df: pd.DataFrame, group: str) -> pd.DataFrame:
    """Each group's points predicted by the curve fitted on all other groups (columns a, b, pred)."""
    out = []
    for _, g in df.groupby(group, sort=False):
        rest = df.drop(index=g.index)
        params = fit_logistic(rest["x"].to_numpy(), rest["retention"].to_numpy())
        g = g.copy()
        g["a"], g["b"] = params if params else (np.nan, np.nan)
        g["pred"] = logistic(g["x"], *params) if params else np.nan
        out.append(g)
    return pd.concat(out) if out else df.assign(a=np.nan, b=np.nan, pred=np.nan)


def inverse_d(a: float, b: float, threshold: float, id_value: float) -> float:
    """The d at which the curve reaches ``threshold`` (ID = nan for the d-only predictor)."""
    if not (np.isfinite(a) and np.isfinite(b)) or b <= 0:
        return np.nan
    x = (np.log(threshold / (1 - threshold)) - a) / b
    return float(np.exp(x) * (id_value if np.isfinite(id_value) else 1.0))


def smallest_dim(d: pd.Series, retention: pd.Series, threshold: float) -> float:
    """The smallest scored d whose retention is >= threshold (nan: none is, i.e. above the grid)."""
    ok = d[retention.to_numpy() >= threshold]
    return float(ok.min()) if len(ok) else np.nan


# ---- the tables ------------------------------------------------------------------------------


def forecast_tables(scores: pd.DataFrame, ids: pd.DataFrame,
                    methods: tuple[str, ...] = FORECAST_METHODS,
                    thresholds: tuple[float, ...] = THRESHOLDS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(MAE per method x estimator x scheme, predicted vs measured smallest d per run).

    The MAE table also has the in-sample fit (scheme ``fit on all runs``: a, b and its MAE).
    """
    points = retention_points(scores, methods)
    run_ids = id_per_run(ids)
    estimators = [NO_ID, *dict.fromkeys(run_ids["estimator"])]
    mae_rows, dim_rows = [], []
    for method in [m for m in methods if m in set(points["method"])]:
        pts = points[points["method"] == method]
        for est in estimators:
            df = with_feature(pts, run_ids, est).reset_index(drop=True)
            base = {"method": method, "estimator": est, "uses_id": est != NO_ID, "n_points": len(df),
                    "n_runs": df["run"].nunique()}
            params = fit_logistic(df["x"].to_numpy(), df["retention"].to_numpy())
            a, b = params if params else (np.nan, np.nan)
            fitted = logistic(df["x"], a, b)
            mae_rows.append({**base, "scheme": "fit on all runs", "n_groups": 1, "a": a, "b": b,
                             "mae": float(np.mean(np.abs(fitted - df["retention"]))) if params else np.nan})
            loro = None
            for scheme, group in SCHEMES.items():
                pred = held_out_predictions(df, group)
                err = (pred["pred"] - pred["retention"]).abs()
                mae_rows.append({**base, "scheme": scheme, "n_groups": df[group].nunique(), "a": np.nan, "b": np.nan,
                                 "mae": float(err.mean()) if err.notna().any() else np.nan,
                                 "n_predicted": int(err.notna().sum())})
                if group == "run":
                    loro = pred
            for run, g in (loro.groupby("run", sort=False) if loro is not None else []):
                g = g.sort_values("d")
                for thr in thresholds:
                    dim_rows.append({
                        "run": run, "model": g["model"].iloc[0], "variant": g["variant"].iloc[0],
                        "tau": g["tau"].iloc[0], "seed": g["seed"].iloc[0], "method": method, "estimator": est,
                        "threshold": thr, "id": g["id"].iloc[0],
                        "measured_dim": smallest_dim(g["d"], g["retention"], thr),
                        "predicted_dim": inverse_d(g["a"].iloc[0], g["b"].iloc[0], thr, g["id"].iloc[0]),
                        "predicted_grid_dim": smallest_dim(g["d"], g["pred"], thr),
                        "largest_scored_dim": float(g["d"].max()),
                    })
    mae = pd.DataFrame(mae_rows)
    dims = pd.DataFrame(dim_rows)
    if len(dims):
        same = (dims["measured_dim"] == dims["predicted_grid_dim"]) | (
            dims["measured_dim"].isna() & dims["predicted_grid_dim"].isna())
        dims["grid_match"] = same
    return mae, dims


def best_estimator(mae: pd.DataFrame, method: str, scheme: str = "leave-one-run-out") -> tuple[str, float, float]:
    """(best ID estimator, its MAE, the d-only MAE) for one method and scheme."""
    d = mae[(mae["method"] == method) & (mae["scheme"] == scheme)]
    with_id = d[d["uses_id"]].dropna(subset=["mae"])
    no_id = d[~d["uses_id"]]["mae"]
    if with_id.empty:
        return "", np.nan, float(no_id.iloc[0]) if len(no_id) else np.nan
    best = with_id.loc[with_id["mae"].idxmin()]
    return str(best["estimator"]), float(best["mae"]), float(no_id.iloc[0]) if len(no_id) else np.nan


def summary_lines(tables: dict[str, str]) -> list[str]:
    """Markdown lines for summary.md: MAE with and without ID, and the smallest-d forecast."""
    from .summary import _fmt

    mae = pd.read_parquet(Path(tables["forecast"]).with_suffix(".parquet"))
    dims = pd.read_parquet(Path(tables["forecast_dims"]).with_suffix(".parquet"))
    if mae.empty:
        return ["## Intrinsic dimension as a compression forecast", "No truncation / binarization points.", ""]
    cv = mae[mae["scheme"] != "fit on all runs"]
    table = cv.pivot_table(index=["method", "scheme"], columns="estimator", values="mae").reset_index()
    table.columns.name = None
    parts = ["## Intrinsic dimension as a compression forecast (results/tables/forecast.csv)",
             "Mean absolute error of held-out retention predicted by a logistic curve in log(d/ID) (one column "
             f"per ID estimator) or in log(d) alone ('{NO_ID}').", "", _fmt(table), ""]
    for method in dict.fromkeys(cv["method"]):
        for scheme in SCHEMES:
            est, err, base = best_estimator(mae, method, scheme)
            if est:
                verdict = "adds" if err < base else "does not add"
                parts.append(f"- {method}, {scheme}: best estimator {est} (MAE {err:.3f}) vs d only "
                             f"(MAE {base:.3f}): ID {verdict} predictive power here.")
    if len(dims):
        acc = dims.groupby(["method", "estimator", "threshold"])["grid_match"].agg(["mean", "size"]).reset_index()
        acc = acc.rename(columns={"mean": "share_matched", "size": "runs"})
        parts += ["", "Smallest scored d with retention >= threshold, predicted (leave-one-run-out) = measured "
                  "(results/tables/forecast_dims.csv):", "", _fmt(acc)]
    return [*parts, ""]


def fitted_curve(mae: pd.DataFrame, method: str, estimator: str) -> dict[str, Any] | None:
    """The all-runs fit (a, b) of one method and estimator, or None."""
    d = mae[(mae["method"] == method) & (mae["estimator"] == estimator) & (mae["scheme"] == "fit on all runs")]
    if d.empty or not np.isfinite(d["a"].iloc[0]):
        return None
    return {"a": float(d["a"].iloc[0]), "b": float(d["b"].iloc[0])}
