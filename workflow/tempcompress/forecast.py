"""Intrinsic dimension as a compression forecast: does retention depend mainly on d / ID?

For truncation and binarization, every run gives points (d, retention at d), retention
being the mean over tasks of score / full-size score.  A monotone logistic curve in
x = log(d / ID),

    retention(x) = 1 / (1 + exp(-(a + b x))),   b >= 0,

is fitted by least squares on all temperatures but one and predicts the held-out one
(leave-one-tau-out, the headline: a new τ is what a forecast is for; the base model and the
aggregation variants form the groups 'none' and 'multi'), and likewise on all runs but one
(leave-one-run-out).  Two baselines use no ID: x = log(d) alone (``d-only``, which cannot tell
runs apart) and the fair one, ``d+τ``: retention = logistic(a + b log d + c log τ), since τ is
known before training (an aggregation run's τ is the geometric mean of its temperatures; the
base model has none and is not predicted by it).  Every estimator is reported, each MAE with
a 95% bootstrap interval over held-out runs, and each ID estimator's error minus the d+τ
error on the runs both predict (paired over runs, bootstrap interval): ID adds to what τ
already says only if that difference lies below zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORECAST_METHODS: tuple[str, ...] = ("truncation", "binarization")
THRESHOLDS: tuple[float, ...] = (0.95, 0.90)
NO_ID = "d-only"
D_TAU = "d+τ"
SCHEMES = {"leave-one-tau-out": "tau", "leave-one-run-out": "run"}
N_BOOT = 2000
_CLIP = (0.02, 0.98)


# ---- data --------------------------------------------------------------------------------


def retention_points(scores: pd.DataFrame, methods: tuple[str, ...] = FORECAST_METHODS) -> pd.DataFrame:
    """One row per (run, method, d): mean retention over tasks at every numeric target dim."""
    d = scores[scores["method"].isin(methods) & scores["dim_num"].notna()]
    keys = ["run", "model", "variant", "tau", "seed", "method", "dim_num"]
    if "taus" in d.columns:
        keys.insert(4, "taus")
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


def log_tau(tau: object, taus: object = "") -> float:
    """log τ of a run: its τ, or the mean log of an aggregation's temperatures; NaN for none."""
    try:
        return float(np.log(float(tau)))
    except (TypeError, ValueError):
        parts = [t for t in str(taus or "").split(",") if t]
        return float(np.mean(np.log([float(t) for t in parts]))) if parts else np.nan


def with_feature(points: pd.DataFrame, ids: pd.DataFrame, estimator: str) -> pd.DataFrame:
    """Points with the predictor's input x: log(d / ID) for an estimator, log(d) for ``d-only`` and
    ``d+τ`` (which also has z = log τ; runs without a τ are dropped)."""
    if estimator in (NO_ID, D_TAU):
        out = points.copy()
        out["id"] = np.nan
        out["x"] = np.log(out["d"])
        if estimator == D_TAU:
            taus = out["taus"] if "taus" in out else pd.Series("", index=out.index)
            out["z"] = [log_tau(t, ts) for t, ts in zip(out["tau"], taus, strict=True)]
            out = out[np.isfinite(out["z"])]
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


def fit_logistic_tau(x: np.ndarray, z: np.ndarray, y: np.ndarray) -> tuple[float, float, float] | None:
    """Least-squares (a, b >= 0, c) of logistic(a + b x + c z); with one distinct z, c = 0."""
    from scipy.optimize import least_squares

    x, z, y = (np.asarray(v, dtype=float) for v in (x, z, y))
    ok = np.isfinite(x) & np.isfinite(z) & np.isfinite(y)
    x, z, y = x[ok], z[ok], y[ok]
    if len(np.unique(x)) < 2:
        return None
    if len(np.unique(z)) < 2:
        ab = fit_logistic(x, y)
        return None if ab is None else (*ab, 0.0)
    t = np.log(np.clip(y, *_CLIP) / (1 - np.clip(y, *_CLIP)))
    p0, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(x), x, z]), t, rcond=None)
    p0[1] = max(float(p0[1]), 1e-3)
    res = least_squares(lambda p: 1 / (1 + np.exp(-(p[0] + p[1] * x + p[2] * z))) - y, x0=p0,
                        bounds=([-np.inf, 0.0, -np.inf], [np.inf, np.inf, np.inf]), xtol=1e-12, ftol=1e-12,
                        gtol=1e-12)
    return float(res.x[0]), float(res.x[1]), float(res.x[2])


