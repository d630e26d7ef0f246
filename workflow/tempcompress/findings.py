"""The paper's claims as tests with effect sizes, 95% CIs and verdicts (results/findings.md + .csv).

Each claim is tested per model (never pooled over models) and, where it applies, per ID
estimator / ID sample, compression method, target dim or task type.  Scores are means over the
tasks of a task type, then over task types; retention is chance-corrected
((score - chance) / (full - chance)).  Verdicts (``stats.verdict``): *reproduced* when the 95%
CI lies on the claimed side of zero, *contradicted* when it lies on the other side,
*inconclusive* when it spans zero or n is too small (one seed, or < 4 runs for a correlation).

Statistics:
- trends with τ (claims 1, 2, 4): Spearman ρ(log τ, y) within each seed over the τ grid, averaged
  over seeds; 95% t-interval over seeds (n = seeds).  A perfectly monotone table gives ρ = 1.
  With few seeds and temperatures within-seed ρ takes few values and the t-interval is
  optimistic, so a verdict also needs the exact permutation test of the same statistic
  (Page's trend test, y permuted within seeds) at p < 0.05: 3 seeds can reproduce a trend, 2 cannot.
- ID vs retention over runs (claim 3): Spearman ρ over all runs of a model, Fisher-z interval
  with the Bonett-Wright variance (n = runs; runs of one seed are not independent replicates of
  the τ effect, so read it as descriptive of the grid).
- comparisons (claims 5, 6, 7): mean difference paired by seed (t-interval over seeds); without
  two shared seeds, Welch's interval on the unpaired means; one seed on either side gives no CI.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .stats import (
    INCONCLUSIVE,
    LEVEL,
    MIN_RUNS_FOR_RHO,
    Estimate,
    fmt_ci,
    mean_ci,
    seed_trend,
    spearman_ci,
    trend_pvalue,
    verdict,
)
from .tables import core_variant, headline_ids, id_samples, per_run, per_run_type, tau_float

CLAIMS = {
    1: "ID falls as τ rises",
    2: "Retention after truncation and after binarization rises with τ, at each target dim",
    3: "ID predicts retention across all runs (lower ID, higher retention)",
    4: "Low τ is better for retrieval, high τ for clustering (full-size score)",
    5: "Temperature aggregation beats the best single τ on the trade-off between full-size and compressed score",
    6: "Cropping beats dropout at equal τ (full-size score)",
    7: "High τ is not worse than Matryoshka training at the smallest dims (non-inferiority, margin 0.01)",
}
NONINF_MARGIN = 0.01  # claim 7: main-score units
COLUMNS = ["claim", "claim_text", "model", "variant", "subject", "sample", "method", "dim", "statistic", "effect",
           "ci_lo", "ci_hi", "n", "n_unit", "p_value", "expected", "verdict", "note"]


def _row(claim: int, model: str, est: Estimate, statistic: str, n_unit: str, expected: str, verdict_: str,
         **kw: Any) -> dict[str, Any]:
    row = {"claim": claim, "claim_text": CLAIMS[claim], "model": model, "statistic": statistic,
           "effect": est.value, "ci_lo": est.lo, "ci_hi": est.hi, "n": est.n, "n_unit": n_unit,
           "expected": expected, "verdict": verdict_}
    row.update(kw)
    if verdict_ == INCONCLUSIVE and "note" not in kw:
        if est.n < 2 or math.isnan(est.lo):
            row["note"] = f"n too small (n={est.n} {n_unit})" if est.n else "fewer than 2 temperatures or no data"
        elif est.lo <= 0 <= est.hi:
            row["note"] = "CI spans zero"
        else:
            row["note"] = f"permutation p = {kw.get('p_value', math.nan):.3f} ≥ 0.05"
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


# ---- the claims --------------------------------------------------------------------------------


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
                                 "< 0", verdict(est, -1, min_n=MIN_RUNS_FOR_RHO), subject=est_name, sample=sample,
                                 method=method, dim=str(dim), variant="all runs"))
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


def claim_aggregation(scores: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    variant = core_variant(scores)
    if variant is None:
        return rows
    runs = per_run(scores, "score")
    full = runs[runs["method"] == "none"][["run", "score"]].rename(columns={"score": "full"})
    aggs = sorted(set(scores.loc[scores["kind"].isin(["multi_temperature", "soup"]), "variant"]))
    for method in ("truncation", "binarization"):
        comp = _smallest(runs[runs["method"] == method])
        if comp.empty:
            continue
        t = comp.merge(full, on="run")
        t["tradeoff"] = (t["full"] + t["score"]) / 2
        for model, m in t.groupby("model"):
            single = m[m["variant"] == variant]
            if single.empty:
                continue
            best_tau = single.groupby("tau")["tradeoff"].mean().idxmax()
            best = _by_seed(single[single["tau"] == best_tau], "tradeoff")
            for agg in aggs:
                a = m[m["variant"] == agg]
                if a.empty:
                    continue
                est, how = diff_estimate(_by_seed(a, "tradeoff"), best)
                rows.append(_row(5, model, est, f"(full + compressed)/2 of the aggregation minus {variant} at its "
                                 f"best τ, {how}", "seeds", "> 0", verdict(est, +1), variant=agg,
                                 method=method, dim=str(m["dim"].iloc[0]), subject=f"vs {variant} τ={best_tau}"))
    return rows


def claim_crop_vs_dropout(scores: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    crop, drop = core_variant(scores, "crop"), core_variant(scores, "dropout")
    if crop is None or drop is None:
        return rows
    full = per_run(scores[scores["method"] == "none"], "score")
    for model, m in full.groupby("model"):
        c, d = m[m["variant"] == crop], m[m["variant"] == drop]
        pairs = []
        for tau in sorted(set(c["tau"]) & set(d["tau"]), key=float):
            a, b = _by_seed(c[c["tau"] == tau], "score"), _by_seed(d[d["tau"] == tau], "score")
            est, how = diff_estimate(a, b)
            rows.append(_row(6, model, est, f"full-size score, {crop} minus {drop}, {how}", "seeds", "> 0",
                             verdict(est, +1), variant=f"{crop} vs {drop}", subject=f"τ={tau}"))
            shared = a.index.intersection(b.index)
            pairs += list((a[shared] - b[shared]).to_numpy())
        if pairs:
            est = mean_ci(pairs)
            rows.append(_row(6, model, est, f"full-size score, {crop} minus {drop}, paired by (τ, seed)",
                             "(τ, seed) pairs", "> 0", verdict(est, +1), variant=f"{crop} vs {drop}",
                             subject="all τ"))
    return rows


def claim_matryoshka(scores: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    variant = core_variant(scores)
    mrls = sorted(set(scores.loc[scores["kind"].isin(["matryoshka", "matryoshka2d"]), "variant"]))
    if variant is None or not mrls:
        return rows
    trunc = per_run(scores[scores["method"] == "truncation"], "score")
    for model, m in trunc.groupby("model"):
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
                        shifted = Estimate(est.value + NONINF_MARGIN, est.lo + NONINF_MARGIN,
                                           est.hi + NONINF_MARGIN, est.n)
                        v = verdict(shifted, +1)
                        note = {"note": f"CI spans -{NONINF_MARGIN}"} if v == INCONCLUSIVE and est.n >= 2 and not \
                            math.isnan(est.lo) else {}
                        rows.append(_row(7, model, est, f"truncated score, {variant} minus the Matryoshka run, {how}",
                                         "seeds", f"> -{NONINF_MARGIN}", v, **note, variant=f"{variant} vs {mrl}",
                                         method="truncation", dim=str(int(dim)),
                                         subject=f"{variant} τ={tau} ({label}) vs {mrl} τ={mrl_tau}"))
    return rows


def findings_table(scores: pd.DataFrame, ids: pd.DataFrame) -> pd.DataFrame:
    """Every claim's rows (see module docstring); one row per test."""
    rows = (claim_id_falls(ids) + claim_retention_rises(scores) + claim_id_predicts_retention(scores, ids)
            + claim_task_type_tradeoff(scores) + claim_aggregation(scores) + claim_crop_vs_dropout(scores)
            + claim_matryoshka(scores))
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = "" if c not in ("effect", "ci_lo", "ci_hi", "n", "p_value") else math.nan
    return df[COLUMNS].fillna({"variant": "", "subject": "", "sample": "", "method": "", "dim": "", "note": ""})


