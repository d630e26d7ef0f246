"""The paper's claims as tests with effect sizes, 95% CIs and verdicts (results/findings.md + .csv).

Each claim is tested per model (never pooled over models).  Scores are means over the tasks of a
task type, then over task types; retention is chance-corrected ((score - chance) / (full - chance)).

One pre-specified **primary** test per claim (config ``findings.primary``) gives the claim's
verdict; every other row is a **sensitivity** analysis, its p-value Holm-adjusted within the
claim and model, shown apart; **descriptive** rows carry no verdict.  Verdicts
(``stats.verdict``): *reproduced* when the 95% CI lies on the claimed side of zero (and, where the
row has a test, its p < alpha), *contradicted* on the other side, *inconclusive* otherwise,
including n too small and zero-width intervals.

The primary tests (``PRIMARY``) are paired contrasts over seeds with a hierarchical bootstrap
(seeds resampled, and within a resample the same evaluation items for every run:
``contrasts`` + ``stats.hierarchical_contrast``), except where the quantity has no item noise
(ID: claim 1) or the claim is a relation between two run properties (claim 3: within-τ
stratified permutation test, so that τ, which drives both ID and retention, cannot explain it).
Claim 2's retention contrast is shown beside the absolute compressed score, so a τ whose
retention rises because its full-size score falls does not read as a win.

Sensitivity statistics:
- trends with τ: Spearman ρ(log τ, y) within each seed, averaged over seeds, t-interval over
  seeds and the exact permutation test (Page's trend test, y permuted within seeds);
- claim 3: ID's partial effect controlling for τ (τ fixed effects), the across-family forecast
  (ID→retention line fitted on the crop sweep predicting the runs of every other family,
  against predicting the sweep's mean), and the stratified test for other estimators / methods;
  the Spearman ρ over all runs is descriptive (runs sharing τ are not independent draws);
- comparisons: mean difference paired by seed (t-test), else Welch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .contrasts import item_deviations, paired_by_seed, run_matrix
from .convergence import PLATEAU_RULE, plateau_table
from .stats import (
    CONTRADICTED,
    INCONCLUSIVE,
    LEVEL,
    REPRODUCED,
    Contrast,
    Estimate,
    fmt_ci,
    hierarchical_contrast,
    holm,
    mean_ci,
    seed_trend,
    seeds_needed,
    spearman_ci,
    strata_rho_seeds_needed,
    trend_pvalue,
    ttest_p,
    verdict,
)
from .tables import core_variant, headline_ids, id_samples, per_run, per_run_type, tau_float

CLAIMS = {
    1: "ID falls as τ rises",
    2: "Retention after truncation and after binarization rises with τ, at each target dim",
    3: "ID predicts retention beyond τ: among runs at the same τ, lower ID, higher retention",
    4: "Low τ is better for retrieval, high τ for clustering (full-size score)",
    5: "Temperature aggregation beats the best single τ on the trade-off between full-size and compressed score",
    6: "Cropping beats dropout at equal τ (full-size score)",
    7: "High τ is not worse than Matryoshka training at the smallest dims (non-inferiority)",
    8: "HPD's distilled student beats PCA and truncation of the same encoder at the same small dim (STS, retrieval)",
}
NONINF_MARGIN = 0.01  # claim 7: main-score units
COLUMNS = ["claim", "claim_text", "role", "model", "variant", "subject", "sample", "method", "dim", "statistic",
           "effect", "ci_lo", "ci_hi", "n", "n_unit", "p_value", "p_holm", "expected", "verdict", "note", "sd_seed",
           "se_item"]
PRIMARY, SENSITIVITY, DESCRIPTIVE, GUARD = "primary", "sensitivity", "descriptive", "guard"
DEFAULTS: dict[str, Any] = {
    "primary": {"id_estimator": "mle", "id_sample": "eval", "method": "truncation", "aggregation": None,
                "reference_tau": None, "matryoshka": None},
    "alpha": 0.05, "n_boot": 2000, "seed": 0, "margin": NONINF_MARGIN, "margin_noise_multiple": 1.0, "power": 0.8,
}
# Which test is primary for each claim, and why (findings.md prints it).
PRIMARY_WHY = {
    1: "Page's trend test (ID permuted within seeds) of the {est} ID on the {sample} texts over the crop sweep: the "
       "evaluation texts are what compression is scored on, and MLE is the estimator the ID-vs-compression "
       "literature uses; ID has no item noise to resample.",
    2: "retention at the highest minus the lowest τ of the crop sweep, {method} to the smallest dim (where the "
       "paper's effect is largest), paired by seed, hierarchical bootstrap over seeds and evaluation items.",
    3: "Spearman ρ(ID, retention) within τ strata of the crop sweep ({est} ID on the {sample} texts, {method} to "
       "the smallest dim), exact permutation of retention within each τ: τ drives both ID and retention, so "
       "only the within-τ relation can show that ID predicts retention beyond τ.",
    4: "two full-size contrasts of the crop sweep, both required (intersection-union test): retrieval at the "
       "lowest minus the highest τ, clustering at the highest minus the lowest τ; hierarchical bootstrap.",
    5: "(full + compressed)/2 of the aggregation minus the single-τ crop run at a reference τ that is "
       "pre-specified or chosen on the other seeds (never on the compared seed), {method} to the smallest dim.",
    6: "full-size score of crop minus dropout, averaged over the shared τ within each seed first (the seed is "
       "the replicate), hierarchical bootstrap.",
    7: "truncated score at the smallest dim of the crop run at the highest τ minus the Matryoshka run of the "
       "same seed, non-inferiority at the margin max(configured margin, multiple × noise floor).",
    8: "STS score at the smallest dim that both methods were scored at, hpd minus pca of the same run, averaged "
       "over the trained runs of each seed (the seed is the replicate: the runs of one seed share its draw), "
       "hierarchical bootstrap; against truncation and on retrieval as sensitivity rows.",
}


def _row(claim: int, model: str, est: Estimate, statistic: str, n_unit: str, expected: str, verdict_: str,
         **kw: Any) -> dict[str, Any]:
    row = {"claim": claim, "claim_text": CLAIMS[claim], "role": SENSITIVITY, "model": model, "statistic": statistic,
           "effect": est.value, "ci_lo": est.lo, "ci_hi": est.hi, "n": est.n, "n_unit": n_unit,
           "expected": expected, "verdict": verdict_}
    row.update(kw)
    if verdict_ == INCONCLUSIVE and "note" not in kw:
        if est.n < 2 or math.isnan(est.lo):
            row["note"] = f"n too small (n={est.n} {n_unit})" if est.n else "fewer than 2 temperatures or no data"
        elif est.lo <= 0 <= est.hi:
            row["note"] = "CI spans zero"
        else:
            p = kw.get("p_value", math.nan)
            row["note"] = f"permutation p = {p:.3f} ≥ 0.05" if p == p else "zero-width interval (no spread)"
    return row


def _log_tau(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["log_tau"] = np.log10(df["tau"].map(tau_float))
    return df[df["log_tau"].notna()]


def _trend(g: pd.DataFrame, y: str, sign: int) -> tuple[Estimate, float, str]:
    """Within-seed Spearman trend of y with log τ, its permutation p-value and the verdict."""
    est = seed_trend(g, "log_tau", y)
    p = trend_pvalue(g, "log_tau", y) if est.n >= 2 else math.nan
    return est, p, verdict(est, sign, p_value=p)


def _sweep_variants(df: pd.DataFrame) -> list[str]:
    """Single-τ grid variants (kind infonce), the crop sweep first."""
    core = core_variant(df)
    others = sorted(set(df.loc[df["kind"] == "infonce", "variant"]) - {core})
    return [v for v in [core, *others] if v is not None]


def diff_estimate(a: pd.Series, b: pd.Series, level: float = LEVEL) -> tuple[Estimate, str]:
    """Mean of a - b, both indexed by seed: paired over shared seeds (≥ 2), else Welch."""
    a, b = a.dropna(), b.dropna()
    shared = a.index.intersection(b.index)
    if len(shared) >= 2:
        return mean_ci((a[shared] - b[shared]).to_numpy(), level), "paired by seed"
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    n = min(len(a), len(b))
    if len(a) < 2 or len(b) < 2:
        return Estimate(diff, math.nan, math.nan, n), "unpaired"
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(diff, diff, diff, n), "unpaired (Welch)"
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return Estimate(diff, diff - half, diff + half, n), "unpaired (Welch)"


def diff_p(a: pd.Series, b: pd.Series, shift: float = 0.0) -> float:
    """Two-sided p of ``diff_estimate``'s test of mean(a - b) + shift = 0 (paired t or Welch)."""
    a, b = a.dropna(), b.dropna()
    shared = a.index.intersection(b.index)
    if len(shared) >= 2:
        return ttest_p((a[shared] - b[shared]).to_numpy() + shift)
    if len(a) < 2 or len(b) < 2 or (a.var() == 0 and b.var() == 0):
        return math.nan
    return float(sps.ttest_ind(a + shift, b, equal_var=False).pvalue)