def held_out_predictions(df: pd.DataFrame, group: str) -> pd.DataFrame:
    """Each group's points predicted by the curve fitted on all other groups (columns a, b, pred)."""
    out = []
    for _, g in df.groupby(group, sort=False):
        rest = df.drop(index=g.index)
        g = g.copy()
        if "z" in df.columns:  # the d+τ baseline
            p3 = fit_logistic_tau(rest["x"].to_numpy(), rest["z"].to_numpy(), rest["retention"].to_numpy())
            g["a"], g["b"] = (p3[0], p3[1]) if p3 else (np.nan, np.nan)
            g["pred"] = 1 / (1 + np.exp(-(p3[0] + p3[1] * g["x"] + p3[2] * g["z"]))) if p3 else np.nan
            out.append(g)
            continue
        params = fit_logistic(rest["x"].to_numpy(), rest["retention"].to_numpy())
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
    estimators = [NO_ID, D_TAU, *dict.fromkeys(run_ids["estimator"])]
    run_errors: dict[tuple[str, str, str], pd.Series] = {}
    mae_rows, dim_rows = [], []
    for method in [m for m in methods if m in set(points["method"])]:
        pts = points[points["method"] == method]
        for est in estimators:
            df = with_feature(pts, run_ids, est).reset_index(drop=True)
            base = {"method": method, "estimator": est, "uses_id": est != NO_ID, "n_points": len(df),
                    "n_runs": df["run"].nunique()}
            if est == D_TAU:
                p3 = fit_logistic_tau(df["x"].to_numpy(), df["z"].to_numpy(), df["retention"].to_numpy())
                params = p3[:2] if p3 else None
                fitted = 1 / (1 + np.exp(-(p3[0] + p3[1] * df["x"] + p3[2] * df["z"]))) if p3 else np.nan
            else:
                params = fit_logistic(df["x"].to_numpy(), df["retention"].to_numpy())
                fitted = logistic(df["x"], *params) if params else np.nan
            a, b = params if params else (np.nan, np.nan)
            mae_rows.append({**base, "scheme": "fit on all runs", "n_groups": 1, "a": a, "b": b,
                             "mae": float(np.mean(np.abs(fitted - df["retention"]))) if params else np.nan})
            loro = None
            for scheme, group in SCHEMES.items():
                pred = held_out_predictions(df, group)
                err = (pred["pred"] - pred["retention"]).abs()
                per_run = err.groupby(pred["run"]).mean().dropna()
                run_errors[(method, est, scheme)] = per_run
                lo, hi = mean_interval(per_run.to_numpy())
                mae_rows.append({**base, "scheme": scheme, "n_groups": df[group].nunique(), "a": np.nan, "b": np.nan,
                                 "mae": float(err.mean()) if err.notna().any() else np.nan, "mae_lo": lo,
                                 "mae_hi": hi, "n_predicted": int(err.notna().sum()),
                                 "n_runs_predicted": len(per_run)})
                if group == "run":
                    loro = pred
            if est == D_TAU:
                continue  # its curve has a τ term: no smallest-d forecast in log(d / ID)
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
    if len(mae):
        mae = _versus_d_tau(mae, run_errors)
    dims = pd.DataFrame(dim_rows)
    if len(dims):
        same = (dims["measured_dim"] == dims["predicted_grid_dim"]) | (
            dims["measured_dim"].isna() & dims["predicted_grid_dim"].isna())
        dims["grid_match"] = same
    return mae, dims