# ---- Markdown ------------------------------------------------------------------------------------


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def findings_markdown(table: pd.DataFrame, scores: pd.DataFrame, ids: pd.DataFrame) -> str:
    """results/findings.md: the verdict counts, then one table per claim."""
    parts = ["# Findings: the paper's claims as tests", "",
             "Each row is one test, per start model (the `model` column: claims can hold for one start and not "
             "another). Effect sizes carry a 95% confidence interval and n; verdict *reproduced* = CI on the "
             "claimed side of zero, *contradicted* = CI on the other side, *inconclusive* = CI spans zero or n "
             "too small (one seed; < 4 runs for a correlation). Trends with τ: Spearman ρ(log τ, y) within "
             "each seed, mean over seeds with a t-interval over seeds; a trend verdict also needs its exact "
             "permutation test (y permuted within seeds, Page's test) at p < 0.05. ID vs retention: "
             "Spearman ρ over runs, "
             "Fisher-z interval. Comparisons: mean difference paired by seed (t-interval), else Welch. Scores "
             "are means over the tasks of a task type, then over task types; retention is chance-corrected. "
             "Uncertainty is over training seeds only: the evaluation items are fixed (item-level noise is "
             "not included).", ""]
    seeds = scores.groupby(["model", "variant"])["seed"].nunique()
    parts += ["Seeds per variant: " + "; ".join(f"{m}/{v} {n}" for (m, v), n in seeds.items()) + ".", ""]
    if "sample" in ids.columns:
        parts += ["ID rows are given for each text sample (`sample`): `eval` = the evaluation texts, "
                  f"`corpus` = the training-corpus sample; figures use `{headline_ids(ids)['sample'].iloc[0]}`.",
                  ""]
    if table.empty:
        return "\n".join([*parts, "No claim could be tested on this run's tables."]) + "\n"
    counts = table.groupby(["claim", "verdict"]).size().unstack(fill_value=0)
    counts.insert(0, "claim_text", [CLAIMS[c] for c in counts.index])
    parts += ["## Verdicts per claim (number of tests)", _md_table(counts.reset_index()), ""]
    for claim, g in table.groupby("claim"):
        show = g.copy()
        show["effect [95% CI] (n)"] = [fmt_ci(r.effect, r.ci_lo, r.ci_hi, int(r.n)) + (f" {r.n_unit}" if r.n else "")
                                       for r in g.itertuples()]
        keep = [c for c in ["model", "variant", "subject", "sample", "method", "dim"] if (show[c] != "").any()]
        extra = []
        if g["p_value"].notna().any():
            show["perm. p"] = [f"{p:.3f}" if not math.isnan(p) else "–" for p in g["p_value"]]
            extra = ["perm. p"]
        show = show[[*keep, "effect [95% CI] (n)", *extra, "expected", "verdict", "note"]]
        parts += [f"## Claim {claim}: {CLAIMS[claim]}", "", f"Statistic: {g['statistic'].iloc[0]}.", "",
                  _md_table(show), ""]
    missing = sorted(set(CLAIMS) - set(table["claim"]))
    if missing:
        parts += ["## Not testable on this run", ""]
        parts += [f"- Claim {c}: {CLAIMS[c]} (the variants it needs are not in this config)" for c in missing]
    return "\n".join(parts) + "\n"


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
        "runs). The seed intervals above do not include the item noise: where it is larger, a different "
        "test sample could move a number by more than another seed would.", "",
        _md_table(comp), ""])


def write_findings(tables: dict[str, str], out_md: str, out_csv: str) -> pd.DataFrame:
    """findings.csv and findings.md (with the item-level section when ``tables["item_noise"]`` exists)."""
    scores = pd.read_parquet(Path(tables["scores"]).with_suffix(".parquet"))
    ids = pd.read_parquet(Path(tables["intrinsic_dim"]).with_suffix(".parquet"))
    table = findings_table(scores, ids)
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    text = findings_markdown(table, scores, ids)
    if tables.get("item_noise") and Path(tables["item_noise"]).is_file():
        text += "\n" + item_noise_markdown(pd.read_csv(tables["item_noise"], dtype={"dim": str}), scores)
    Path(out_md).write_text(text)
    return table