# ---- settings, noise floor, domains ------------------------------------------------------------

LOSSLESS = ("float16", "bfloat16", "int8")  # quantizers whose native-dim score should equal the float one
TASK_DOMAINS = {"LeeSTS": "Lee news", "BBCNewsClassification": "BBC news", "BBCNewsClustering": "BBC news",
                "BBCHeadlineRetrieval": "BBC news"}
CORPUS_DOMAINS = {"lee_background": "Lee news", "bbc": "BBC news", "enwiki": "Wikipedia"}


def findings_settings(config: dict[str, Any] | None) -> dict[str, Any]:
    """The config's ``findings`` section over DEFAULTS (a config without it gets the defaults)."""
    given = dict((config or {}).get("findings") or {})
    out = {**DEFAULTS, **given}
    out["primary"] = {**DEFAULTS["primary"], **(given.get("primary") or {})}
    return out


def same_domain_tasks(config: dict[str, Any] | None) -> list[str]:
    """Evaluation tasks drawn from a source the training corpus also uses (e.g. LeeSTS with the
    Lee background corpus): their full-size scores carry domain adaptation, not only τ."""
    if not config:
        return []
    corpus = {CORPUS_DOMAINS.get(str(c)) for c in config.get("training", {}).get("corpus", [])}
    return [t for t in config.get("evaluation", {}).get("tasks", []) if TASK_DOMAINS.get(t) in corpus]


def noise_floor(scores: pd.DataFrame) -> pd.DataFrame:
    """Per model and lossless quantizer scored at the native dim: the largest |score - float score|
    over runs, per task type and for the mean over task types (the unit of every claim's score)."""
    rows = []
    native = scores[scores["method"].isin(LOSSLESS)]
    native = native[native["dim_num"] == native.groupby("model")["dim_num"].transform("max")]
    full = scores[scores["method"] == "none"][["run", "task", "score"]].rename(columns={"score": "float"})
    for (model, method), g in native.groupby(["model", "method"]):
        d = g.merge(full, on=["run", "task"])
        d["gap"] = d["score"] - d["float"]
        by_type = d.groupby(["run", "task_type"])["gap"].mean().reset_index()
        for ttype, t in by_type.groupby("task_type"):
            rows.append({"model": model, "method": method, "dim": str(g["dim"].iloc[0]), "task_type": ttype,
                         "max_abs_gap": float(t["gap"].abs().max()), "mean_gap": float(t["gap"].mean()),
                         "n_runs": t["run"].nunique()})
        overall = by_type.groupby("run")["gap"].mean()
        rows.append({"model": model, "method": method, "dim": str(g["dim"].iloc[0]), "task_type": "mean over types",
                     "max_abs_gap": float(overall.abs().max()), "mean_gap": float(overall.mean()),
                     "n_runs": len(overall)})
    return pd.DataFrame(rows, columns=["model", "method", "dim", "task_type", "max_abs_gap", "mean_gap", "n_runs"])


def floor_of(floor: pd.DataFrame, model: str) -> float:
    """The model's noise floor: the largest lossless-quantizer gap on the mean over task types (NaN:
    no lossless quantizer scored at the native dim)."""
    f = floor[(floor["model"] == model) & (floor["task_type"] == "mean over types")]
    return float(f["max_abs_gap"].max()) if len(f) else math.nan


def unresolvable_margin(settings: dict[str, Any], floor: float) -> bool:
    """True when ``margin_noise_multiple`` × the noise floor exceeds the pre-specified
    non-inferiority margin: the evaluation cannot resolve a difference that small, so claim 7
    reads inconclusive.  The margin is never widened to the floor (a wider margin would make
    "not worse" easier to claim)."""
    return bool(np.isfinite(floor) and settings["margin_noise_multiple"] * floor > float(settings["margin"]))


# ---- primary tests -----------------------------------------------------------------------------


def _contrast_row(claim: int, model: str, c: Contrast, statistic: str, expected_sign: int, role: str = PRIMARY,
                  shift: float = 0.0, floor: float = 0.0, **kw: Any) -> dict[str, Any]:
    """A row of a hierarchical contrast; ``shift`` moves the null (non-inferiority: + margin);
    ``floor`` > 0 is a minimum effect (the evaluation noise floor): reproduced needs the CI beyond
    +floor, contradicted beyond -floor (expected sign +)."""
    shifted = Estimate(c.est.value + shift, c.est.lo + shift, c.est.hi + shift, c.est.n)
    v = verdict(shifted, expected_sign)
    floor = floor if np.isfinite(floor) else 0.0
    if floor > 0 and not shift and v != INCONCLUSIVE:
        d = floor if v == REPRODUCED else -floor
        v2 = verdict(Estimate(c.est.value - d, c.est.lo - d, c.est.hi - d, c.est.n), expected_sign)
        if v2 != v:
            v = INCONCLUSIVE
            kw["note"] = f"CI reaches into the noise floor ±{floor:.3f}"
    note = {}
    if v == INCONCLUSIVE and c.est.n >= 2 and not math.isnan(c.est.lo) and "note" not in kw:
        note = {"note": "zero-width interval (no spread)" if c.est.lo == c.est.hi else
                ("CI spans -margin" if shift else "CI spans zero")}
    exp = f"> {-shift:g}" if shift else ("> 0" if expected_sign > 0 else "< 0")
    if floor > 0 and not shift:
        exp += f" (beyond ±{floor:.3f})"
    return _row(claim, model, c.est, statistic, "seeds", exp, v, role=role, p_value=c.p_value,
                sd_seed=c.sd_seed, se_item=c.se_item, min_effect=floor, **note, **kw)


def type_floor(floor: pd.DataFrame | None, model: str, task_type: str, st: dict[str, Any]) -> float:
    """The noise floor of one task type ('mean over types' for means over types) times
    ``margin_noise_multiple``; 0 where no lossless quantizer was scored."""
    if floor is None or floor.empty:
        return 0.0
    f = floor[(floor["model"] == model) & (floor["task_type"] == task_type)]["max_abs_gap"]
    return float(f.max()) * st["margin_noise_multiple"] if len(f) else 0.0


def _taus(meta: pd.DataFrame, variant: str) -> list[str]:
    return sorted(set(meta.loc[meta["variant"] == variant, "tau"]), key=tau_float)


def _tau_contrast(meta: pd.DataFrame, m: np.ndarray, variant: str, high_minus_low: bool) -> np.ndarray | None:
    taus = [t for t in _taus(meta, variant) if np.isfinite(tau_float(t))]
    if len(taus) < 2:
        return None
    hi, lo = (taus[-1], taus[0]) if high_minus_low else (taus[0], taus[-1])
    v = meta["variant"] == variant
    c, _ = paired_by_seed(meta, m, v & (meta["tau"] == hi), v & (meta["tau"] == lo))
    return c