def mean_interval(values: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of a mean (NaN, NaN with fewer than 2 distinct values)."""
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.ptp(v) == 0:
        return np.nan, np.nan
    res = bootstrap((v,), np.mean, n_resamples=n_boot, method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _versus_d_tau(mae: pd.DataFrame, run_errors: dict[tuple[str, str, str], pd.Series]) -> pd.DataFrame:
    """Each held-out row's mean per-run error minus the d+τ baseline's, on the runs both predict,
    with a 95% bootstrap interval over those runs (< 0: the estimator beats τ)."""
    mae = mae.copy()
    for col in ("minus_d_tau", "minus_d_tau_lo", "minus_d_tau_hi", "n_runs_vs_d_tau"):
        mae[col] = np.nan
    for i, r in mae.iterrows():
        if r["scheme"] not in SCHEMES or r["estimator"] == D_TAU:
            continue
        own, ref = run_errors.get((r["method"], r["estimator"], r["scheme"])), \
            run_errors.get((r["method"], D_TAU, r["scheme"]))
        if own is None or ref is None:
            continue
        shared = own.index.intersection(ref.index)
        diff = (own[shared] - ref[shared]).to_numpy()
        if len(diff):
            lo, hi = mean_interval(diff)
            mae.loc[i, ["minus_d_tau", "minus_d_tau_lo", "minus_d_tau_hi", "n_runs_vs_d_tau"]] = \
                [float(diff.mean()), lo, hi, len(diff)]
    return mae


def summary_lines(tables: dict[str, str]) -> list[str]:
    """Markdown lines for summary.md: every estimator's held-out MAE with its interval (leave-one-τ-out
    first), its difference to the d+τ baseline, and the smallest-d forecast."""
    from .summary import _fmt

    mae = pd.read_parquet(Path(tables["forecast"]).with_suffix(".parquet"))
    dims = pd.read_parquet(Path(tables["forecast_dims"]).with_suffix(".parquet"))
    if mae.empty:
        return ["## Intrinsic dimension as a compression forecast", "No truncation / binarization points.", ""]
    cv = mae[mae["scheme"] != "fit on all runs"].copy()
    cv["_s"] = cv["scheme"].map(list(SCHEMES).index)
    cv = cv.sort_values(["_s", "method"], kind="mergesort")

    def cell(v: float, lo: float, hi: float) -> str:
        if not np.isfinite(v):
            return "–"
        return f"{v:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "")

    cv["MAE [95% CI]"] = [cell(*v) for v in zip(cv["mae"], cv.get("mae_lo", np.nan), cv.get("mae_hi", np.nan),
                                                 strict=True)]
    cv["minus d+τ [95% CI]"] = [cell(*v) for v in zip(cv.get("minus_d_tau", np.nan), cv.get("minus_d_tau_lo", np.nan),
                                                      cv.get("minus_d_tau_hi", np.nan), strict=True)]
    runs = cv["n_runs_predicted"] if "n_runs_predicted" in cv else pd.Series(np.nan, index=cv.index)
    cv["runs"] = runs.map(lambda v: "" if not np.isfinite(v) else str(int(v)))
    table = cv[["scheme", "method", "estimator", "MAE [95% CI]", "minus d+τ [95% CI]", "runs"]]
    parts = ["## Intrinsic dimension as a compression forecast (results/tables/forecast.csv)",
             "Mean absolute error of held-out retention predicted by a logistic curve in log(d/ID) (per ID "
             f"estimator), in log(d) alone ('{NO_ID}') or in log d and log τ ('{D_TAU}', the fair baseline: τ is "
             "known before training). Leave-one-τ-out is the headline (a forecast is for a τ not yet trained). "
             "Every estimator is listed; intervals are 95% bootstrap intervals over held-out runs; 'minus d+τ' "
             "< 0 with its interval below zero means the ID estimator predicts better than τ does.", "",
             _fmt(table.reset_index(drop=True)), ""]
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