def primary_id_falls(ids: pd.DataFrame, st: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    pr = st["primary"]
    variant = core_variant(ids)
    if variant is None:
        return rows
    d = ids if "sample" not in ids.columns else ids[ids["sample"] == pr["id_sample"]]
    if d.empty:
        d = headline_ids(ids)
    d = _log_tau(d[(d["variant"] == variant) & (d["estimator"] == pr["id_estimator"])])
    for model, g in d.groupby("model"):
        est, p, v = _trend(g, "id", -1)
        rhos = g.groupby("seed").apply(lambda x: x["log_tau"].rank().corr(x["id"].rank()), include_groups=False)
        rows.append(_row(1, model, est, "mean within-seed Spearman ρ(log τ, ID), Page's exact permutation test",
                         "seeds", "< 0", v, role=PRIMARY, p_value=p, variant=variant, subject=pr["id_estimator"],
                         sample=str(g["sample"].iloc[0]) if "sample" in g else "all",
                         sd_seed=float(rhos.std(ddof=1)) if len(rhos) > 1 else math.nan, se_item=0.0))
    return rows


def primary_retention_rises(scores: pd.DataFrame, dev: dict, st: dict[str, Any],
                            exclude: frozenset[str] = frozenset(), role: str = PRIMARY,
                            floor: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Retention contrast (highest - lowest τ) and, beside it, the absolute compressed score of the
    highest τ minus every lower τ, for the mean over task types and per task type (role 'guard').
    The noise floor (score units) is a minimum effect; for retention it is divided by the mean
    chance-corrected full-size score."""
    rows = []
    variant, method = core_variant(scores), st["primary"]["method"]
    if variant is None or method not in set(scores["method"]):
        return rows
    label = " without same-domain tasks" if exclude else ""
    for model, s in scores[scores["variant"] == variant].groupby("model"):
        meta, m = run_matrix(s, dev, method, "retention_cc", exclude_tasks=exclude)
        c = _tau_contrast(meta, m, variant, True)
        if c is None:
            continue
        dim = str(s.loc[s["method"] == method, "dim_num"].min())
        dim = dim[:-2] if dim.endswith(".0") else dim
        hc = hierarchical_contrast(c, st["n_boot"], st["seed"])
        full = s[s["method"] == "none"]
        scale = per_run(full.assign(cc=full["score"] - full["chance"]), "cc")["cc"].mean()
        f = type_floor(floor, model, "mean over types", st) / scale if scale > 0 else 0.0
        rows.append(_contrast_row(2, model, hc, f"chance-corrected retention, highest minus lowest τ{label}", +1,
                                  role=role, variant=variant, method=method, dim=dim,
                                  subject="retention" + label, floor=f))
        if exclude:
            continue
        types = [("all types", None)] + [(t, set(s.loc[s["task_type"] == t, "task"]))
                                         for t in sorted(set(s["task_type"]))]
        taus = [t for t in _taus(meta, variant) if np.isfinite(tau_float(t))]
        for ttype, tasks in types:
            meta_t, m_t = run_matrix(s, dev, method, "score", tasks=tasks)
            v = meta_t["variant"] == variant
            for low in taus[:-1]:
                ct, _ = paired_by_seed(meta_t, m_t, v & (meta_t["tau"] == taus[-1]), v & (meta_t["tau"] == low))
                hc = hierarchical_contrast(ct, st["n_boot"], st["seed"])
                f = type_floor(floor, model, "mean over types" if tasks is None else ttype, st)
                rows.append(_contrast_row(2, model, hc, f"absolute compressed score, τ={taus[-1]} minus τ={low}", +1,
                                          role=GUARD, variant=variant, method=method, dim=dim, floor=f,
                                          subject=f"compressed score, {ttype}, τ={taus[-1]} − τ={low}"))
    return rows


def primary_id_predicts_retention(scores: pd.DataFrame, ids: pd.DataFrame, st: dict[str, Any],
                                  estimator: str | None = None, sample: str | None = None,
                                  method: str | None = None, role: str = PRIMARY) -> list[dict[str, Any]]:
    """Within-τ (stratified) Spearman ρ(ID, retention) over the crop sweep, exact permutation."""
    rows = []
    pr = st["primary"]
    estimator, sample, method = estimator or pr["id_estimator"], sample or pr["id_sample"], method or pr["method"]
    variant = core_variant(scores)
    if variant is None or method not in set(scores["method"]):
        return rows
    d = _id_retention(scores, ids, estimator, sample, method)
    d = d[(d["variant"] == variant) & d["tau"].map(lambda t: np.isfinite(tau_float(t)))]
    for model, g in d.groupby("model"):
        est = seed_trend(g, "id", "retention_cc", seed="tau")
        p = trend_pvalue(g, "id", "retention_cc", seed="tau") if est.n >= 1 else math.nan
        rhos = _within(g)
        v = verdict(est, -1, p_value=p, min_n=1) if est.n >= 1 and len(g) >= 4 else INCONCLUSIVE
        if est.n == 1 and not math.isnan(est.value):  # one stratum: its ρ, the test's p decides
            est = Estimate(est.value, est.value, est.value, 1)
            v = verdict(est, -1, p_value=p, min_n=1)
        rows.append(_row(3, model, est, "mean within-τ Spearman ρ(ID, chance-corrected retention), exact "
                         "permutation within τ strata", "τ strata", "< 0", v, role=role, p_value=p,
                         variant=variant, subject=estimator, sample=sample, method=method,
                         dim=str(g["dim"].iloc[0]), sd_seed=float(rhos.std(ddof=1)) if len(rhos) > 1 else math.nan,
                         se_item=0.0, n_runs=len(g)))
    return rows


def _within(g: pd.DataFrame) -> pd.Series:
    from .stats import within_seed_rho

    return within_seed_rho(g, "id", "retention_cc", seed="tau")


def _id_retention(scores: pd.DataFrame, ids: pd.DataFrame, estimator: str, sample: str, method: str) -> pd.DataFrame:
    """Per run: ID (one estimator and sample) and chance-corrected retention at the smallest dim."""
    ret = per_run(_smallest(scores[scores["method"] == method]), "retention_cc")
    d = ids if "sample" not in ids.columns else ids[ids["sample"] == sample]
    if d.empty:
        d = headline_ids(ids)
    d = d[d["estimator"] == estimator][["run", "id"]]
    return ret.merge(d, on="run")


def _primary_id_retention(scores: pd.DataFrame, ids: pd.DataFrame,
                          st: dict[str, Any]) -> tuple[dict[str, Any], str, pd.DataFrame] | None:
    """(claim 3's primary settings, the core sweep's variant, ID beside retention per run), or None
    where the runs lack the core sweep or the primary compression method."""
    pr = st["primary"]
    variant = core_variant(scores)
    if variant is None or pr["method"] not in set(scores["method"]):
        return None
    return pr, variant, _id_retention(scores, ids, pr["id_estimator"], pr["id_sample"], pr["method"])


def partial_id_effect(scores: pd.DataFrame, ids: pd.DataFrame, st: dict[str, Any]) -> list[dict[str, Any]]:
    """ID's coefficient on retention with τ fixed effects (crop sweep), t-interval; per 1 unit of ID."""
    rows = []
    found = _primary_id_retention(scores, ids, st)
    if found is None:
        return rows
    pr, variant, d = found
    d = d[d["variant"] == variant]
    for model, g in d.groupby("model"):
        strata = pd.get_dummies(g["tau"].astype(str)).to_numpy(float)
        x = np.column_stack([g["id"].to_numpy(float), strata])
        y = g["retention_cc"].to_numpy(float)
        dof = len(y) - np.linalg.matrix_rank(x)
        est, p = Estimate(math.nan, math.nan, math.nan, len(y)), math.nan
        if dof >= 1 and np.linalg.matrix_rank(x) == x.shape[1]:
            beta, *_ = np.linalg.lstsq(x, y, rcond=None)
            resid = y - x @ beta
            cov = (resid @ resid / dof) * np.linalg.inv(x.T @ x)
            se = math.sqrt(cov[0, 0])
            b = float(beta[0])
            if se > 0:
                half = float(sps.t.ppf(0.5 + LEVEL / 2, dof)) * se
                est, p = Estimate(b, b - half, b + half, len(y)), float(2 * sps.t.sf(abs(b) / se, dof))
            else:
                est = Estimate(b, b, b, len(y))
        rows.append(_row(3, model, est, "partial effect of ID on retention with τ fixed effects (OLS slope per "
                         "unit of ID)", "runs", "< 0", verdict(est, -1), role=SENSITIVITY, p_value=p,
                         variant=variant, subject=f"partial, {pr['id_estimator']}", sample=pr["id_sample"],
                         method=pr["method"]))
    return rows


def across_family_forecast(scores: pd.DataFrame, ids: pd.DataFrame, st: dict[str, Any]) -> list[dict[str, Any]]:
    """ID→retention line fitted on the crop sweep, predicting every other family's runs: error of the
    sweep's mean retention minus error of the ID line, per held-out run (> 0: ID predicts)."""
    rows = []
    found = _primary_id_retention(scores, ids, st)
    if found is None:
        return rows
    pr, variant, d = found
    for model, g in d.groupby("model"):
        train, test = g[g["variant"] == variant], g[g["variant"] != variant]
        if len(train) < 3 or train["id"].nunique() < 2 or test.empty:
            continue
        slope, icept = np.polyfit(train["id"], train["retention_cc"], 1)
        err_id = (icept + slope * test["id"] - test["retention_cc"]).abs()
        err_mean = (train["retention_cc"].mean() - test["retention_cc"]).abs()
        gain = (err_mean - err_id).to_numpy()
        est = mean_ci(gain)
        rows.append(_row(3, model, est, "across-family forecast: absolute error of the sweep mean minus that of the "
                         "ID line fitted on the sweep, per held-out run", "held-out runs", "> 0",
                         verdict(est, +1), role=SENSITIVITY, p_value=ttest_p(gain), variant="other families",
                         subject=", ".join(sorted(set(test["variant"]))), sample=pr["id_sample"],
                         method=pr["method"]))
    return rows


def primary_tradeoff(scores: pd.DataFrame, dev: dict, st: dict[str, Any],
                     exclude: frozenset[str] = frozenset(), role: str = PRIMARY,
                     floor: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    rows = []
    variant = core_variant(scores)
    if variant is None:
        return rows
    label = " without same-domain tasks" if exclude else ""
    for task_type, sign in (("Retrieval", -1), ("Clustering", +1)):
        for model, s in scores[scores["variant"] == variant].groupby("model"):
            tasks = set(s.loc[s["task_type"] == task_type, "task"]) - set(exclude)
            if not tasks:
                continue
            meta, m = run_matrix(s, dev, "none", "full", tasks=tasks)
            c = _tau_contrast(meta, m, variant, sign > 0)
            if c is None:
                continue
            hc = hierarchical_contrast(c, st["n_boot"], st["seed"])
            which = "highest minus lowest τ" if sign > 0 else "lowest minus highest τ"
            rows.append(_contrast_row(4, model, hc, f"full-size score, {which}{label}", +1, role=role,
                                      variant=variant, subject=task_type + label,
                                      floor=type_floor(floor, model, task_type, st)))
    return rows


def _reference_taus(meta: pd.DataFrame, m: np.ndarray, variant: str, seeds: list[str],
                    fixed: str | None) -> dict[str, str]:
    """Per compared seed, the single τ to compare with: ``fixed``, else the best τ by mean value over
    the *other* seeds (no τ for a seed when no other seed has the sweep)."""
    if fixed is not None:
        return dict.fromkeys(seeds, str(fixed))
    sweep = meta[meta["variant"] == variant].assign(v=m[0, (meta["variant"] == variant).to_numpy()])
    out = {}
    for s in seeds:
        rest = sweep[sweep["seed"] != s]
        if not rest.empty:
            out[s] = str(rest.groupby("tau")["v"].mean().idxmax())
    return out


def primary_aggregation(scores: pd.DataFrame, dev: dict, st: dict[str, Any], role: str = PRIMARY,
                        method: str | None = None, agg: str | None = None,
                        floor: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    rows = []
    variant = core_variant(scores)
    method = method or st["primary"]["method"]
    aggs = sorted(set(scores.loc[scores["kind"].isin(["multi_temperature", "soup"]), "variant"]))
    first = [v for v in aggs if (scores.loc[scores["variant"] == v, "kind"] == "multi_temperature").any()]
    agg = agg or st["primary"]["aggregation"] or (first or aggs or [None])[0]
    if variant is None or agg is None or method not in set(scores["method"]):
        return rows
    fixed = st["primary"]["reference_tau"]
    fixed = None if fixed is None else str(fixed)
    for model, s in scores.groupby("model"):
        meta, m = run_matrix(s, dev, method, "tradeoff")
        a_sel = meta["variant"] == agg
        if not a_sel.any():
            continue
        seeds = sorted(set(meta.loc[a_sel, "seed"]), key=str)
        ref = _reference_taus(meta, m, variant, seeds, fixed)
        cols, taus_used = [], []
        for sd in seeds:
            b = (meta["variant"] == variant) & (meta["tau"] == ref.get(sd)) & (meta["seed"] == sd)
            a = a_sel & (meta["seed"] == sd)
            if b.any():
                cols.append(m[:, a.to_numpy()].mean(axis=1) - m[:, b.to_numpy()].mean(axis=1))
                taus_used.append(ref[sd])
        c = np.column_stack(cols) if cols else np.zeros((m.shape[0], 0))
        hc = hierarchical_contrast(c, st["n_boot"], st["seed"])
        how = f"τ={fixed} (pre-specified)" if fixed else "best τ chosen on the other seeds"
        kw = {"note": "no other seed to choose the reference τ on (set findings.primary.reference_tau)"} \
            if not cols and seeds and not fixed else {}
        dim = str(s.loc[s["method"] == method, "dim_num"].min()).removesuffix(".0")
        rows.append(_contrast_row(5, model, hc, f"(full + compressed)/2, aggregation minus {variant} at the "
                                  f"reference τ ({how})", +1, role=role, variant=agg, method=method, dim=dim,
                                  subject=f"vs {variant} τ={','.join(sorted(set(taus_used))) or '–'}",
                                  floor=type_floor(floor, model, "mean over types", st), **kw))
    return rows


def primary_crop_vs_dropout(scores: pd.DataFrame, dev: dict, st: dict[str, Any],
                            exclude: frozenset[str] = frozenset(), role: str = PRIMARY,
                            floor: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    rows = []
    crop, drop = core_variant(scores, "crop"), core_variant(scores, "dropout")
    if crop is None or drop is None:
        return rows
    label = " without same-domain tasks" if exclude else ""
    for model, s in scores.groupby("model"):
        meta, m = run_matrix(s, dev, "none", "full", exclude_tasks=exclude)
        shared = set(meta.loc[meta["variant"] == crop, "tau"]) & set(meta.loc[meta["variant"] == drop, "tau"])
        a = (meta["variant"] == crop) & meta["tau"].isin(shared)
        b = (meta["variant"] == drop) & meta["tau"].isin(shared)
        if not (a.any() and b.any()):
            continue  # this model has no dropout run at a crop τ
        c, _ = paired_by_seed(meta, m, a, b)
        hc = hierarchical_contrast(c, st["n_boot"], st["seed"])
        rows.append(_contrast_row(6, model, hc, f"full-size score, {crop} minus {drop}, averaged over the shared τ "
                                  f"within each seed{label}", +1, role=role, variant=f"{crop} vs {drop}",
                                  subject=f"τ ∈ {{{', '.join(sorted(shared, key=tau_float))}}}{label}",
                                  floor=type_floor(floor, model, "mean over types", st)))
    return rows


def primary_matryoshka(scores: pd.DataFrame, dev: dict, st: dict[str, Any], floor: pd.DataFrame,
                       exclude: frozenset[str] = frozenset(), role: str = PRIMARY) -> list[dict[str, Any]]:
    rows = []
    variant = core_variant(scores)
    mrls = sorted(set(scores.loc[scores["kind"].isin(["matryoshka", "matryoshka2d"]), "variant"]))
    mrl = st["primary"]["matryoshka"] or (mrls or [None])[0]
    if variant is None or mrl is None or "truncation" not in set(scores["method"]):
        return rows
    label = " without same-domain tasks" if exclude else ""
    for model, s in scores.groupby("model"):
        meta, m = run_matrix(s, dev, "truncation", "score", exclude_tasks=exclude)
        taus = [t for t in _taus(meta, variant) if np.isfinite(tau_float(t))]
        if not taus or not (meta["variant"] == mrl).any():
            continue
        c, _ = paired_by_seed(meta, m, (meta["variant"] == variant) & (meta["tau"] == taus[-1]),
                              meta["variant"] == mrl)
        hc = hierarchical_contrast(c, st["n_boot"], st["seed"])
        margin, model_floor = float(st["margin"]), floor_of(floor, model)
        dim = str(s.loc[s["method"] == "truncation", "dim_num"].min()).removesuffix(".0")
        row = _contrast_row(7, model, hc, f"truncated score, {variant} at τ={taus[-1]} minus {mrl}, "
                            f"non-inferiority margin {margin:.3f}{label}", +1, role=role, shift=margin,
                            variant=f"{variant} vs {mrl}", method="truncation", dim=dim,
                            subject=f"{variant} τ={taus[-1]} vs {mrl}{label}", margin=margin)
        rows.append(_within_margin_or_unresolvable(row, st, model_floor))
    return rows


def _method_contrast(s: pd.DataFrame, dev: dict, method: str, versus: str, dim: str,
                     tasks: set[str]) -> np.ndarray:
    """Per-seed contrast (1 + item replicates, seeds) of two compression methods of the same runs at
    one dim on ``tasks``: method minus versus within each trained run, averaged over a seed's runs."""
    meta_a, m_a = run_matrix(s, dev, method, "score", dim=dim, tasks=tasks)
    meta_b, m_b = run_matrix(s, dev, versus, "score", dim=dim, tasks=tasks)
    col_b = {run: j for j, run in enumerate(meta_b["run"])}
    pairs = [(i, col_b[run]) for i, (run, kind) in enumerate(zip(meta_a["run"], meta_a["kind"], strict=True))
             if run in col_b and kind != "base"]  # the base model has no seed of its own
    if not pairs:
        return np.zeros((m_a.shape[0], 0))
    ia, ib = (np.array(x) for x in zip(*pairs, strict=True))
    diff, seeds = m_a[:, ia] - m_b[:, ib], meta_a["seed"].to_numpy()[ia]
    return np.column_stack([diff[:, seeds == sd].mean(axis=1) for sd in sorted(set(seeds), key=str)])


def primary_hpd(scores: pd.DataFrame, dev: dict, st: dict[str, Any], floor: pd.DataFrame | None = None,
                versus: str = "pca", task_type: str = "STS", role: str = PRIMARY) -> list[dict[str, Any]]:
    """Claim 8: HPD's student minus another compression of the same runs, at the smallest dim both
    were scored at, on one task type; paired within run, the seed the replicate."""
    rows = []
    for model, s in scores.groupby("model"):
        dims = [set(s.loc[s["method"] == m, "dim_num"].dropna()) for m in ("hpd", versus)]
        shared = sorted(dims[0] & dims[1])
        tasks = set(s.loc[s["task_type"] == task_type, "task"])
        if not shared or not tasks:
            continue
        dim = str(shared[0]).removesuffix(".0")
        c = _method_contrast(s, dev, "hpd", versus, dim, tasks)
        if c.shape[1] == 0:
            continue
        hc = hierarchical_contrast(c, st["n_boot"], st["seed"])
        rows.append(_contrast_row(8, model, hc, f"{task_type} score at dim {dim}, hpd minus {versus} of the same run",
                                  +1, role=role, method=f"hpd vs {versus}", dim=dim, subject=task_type,
                                  floor=type_floor(floor, model, task_type, st)))
    return rows


def _within_margin_or_unresolvable(row: dict[str, Any], st: dict[str, Any], floor: float) -> dict[str, Any]:
    """A claim-7 row, made inconclusive (saying why) where the noise floor exceeds the margin."""
    if unresolvable_margin(st, floor):
        row["verdict"] = INCONCLUSIVE
        row["note"] = (f"noise floor {st['margin_noise_multiple'] * floor:.3f} exceeds the margin "
                       f"{float(st['margin']):.3f}: more clustering experiments (config/precise.yaml)")
    return row


# ---- the sensitivity analyses --------------------------------------------------------------------


def claim_id_falls(ids: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for sample, d in id_samples(ids):
        d = _log_tau(d[d["kind"] == "infonce"])
        for variant in _sweep_variants(d):
            for (model, est_name), g in d[d["variant"] == variant].groupby(["model", "estimator"]):
                est, p, v = _trend(g, "id", -1)
                rows.append(_row(1, model, est, "mean within-seed Spearman ρ(log τ, ID)", "seeds", "< 0", v,
                                 p_value=p, variant=variant, subject=est_name, sample=sample))
    return rows


def _retention_runs(scores: pd.DataFrame, method: str) -> pd.DataFrame:
    return per_run(scores[scores["method"] == method], "retention_cc")


def claim_retention_rises(scores: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    variant = core_variant(scores)
    if variant is None:
        return rows
    s = scores[scores["variant"] == variant]
    for method in ("truncation", "binarization"):
        r = _log_tau(_retention_runs(s, method))
        for (model, _, dim), g in r.groupby(["model", "dim_num", "dim"]):
            est, p, v = _trend(g, "retention_cc", +1)
            rows.append(_row(2, model, est, "mean within-seed Spearman ρ(log τ, chance-corrected retention)", "seeds",
                             "> 0", v, p_value=p, variant=variant, method=method, dim=str(dim)))
    return rows


def _smallest(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["dim_num"] == df.groupby("model")["dim_num"].transform("min")]


def _largest(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["dim_num"] == df.groupby("model")["dim_num"].transform("max")]


def claim_id_predicts_retention(scores: pd.DataFrame, ids: pd.DataFrame) -> list[dict[str, Any]]:
    """Spearman ρ over all runs of a model: descriptive only (runs sharing τ are not independent draws)."""
    rows = []
    targets = [("truncation", _smallest)] + [("binarization", _smallest), ("binarization", _largest)]
    seen = set()
    for method, pick in targets:
        rows_m = pick(scores[scores["method"] == method]) if method in set(scores["method"]) else scores.iloc[0:0]
        if rows_m.empty:
            continue
        ret = per_run(rows_m, "retention_cc")
        for sample, idg in id_samples(ids):
            merged = ret.merge(idg[["run", "estimator", "id"]], on="run")
            for (model, est_name, dim), g in merged.groupby(["model", "estimator", "dim"]):
                key = (method, sample, model, est_name, dim)
                if key in seen:
                    continue
                seen.add(key)
                est = spearman_ci(g["id"], g["retention_cc"])
                rows.append(_row(3, model, est, "Spearman ρ(ID, chance-corrected retention) over runs", "runs",
                                 "< 0", DESCRIPTIVE, role=DESCRIPTIVE, subject=est_name, sample=sample,
                                 method=method, dim=str(dim), variant="all runs",
                                 note="runs sharing τ are not independent: no verdict"))
    return rows


def stratified_sensitivity(scores: pd.DataFrame, ids: pd.DataFrame, st: dict[str, Any]) -> list[dict[str, Any]]:
    """The primary within-τ test for every other (estimator, sample, method)."""
    rows = []
    pr = st["primary"]
    samples = [s for s, _ in id_samples(ids)] if "sample" in ids.columns else [pr["id_sample"]]
    for method in [m for m in ("truncation", "binarization") if m in set(scores["method"])]:
        for sample in samples:
            for est in sorted(set(ids["estimator"])):
                if (est, sample, method) == (pr["id_estimator"], pr["id_sample"], pr["method"]):
                    continue
                rows += primary_id_predicts_retention(scores, ids, st, est, sample, method, role=SENSITIVITY)
    return rows


def claim_task_type_tradeoff(scores: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    variant = core_variant(scores)
    if variant is None:
        return rows
    full = per_run_type(scores[(scores["variant"] == variant) & (scores["method"] == "none")], "score")
    full = _log_tau(full)
    for task_type, sign in (("Retrieval", -1), ("Clustering", +1)):
        for model, g in full[full["task_type"] == task_type].groupby("model"):
            est, p, v = _trend(g, "score", sign)
            rows.append(_row(4, model, est, "mean within-seed Spearman ρ(log τ, full-size score)", "seeds",
                             "< 0" if sign < 0 else "> 0", v, p_value=p, variant=variant, subject=task_type))
    return rows


def _by_seed(df: pd.DataFrame, value: str) -> pd.Series:
    return df.groupby("seed")[value].mean()


def claim_crop_vs_dropout(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """Per shared τ: crop minus dropout, paired by seed."""
    rows = []
    crop, drop = core_variant(scores, "crop"), core_variant(scores, "dropout")
    if crop is None or drop is None:
        return rows
    full = per_run(scores[scores["method"] == "none"], "score")
    for model, m in full.groupby("model"):
        c, d = m[m["variant"] == crop], m[m["variant"] == drop]
        for tau in sorted(set(c["tau"]) & set(d["tau"]), key=float):
            a, b = _by_seed(c[c["tau"] == tau], "score"), _by_seed(d[d["tau"] == tau], "score")
            est, how = diff_estimate(a, b)
            rows.append(_row(6, model, est, f"full-size score, {crop} minus {drop}, {how}", "seeds", "> 0",
                             verdict(est, +1), p_value=diff_p(a, b), variant=f"{crop} vs {drop}", subject=f"τ={tau}"))
    return rows


def claim_matryoshka(scores: pd.DataFrame, st: dict[str, Any] | None = None,
                     floor: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Every (Matryoshka run, comparison τ, smallest two dims) as a non-inferiority row at the
    pre-specified margin; inconclusive where the model's noise floor exceeds it."""
    st = st or findings_settings(None)
    margin = float(st["margin"])
    rows = []
    variant = core_variant(scores)
    mrls = sorted(set(scores.loc[scores["kind"].isin(["matryoshka", "matryoshka2d"]), "variant"]))
    if variant is None or not mrls:
        return rows
    trunc = per_run(scores[scores["method"] == "truncation"], "score")
    for model, m in trunc.groupby("model"):
        model_floor = floor_of(floor, model) if floor is not None else math.nan
        dims = sorted(m["dim_num"].dropna().unique())[:2]
        sweep = m[m["variant"] == variant]
        if sweep.empty:
            continue
        high = max(sweep["tau"].unique(), key=float)
        for mrl in mrls:
            for mrl_tau, mm in m[m["variant"] == mrl].groupby("tau"):
                comps = [(high, "highest τ")]
                if mrl_tau in set(sweep["tau"]) and mrl_tau != high:
                    comps.append((mrl_tau, "same τ"))
                for dim in dims:
                    b = _by_seed(mm[mm["dim_num"] == dim], "score")
                    for tau, label in comps:
                        a = _by_seed(sweep[(sweep["tau"] == tau) & (sweep["dim_num"] == dim)], "score")
                        est, how = diff_estimate(a, b)
                        shifted = Estimate(est.value + margin, est.lo + margin, est.hi + margin, est.n)
                        v = verdict(shifted, +1)
                        note = {"note": f"CI spans -{margin:.3f}"} if v == INCONCLUSIVE and est.n >= 2 and not \
                            math.isnan(est.lo) and est.lo != est.hi else {}
                        row = _row(7, model, est, f"truncated score, {variant} minus the Matryoshka run, {how}",
                                   "seeds", f"> -{margin:.3f}", v, **note, p_value=diff_p(a, b, margin),
                                   variant=f"{variant} vs {mrl}", method="truncation", dim=str(int(dim)),
                                   subject=f"{variant} τ={tau} ({label}) vs {mrl} τ={mrl_tau}")
                        rows.append(_within_margin_or_unresolvable(row, st, model_floor))
    return rows


def _holm_within(df: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Holm-adjust the sensitivity rows' p-values within (claim, model); a row's verdict then needs
    its adjusted p < alpha as well as its CI on the claimed side."""
    df = df.copy()
    df["p_holm"] = math.nan
    sens = df["role"] == SENSITIVITY
    for _, g in df[sens].groupby(["claim", "model"]):
        df.loc[g.index, "p_holm"] = holm(g["p_value"].to_numpy(float))
    bad = sens & df["verdict"].isin([REPRODUCED, CONTRADICTED]) & ~(df["p_holm"] < alpha)
    df.loc[bad, "note"] = [f"Holm-adjusted p = {p:.3f} ≥ {alpha:g}" if not math.isnan(p) else "no test p-value"
                           for p in df.loc[bad, "p_holm"]]
    df.loc[bad, "verdict"] = INCONCLUSIVE
    return df


def claim_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One verdict per (claim, model), from its primary rows alone (claim 4: both parts must hold,
    either part contradicted contradicts the claim)."""
    rows = []
    prim = table[table["role"] == PRIMARY]
    for (claim, model), g in prim.groupby(["claim", "model"]):
        vs = list(g["verdict"])
        if all(v == REPRODUCED for v in vs):
            v = REPRODUCED
        elif any(v == CONTRADICTED for v in vs):
            v = CONTRADICTED
        else:
            v = INCONCLUSIVE
        rows.append({"claim": claim, "model": model, "verdict": v, "tests": len(g)})
    return pd.DataFrame(rows, columns=["claim", "model", "verdict", "tests"])


def power_table(table: pd.DataFrame, st: dict[str, Any], n_taus: int = 3) -> pd.DataFrame:
    """Per primary row: the seeds its test would need for ``st['power']`` at the observed effect and
    noise (t-test approximation; for claims 1 and 3 also the exact permutation test's floor), at the
    current evaluation items and with 4× as many."""
    rows = []
    alpha, power = st["alpha"], st["power"]
    for r in table[table["role"] == PRIMARY].itertuples():
        effect, sd, se_item = float(r.effect), float(r.sd_seed), float(r.se_item) if np.isfinite(r.se_item) else 0.0
        margin = float(getattr(r, "margin", math.nan)) if hasattr(r, "margin") else math.nan
        if r.claim == 7 and np.isfinite(margin):
            effect += margin
        floor = float(getattr(r, "min_effect", math.nan))
        if r.claim != 7 and np.isfinite(floor) and floor > 0 and np.isfinite(effect):
            effect = math.copysign(max(abs(effect) - floor, 0.0), effect)  # the effect beyond the noise floor
            if effect == 0:
                rows.append({"claim": r.claim, "model": r.model, "subject": r.subject, "effect": effect,
                             "sd_seed": sd, "se_item": se_item, "n_now": int(r.n), "seeds_needed": math.inf,
                             "seeds_needed_4x_items": math.inf})
                continue
        if r.claim == 3:  # the verdict rule itself, simulated (its permutation floor included)
            need = need4 = strata_rho_seeds_needed(effect, n_taus, power, alpha)
        else:
            need = seeds_needed(effect, sd, se_item, power, alpha)
            need4 = seeds_needed(effect, sd, se_item / 2, power, alpha)
        if r.claim == 1 and sd == 0 and se_item == 0 and effect != 0:
            need = need4 = 2.0  # no spread: only the permutation test's floor limits it
        if r.claim == 1 and np.isfinite(need):
            # τ labels permuted within each seed: (n_taus!)^seeds permutations must reach 2 / alpha
            floor = math.ceil(math.log(2 / alpha) / math.log(math.factorial(n_taus))) if n_taus > 1 else math.inf
            need, need4 = max(need, floor), max(need4, floor)
        rows.append({"claim": r.claim, "model": r.model, "subject": r.subject, "effect": effect, "sd_seed": sd,
                     "se_item": se_item, "n_now": int(r.n), "seeds_needed": need, "seeds_needed_4x_items": need4})
    return pd.DataFrame(rows)


def findings_table(scores: pd.DataFrame, ids: pd.DataFrame, items_reps: pd.DataFrame | None = None,
                   config: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every claim's rows (see module docstring): primary, sensitivity (Holm within claim and model),
    guard and descriptive rows; one row per test."""
    st = findings_settings(config)
    dev = item_deviations(items_reps)
    floor = noise_floor(scores)
    same = frozenset(same_domain_tasks(config))
    rows = primary_id_falls(ids, st) + primary_retention_rises(scores, dev, st, floor=floor) \
        + primary_id_predicts_retention(scores, ids, st) + primary_tradeoff(scores, dev, st, floor=floor) \
        + primary_aggregation(scores, dev, st, floor=floor) + primary_crop_vs_dropout(scores, dev, st, floor=floor) \
        + primary_matryoshka(scores, dev, st, floor) + primary_hpd(scores, dev, st, floor)
    primary_keys = {(r["claim"], r["model"], r.get("variant", ""), r.get("subject", ""), r.get("sample", ""),
                     r.get("method", ""), r.get("dim", "")) for r in rows}
    sens = claim_id_falls(ids) + claim_retention_rises(scores) + stratified_sensitivity(scores, ids, st) \
        + partial_id_effect(scores, ids, st) + across_family_forecast(scores, ids, st) \
        + claim_task_type_tradeoff(scores) + claim_crop_vs_dropout(scores) \
        + claim_matryoshka(scores, st, floor)
    hpd_models = {r["model"] for r in rows if r["claim"] == 8}  # claim 8's other rows only beside its primary
    sens += [r for versus, ttype in (("truncation", "STS"), ("pca", "Retrieval"), ("truncation", "Retrieval"))
             for r in primary_hpd(scores, dev, st, floor, versus, ttype, SENSITIVITY) if r["model"] in hpd_models]
    for method in ("truncation", "binarization"):
        aggs = sorted(set(scores.loc[scores["kind"].isin(["multi_temperature", "soup"]), "variant"]))
        for agg in aggs:
            if (method, agg) != (st["primary"]["method"], _primary_agg(scores, st)):
                sens += primary_aggregation(scores, dev, st, role=SENSITIVITY, method=method, agg=agg, floor=floor)
    if same:
        sens += primary_retention_rises(scores, dev, st, same, SENSITIVITY, floor) \
            + primary_tradeoff(scores, dev, st, same, SENSITIVITY, floor) \
            + primary_crop_vs_dropout(scores, dev, st, same, SENSITIVITY, floor) \
            + primary_matryoshka(scores, dev, st, floor, same, SENSITIVITY)
    for r in sens:
        r.setdefault("role", SENSITIVITY)
        key = (r["claim"], r["model"], r.get("variant", ""), r.get("subject", ""), r.get("sample", ""),
               r.get("method", ""), r.get("dim", ""))
        if r["role"] == SENSITIVITY and r["claim"] == 1 and key in primary_keys:
            continue  # the primary row itself
        rows.append(r)
    df = pd.DataFrame(rows)
    for c in [*COLUMNS, "margin", "min_effect", "n_runs"]:
        if c not in df.columns:
            df[c] = "" if c not in ("effect", "ci_lo", "ci_hi", "n", "p_value", "p_holm", "sd_seed", "se_item",
                                    "margin", "min_effect", "n_runs") else math.nan
    df = _holm_within(df, st["alpha"])
    text_cols = {"variant": "", "subject": "", "sample": "", "method": "", "dim": "", "note": ""}
    return df[[*COLUMNS, "margin", "min_effect"]].fillna(text_cols)


def _primary_agg(scores: pd.DataFrame, st: dict[str, Any]) -> str | None:
    aggs = sorted(set(scores.loc[scores["kind"] == "multi_temperature", "variant"]))
    return st["primary"]["aggregation"] or (aggs[0] if aggs else None)


# ---- Markdown ------------------------------------------------------------------------------------


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _show(g: pd.DataFrame, holm_col: bool = False) -> pd.DataFrame:
    """A claim's rows as display cells."""
    show = g.copy()
    show["effect [95% CI] (n)"] = [fmt_ci(r.effect, r.ci_lo, r.ci_hi, int(r.n)) + (f" {r.n_unit}" if r.n else "")
                                   for r in g.itertuples()]
    keep = [c for c in ["model", "variant", "subject", "sample", "method", "dim"] if (show[c] != "").any()]
    show["p"] = [_p(p) for p in g["p_value"]]
    extra = ["p"]
    if holm_col:
        show["Holm p"] = [_p(p) for p in g["p_holm"]]
        extra.append("Holm p")
    cols = [*keep, "statistic", "effect [95% CI] (n)", *extra, "expected", "verdict", "note"]
    return show[cols]


def _primary_why(claim: int, st: dict[str, Any]) -> str:
    pr = st["primary"]
    return PRIMARY_WHY[claim].format(est=pr["id_estimator"], sample=pr["id_sample"], method=pr["method"])


def findings_markdown(table: pd.DataFrame, scores: pd.DataFrame, ids: pd.DataFrame,
                      config: dict[str, Any] | None = None, have_items: bool = False,
                      plateaus: pd.DataFrame | None = None) -> str:
    """results/findings.md: one verdict per claim from its primary test (beside whether the model's
    runs trained to a plateau), why that test, the noise floor, the power table, then per claim the
    primary rows, the sensitivity rows apart; last, each trained run's plateau check."""
    st = findings_settings(config)
    parts = ["# Findings: the paper's claims as tests", "",
             "One pre-specified **primary test** per claim (config `findings.primary`) gives the claim's verdict. "
             "Every other row is a **sensitivity analysis**: its p-value is Holm-adjusted within the claim and "
             "model, and it never changes the verdict. *Descriptive* rows have no verdict. Each row is per start "
             "model (`model`). Verdicts: *reproduced* = 95% CI on the claimed side of zero (and, where the row "
             "has a test, p < " f"{st['alpha']:g}), *contradicted* = CI on the other side, *inconclusive* = CI "
             "spans zero, n too small, or a zero-width interval (no spread over seeds). Scores are means over the "
             "tasks of a task type, then over task types; retention is chance-corrected (nDCG@10's chance is "
             "that of a random ranking of the task's corpus, accuracy's 1/classes).", ""]
    noise = ("seeds and evaluation items (hierarchical bootstrap: seeds resampled, and within a resample the "
             "same LeeSTS documents and BBC headline queries for every run)" if have_items else
             "seeds only (no item replicates were available for this run)")
    parts += [f"Primary contrasts carry the noise of {noise}; their interval is mean ± t × bootstrap SE (the seed "
              "part of the variance with seeds − 1 degrees of freedom, Welch-Satterthwaite).", ""]
    seeds = scores.groupby(["model", "variant"])["seed"].nunique()
    parts += ["Seeds per variant: " + "; ".join(f"{m}/{v} {n}" for (m, v), n in seeds.items()) + ".", ""]
    if "sample" in ids.columns:
        parts += ["ID rows are given for each text sample (`sample`): `eval` = the evaluation texts, "
                  f"`corpus` = the training-corpus sample; figures use `{headline_ids(ids)['sample'].iloc[0]}`.",
                  ""]
    if table.empty:
        return "\n".join([*parts, "No claim could be tested on this run's tables."]) + "\n"
    verdicts = claim_verdicts(table)
    if len(verdicts):
        v = verdicts.assign(claim_text=[CLAIMS[c] for c in verdicts["claim"]])
        cols = ["claim", "claim_text", "model", "verdict", "tests"]
        if plateaus is not None:
            v = v.assign(training=v["model"].map(lambda m: _training_state(plateaus, m)))
            cols.append("training")
        parts += ["## Verdict per claim (primary test only)", "",
                  _md_table(v[cols]), "",
                  "`tests` > 1: the claim has several parts and each must hold (claim 4)."
                  + (" `training`: how many of the model's trained runs reached a plateau of their loss "
                     "(section 'Did training converge?'); *not converged*: some runs' loss was still changing at "
                     "the end (or they ran too few steps to tell), so the verdict describes training that had not "
                     "finished, not converged training." if plateaus is not None
                     else ""), ""]
    parts += ["## The primary tests and why", ""]
    parts += [f"- Claim {c}: {_primary_why(c, st)}" for c in sorted(set(table["claim"])) if c in PRIMARY_WHY]
    parts += [""]
    parts += _noise_floor_md(scores, st)
    power = power_table(table, st, n_taus=max(1, _n_taus(scores)))
    if len(power):
        pw = power.assign(**{c: power[c].map(_num) for c in ("effect", "sd_seed", "se_item")},
                          **{c: power[c].map(_count) for c in ("seeds_needed", "seeds_needed_4x_items")})
        parts += ["## Power: seeds the primary test would need", "",
                  f"At the observed effect and noise, the seeds each primary test needs for {st['power']:.0%} power "
                  f"at α = {st['alpha']:g} (paired t-test approximation with the seed sd and the item part of the "
                  "SE, which more seeds do not shrink; claim 1 also needs enough seeds for its exact "
                  "permutation test to reach α; claim 3's count is seeds per τ stratum, from a simulation of its "
                  "own verdict rule: the t-interval over the τ strata and the permutation within them). These are "
                  "post-hoc figures at the observed effect, a guide to the next run's size, not a "
                  "re-reading of this one's evidence. `effect` is the part beyond "
                  "the noise floor where the test has one. `∞`: no number of seeds suffices: the item noise "
                  "alone keeps the test out of reach, or the effect lies within the noise floor (more evaluation "
                  "items or clustering / classification experiments are needed). 'inconclusive' with "
                  "`seeds_needed` far above `n_now` means too few seeds, not no effect.", "",
                  _md_table(pw), ""]
    same = same_domain_tasks(config)
    if same:
        parts += ["## Tasks that share a domain with the training corpus", "",
                  f"{', '.join(same)} draw on a source the training corpus also uses "
                  f"({', '.join(map(str, config['training']['corpus']))}): fine-tuning adapts to their domain, "
                  "which lifts their full-size scores apart from τ. Every score-based primary test is repeated "
                  "without them as a sensitivity row ('without same-domain tasks').", ""]
    for claim, g in table.groupby("claim"):
        parts += [f"## Claim {claim}: {CLAIMS[claim]}", ""]
        for role, title, holm_col in [(PRIMARY, "Primary test", False),
                                      (GUARD, "Absolute compressed score beside retention", False),
                                      (SENSITIVITY, "Sensitivity analyses (Holm-adjusted within the claim)", True),
                                      (DESCRIPTIVE, "Descriptive (no verdict)", False)]:
            r = g[g["role"] == role]
            if r.empty:
                continue
            parts += [f"### {title}", ""]
            if role == GUARD:
                parts += ["Retention can rise because the full-size score falls: a τ whose compressed score is "
                          "lower is not a win after compression, whatever its retention (> 0: the "
                          "compression-friendly τ is also better after compression; *contradicted*: it is worse).",
                          ""]
            if role == SENSITIVITY and claim == 2:
                trend = r[r["statistic"].str.startswith("mean within-seed") & (r["dim"] != "")]
                if len(trend):
                    ok = trend.groupby(["model", "method"])["verdict"].apply(lambda v: (v == REPRODUCED).all())
                    parts += ["Holds at every dim (a claim 'at each dim' needs all of them, after Holm): " + "; ".join(
                        f"{m} {meth} {'yes' if y else 'no'}" for (m, meth), y in ok.items()) + ".", ""]
            parts += [_md_table(_show(r, holm_col)), ""]
    missing = sorted(set(CLAIMS) - set(table["claim"]))
    if missing:
        parts += ["## Not testable on this run", ""]
        parts += [f"- Claim {c}: {CLAIMS[c]} (the variants it needs are not in this config)" for c in missing]
        parts += [""]
    if plateaus is not None:
        parts += _plateau_md(plateaus)
    return "\n".join(parts) + "\n"


def _training_state(plateaus: pd.DataFrame, model: str) -> str:
    """'converged (k/n runs plateaued)' when all of a model's trained runs plateaued, else
    'not converged (k/n ...)'; 'not trained' without trained runs."""
    g = plateaus[plateaus["model"] == model]
    if g.empty:
        return "not trained"
    k, n = int(g["plateaued"].sum()), len(g)
    return f"{'converged' if k == n else 'not converged'} ({k}/{n} runs plateaued)"


def _plateau_md(plateaus: pd.DataFrame) -> list[str]:
    head = ["## Did training converge?", "", f"Rule (`tempcompress.convergence`, also in each run's meta.json): "
            f"a run has plateaued when the {PLATEAU_RULE}. `relative_change` is that change, negative while the "
            "loss still falls, ± its standard error (the per-step loss of one batch is noisy: where the error "
            "exceeds the 1% tolerance, a verdict either way is within noise). `window_mean` is the last window's "
            "mean loss.", ""]
    if plateaus.empty:
        return [*head, "No run of this config was trained.", ""]
    show = plateaus.assign(**{c: plateaus[c].map(_num) for c in ("first_loss", "window_mean")},
                           relative_change=[("" if pd.isna(r) else f"{r:+.2%} ± {se:.2%}")
                                            for r, se in zip(plateaus["relative_change"],
                                                             plateaus["relative_change_se"], strict=True)])
    return [*head, _md_table(show[["model", "run", "steps_logged", "first_loss", "window_mean", "relative_change",
                                   "status"]]), ""]


def _num(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.3f}"


def _count(v: float) -> str:
    return "–" if isinstance(v, float) and math.isnan(v) else "∞" if v == math.inf else str(int(v))


def _n_taus(scores: pd.DataFrame) -> int:
    v = core_variant(scores)
    return 0 if v is None else int(scores.loc[scores["variant"] == v, "tau"].nunique())


def _noise_floor_md(scores: pd.DataFrame, st: dict[str, Any]) -> list[str]:
    floor = noise_floor(scores)
    head = ["## Noise floor: a lossless quantizer against the float score", ""]
    if floor.empty:
        return [*head, "No lossless quantizer (float16, bfloat16, int8) was scored at the native dim: the noise "
                f"floor is not measured, and claim 7's margin stays {st['margin']:g}.", ""]
    f = floor.assign(max_abs_gap=floor["max_abs_gap"].map(_num), mean_gap=floor["mean_gap"].map(_num))
    k = st["margin_noise_multiple"]
    margins = "; ".join(f"{m}: {k:g} × floor = {k * floor_of(floor, m):.3f}, "
                        + ("above the margin, so claim 7 reads inconclusive"
                           if unresolvable_margin(st, floor_of(floor, m)) else "within the margin")
                        for m in sorted(set(floor["model"])))
    return [*head, "The same run scored from its float embeddings and from a practically lossless code of them at "
            "the native dim should score the same; the gap is evaluation noise (chiefly k-means in clustering). "
            "A difference between runs smaller than this floor is not evidence. Largest |gap| over runs:", "",
            _md_table(f), "",
            f"Claim 7's non-inferiority margin is pre-specified ({st['margin']:g}) and never widened: where "
            f"{k:g} × the floor on the mean over task types exceeds it, the evaluation cannot resolve a "
            f"difference that small and claim 7 reads inconclusive ({margins}). Every other "
            "score contrast with a verdict (claims 2, 4, 5, 6 and the compressed-score rows) needs its interval "
            f"beyond ±{st['margin_noise_multiple']:g} × the floor of its task type (of the mean over types for "
            "means; for retention, divided by the mean chance-corrected full-size score): a difference the "
            "evaluation itself can produce is no evidence. Lowering the floor needs more clustering "
            "experiments (`evaluation.experiments`; config/precise.yaml).", ""]


def item_noise_markdown(items: pd.DataFrame, scores: pd.DataFrame) -> str:
    """A section comparing the 95% half-width over seeds with the one over test items."""
    from .item_noise import compare_noise

    comp = compare_noise(items, scores)
    if comp.empty:
        return ""
    comp = comp.assign(
        score=comp["score"].map(lambda v: f"{v:.3f}"),
        seed_half_width=[("–" if math.isnan(w) else f"±{w:.3f}") + f" (n={n})"
                         for w, n in zip(comp["seed_half_width"], comp["n_seeds"], strict=True)],
        item_half_width=[f"±{w:.3f} ({n} {u})"
                         for w, n, u in zip(comp["item_half_width"], comp["n_items"], comp["item_unit"], strict=True)],
    ).drop(columns=["n_seeds", "n_items", "item_unit"])
    return "\n".join([
        "## Item-level uncertainty of the small local tasks", "",
        "95% half-widths: over training seeds (t-interval of the mean score) and over test items (bootstrap of "
        "Lee documents / BBC headline queries, recomputed from the cached embeddings; mean over the seeds' "
        "runs). The primary contrasts above include both sources (hierarchical bootstrap); the seed-only "
        "intervals of the sensitivity rows do not: where the item noise is larger, a different test sample "
        "could move such a number by more than another seed would.", "",
        _md_table(comp), ""])


def write_findings(tables: dict[str, str], out_md: str, out_csv: str,
                   config: dict[str, Any] | None = None) -> pd.DataFrame:
    """findings.csv and findings.md (with the item-level section when ``tables["item_noise"]`` exists;
    item replicates from ``tables["item_reps"]`` enter the primary contrasts)."""
    scores = pd.read_parquet(Path(tables["scores"]).with_suffix(".parquet"))
    ids = pd.read_parquet(Path(tables["intrinsic_dim"]).with_suffix(".parquet"))
    reps = None
    if tables.get("item_reps") and Path(tables["item_reps"]).is_file():
        reps = pd.read_parquet(tables["item_reps"]).astype({"dim": str, "run": str, "task": str})
    loss = None
    if tables.get("training_loss") and Path(tables["training_loss"]).with_suffix(".parquet").is_file():
        loss = pd.read_parquet(Path(tables["training_loss"]).with_suffix(".parquet"))
    table = findings_table(scores, ids, reps, config)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    text = findings_markdown(table, scores, ids, config, have_items=reps is not None and not reps.empty,
                             plateaus=plateau_table(loss) if loss is not None else None)
    if tables.get("item_noise") and Path(tables["item_noise"]).is_file():
        text += "\n" + item_noise_markdown(pd.read_csv(tables["item_noise"], dtype={"dim": str}), scores)
    Path(out_md).write_text(text)
    return table
