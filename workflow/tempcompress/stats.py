"""Confidence intervals and trend statistics over seeds, shared by figures, summary and findings.

The unit of replication is the training seed: a confidence interval says how much a number
would move with another draw of seeds (training order, crops, initialisation), given the
same evaluation data.  All intervals are 95% and two-sided.

- ``mean_ci``: t-interval of a mean over seeds (mean ± t(0.975, n-1) · sd / √n).  One value
  gives no interval (NaN bounds), never a zero-width one.
- ``spearman_ci``: Spearman's ρ over runs with the Fisher-z interval and the Bonett-Wright
  variance (1 + ρ²/2) / (n - 3).
- ``seed_trend``: a trend with temperature: Spearman's ρ(log τ, y) within each seed, then the
  t-interval of its mean over seeds; ``trend_pvalue``: its exact permutation test (Page).
- ``verdict``: reproduced / contradicted / inconclusive from a CI and the expected sign; a
  zero-width interval (identical values across seeds) is inconclusive unless an exact test's
  p-value carries the evidence.
- ``hierarchical_contrast``: a paired contrast over seeds whose noise comes from two sources,
  seeds and evaluation items: seeds are resampled, and within a resample every run is scored
  on the same item resample; the interval is mean ± t · bootstrap SE (Welch-Satterthwaite df).
- ``ttest_p`` / ``holm``: a one-sample t-test's two-sided p and Holm's step-down adjustment
  (sensitivity analyses are adjusted within their claim).
- ``seeds_needed``: seeds a paired t-test would need for 80% power at an effect and noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

LEVEL = 0.95
MIN_SEEDS = 2  # fewer replicates than this give no interval and an 'inconclusive' verdict
MIN_RUNS_FOR_RHO = 4  # Fisher z of a rank correlation needs n > 3

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


@dataclass(frozen=True)
class Estimate:
    """An effect size with its 95% interval and the number of replicates behind it."""

    value: float
    lo: float
    hi: float
    n: int

    def as_dict(self, prefix: str = "") -> dict[str, float | int]:
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def mean_ci(values: Sequence[float] | np.ndarray | pd.Series, level: float = LEVEL) -> Estimate:
    """Mean with its t-interval; NaNs are dropped; n < 2 gives NaN bounds (no interval)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    m = float(x.mean())
    if n < MIN_SEEDS:
        return Estimate(m, math.nan, math.nan, n)
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return Estimate(m, m - half, m + half, n)


def summarise(df: pd.DataFrame, keys: list[str], value: str, level: float = LEVEL) -> pd.DataFrame:
    """Per group of ``keys``: mean, ci_lo, ci_hi (t-interval over the group's rows) and n.

    Each row of ``df`` must be one replicate (one seed); average over tasks before calling.
    """
    keys = [k for k in keys if k in df.columns]
    rows = []
    for key, g in df.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        est = mean_ci(g[value], level)
        rows.append({**dict(zip(keys, key, strict=True)), "mean": est.value, "ci_lo": est.lo, "ci_hi": est.hi,
                     "n": est.n})
    cols = [*keys, "mean", "ci_lo", "ci_hi", "n"]
    return pd.DataFrame(rows, columns=cols)


def spearman_ci(x: Sequence[float], y: Sequence[float], level: float = LEVEL) -> Estimate:
    """Spearman's ρ with a Fisher-z interval (Bonett-Wright variance); NaN pairs are dropped."""
    a = pd.DataFrame({"x": np.asarray(x, dtype=float), "y": np.asarray(y, dtype=float)}).dropna()
    n = len(a)
    if n < 3 or a["x"].nunique() < 2 or a["y"].nunique() < 2:
        return Estimate(math.nan, math.nan, math.nan, n)
    rho = float(a["x"].rank().corr(a["y"].rank()))
    if n < MIN_RUNS_FOR_RHO:
        return Estimate(rho, math.nan, math.nan, n)
    if abs(rho) >= 1.0:
        return Estimate(rho, rho, rho, n)
    z = math.atanh(rho)
    se = math.sqrt((1 + rho**2 / 2) / (n - 3))
    q = float(sps.norm.ppf(0.5 + level / 2))
    return Estimate(rho, math.tanh(z - q * se), math.tanh(z + q * se), n)


def within_seed_rho(df: pd.DataFrame, x: str, y: str, seed: str = "seed") -> pd.Series:
    """Spearman's ρ(x, y) inside each seed (seeds with < 3 distinct x are dropped)."""
    out = {}
    for s, g in df.groupby(seed):
        g = g[[x, y]].dropna()
        if g[x].nunique() >= 3 or (g[x].nunique() == 2 and len(g) == 2):
            if g[y].nunique() < 2:
                out[s] = 0.0
            else:
                out[s] = float(g[x].rank().corr(g[y].rank()))
    return pd.Series(out, dtype=float)


def seed_trend(df: pd.DataFrame, x: str, y: str, seed: str = "seed", level: float = LEVEL) -> Estimate:
    """Trend of y with x: mean over seeds of the within-seed Spearman ρ, with its t-interval.

    A table where y rises with x in every seed gives ρ = 1 with a [1, 1] interval; one seed
    gives ρ without an interval.  (The mean within-seed ρ is Page's trend statistic; see
    ``trend_pvalue`` for its exact permutation test.)
    """
    rhos = within_seed_rho(df, x, y, seed)
    est = mean_ci(rhos.to_numpy(), level)
    if est.n >= MIN_SEEDS and np.allclose(rhos, rhos.iloc[0]):
        return Estimate(est.value, est.value, est.value, est.n)
    return Estimate(est.value, max(est.lo, -1.0), min(est.hi, 1.0), est.n)


def trend_pvalue(df: pd.DataFrame, x: str, y: str, seed: str = "seed", n_perm: int = 20000,
                 rng_seed: int = 0) -> float:
    """Two-sided permutation p-value of the mean within-seed Spearman ρ (Page's trend test).

    Under 'no trend', y is exchangeable across x inside each seed: the y-ranks of every seed are
    permuted independently (exactly when there are at most ``n_perm`` permutations, else by
    ``n_perm`` fixed-seed random draws, p = (1 + #{|T*| ≥ |T|}) / (1 + n_perm)).  It guards the
    verdicts against the t-interval's optimism with few seeds and few temperatures, where
    within-seed ρ takes a handful of values.
    """
    blocks = []
    for _, g in df.groupby(seed):
        g = g[[x, y]].dropna()
        if g[x].nunique() < 2 or len(g) < 2:
            continue
        rx = g[x].rank().to_numpy()
        ry = g[y].rank().to_numpy()
        blocks.append((rx - rx.mean(), ry - ry.mean()))
    if not blocks:
        return math.nan

    def rho(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        den = math.sqrt(float((cx**2).sum()) * float((cy**2).sum()))
        return (cy @ cx) / den if den > 0 else np.zeros(cy.shape[:-1])

    observed = float(np.mean([rho(cx, cy) for cx, cy in blocks]))
    sizes = [len(cx) for cx, _ in blocks]
    total = math.prod(math.factorial(k) for k in sizes)
    if total <= n_perm:
        import itertools

        per_block = [np.array([rho(cx, cy[list(p)]) for p in itertools.permutations(range(len(cy)))])
                     for cx, cy in blocks]
        stats_ = np.zeros(1)
        for vals in per_block:
            stats_ = (stats_[:, None] + vals[None, :]).ravel()
        stats_ /= len(blocks)
        return float(np.mean(np.abs(stats_) >= abs(observed) - 1e-12))
    rng = np.random.default_rng(rng_seed)
    acc = np.zeros(n_perm)
    for cx, cy in blocks:
        perms = np.argsort(rng.random((n_perm, len(cy))), axis=1)
        acc += rho(cx, cy[perms])
    acc /= len(blocks)
    return float((1 + np.sum(np.abs(acc) >= abs(observed) - 1e-12)) / (1 + n_perm))


def paired_difference(a: pd.Series, b: pd.Series, level: float = LEVEL) -> Estimate:
    """Mean of a - b over the shared index (e.g. seeds), with its t-interval."""
    d = (a - b).dropna()
    return mean_ci(d.to_numpy(), level)


def verdict(est: Estimate, expected_sign: int, min_n: int = MIN_SEEDS, p_value: float | None = None,
            alpha: float = 1 - LEVEL) -> str:
    """'reproduced' if the CI lies on the expected side of zero, 'contradicted' if on the other,
    else (CI spans zero, no CI, fewer than ``min_n`` replicates, or a given test's
    ``p_value`` ≥ alpha) 'inconclusive'.  A zero-width CI (no spread over replicates) is
    'inconclusive' unless a test's ``p_value`` is given: then the test carries the evidence."""
    if est.n < min_n or math.isnan(est.lo) or math.isnan(est.hi):
        return INCONCLUSIVE
    if p_value is not None and not (p_value < alpha):
        return INCONCLUSIVE
    if p_value is None and zero_width(est):
        return INCONCLUSIVE
    if expected_sign > 0:
        if est.lo > 0:
            return REPRODUCED
        if est.hi < 0:
            return CONTRADICTED
    else:
        if est.hi < 0:
            return REPRODUCED
        if est.lo > 0:
            return CONTRADICTED
    return INCONCLUSIVE


def fmt_ci(mean: float, lo: float, hi: float, n: int, digits: int = 3) -> str:
    """'0.812 [0.790, 0.834] (n=3)'; one replicate: '0.812 (n=1)'."""
    if n == 0 or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if math.isnan(lo) or math.isnan(hi):
        return f"{mean:.{digits}f} (n={n})"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] (n={n})"


def zero_width(est: Estimate) -> bool:
    """True when an interval exists but has no width (identical values across replicates)."""
    return not (math.isnan(est.lo) or math.isnan(est.hi)) and est.hi - est.lo <= 1e-12 * max(1.0, abs(est.value))


def ttest_p(values: Sequence[float] | np.ndarray) -> float:
    """Two-sided p of a one-sample t-test of mean 0; NaN for < 2 values or zero variance."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < MIN_SEEDS or np.ptp(x) == 0:
        return math.nan
    return float(sps.ttest_1samp(x, 0.0).pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count as tests)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="mergesort")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


@dataclass(frozen=True)
class Contrast:
    """A paired contrast over seeds with both noise sources: the estimate, the two-sided p of
    its t-statistic, the per-seed standard deviation and the item part of the standard error."""

    est: Estimate
    p_value: float
    sd_seed: float
    se_item: float


def hierarchical_contrast(per_seed: np.ndarray, n_boot: int = 2000, seed: int = 0,
                          level: float = LEVEL) -> Contrast:
    """Mean over seeds of a per-seed contrast, with a paired hierarchical bootstrap interval.

    ``per_seed`` has shape (item replicates, seeds): row r is every seed's contrast computed on
    item resample r (the same items for every run), row 0 conventionally on the observed items;
    a 1-D array means no item data (seed noise only).  Each bootstrap draw resamples the seeds
    with replacement and takes one item replicate.  The draws' variance splits into an item part
    (the variance over item replicates of the mean over seeds) and a seed part, rescaled by
    n/(n-1) for the bias of resampling n seeds; the interval is mean ± t(0.975, df)·SE with the
    Welch-Satterthwaite df (n-1 for the seed part, unbounded for the item part), and p the
    t-statistic's.  The point estimate uses the observed items
    (row 0).  Fewer than 2 seeds, or a zero SE, give no decisive interval.
    """
    c = np.atleast_2d(np.asarray(per_seed, dtype=float))
    c = c[:, ~np.isnan(c[0])]
    n = c.shape[1]
    if n == 0:
        return Contrast(Estimate(math.nan, math.nan, math.nan, 0), math.nan, math.nan, math.nan)
    mean = float(c[0].mean())
    sd_seed = float(c[0].std(ddof=1)) if n >= 2 else math.nan
    se_item = float(c.mean(axis=1).std(ddof=1)) if c.shape[0] > 1 else 0.0
    if n < MIN_SEEDS:
        return Contrast(Estimate(mean, math.nan, math.nan, n), math.nan, sd_seed, se_item)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, c.shape[0], n_boot)
    cols = rng.integers(0, n, (n_boot, n))
    draws = c[rows[:, None], cols].mean(axis=1)
    v_item = se_item**2
    v_seed = max(float(draws.var(ddof=1)) - v_item, 0.0) * n / (n - 1)
    se = math.sqrt(v_seed + v_item)
    if not se > 1e-12 * max(1.0, abs(mean)):
        return Contrast(Estimate(mean, mean, mean, n), math.nan, sd_seed, se_item)
    # Welch-Satterthwaite: the seed part has n - 1 degrees of freedom, the item part (hundreds of
    # items) practically infinitely many
    df = (v_seed + v_item) ** 2 / (v_seed**2 / (n - 1)) if v_seed > 0 else math.inf
    tq = float(sps.t.ppf(0.5 + level / 2, df))
    p = float(2 * sps.t.sf(abs(mean) / se, df))
    return Contrast(Estimate(mean, mean - tq * se, mean + tq * se, n), p, sd_seed, se_item)


def power_t(effect: float, sd_seed: float, se_item: float, n: int, alpha: float = 1 - LEVEL) -> float:
    """Power of the two-sided t-test of a mean over n seeds with per-seed sd ``sd_seed`` and an
    item part ``se_item`` of the standard error that more seeds do not shrink."""
    if n < 2 or not np.isfinite(effect) or not np.isfinite(sd_seed):
        return math.nan
    se = math.sqrt(sd_seed**2 / n + se_item**2)
    if se == 0:
        return math.nan
    nc = abs(effect) / se
    tq = float(sps.t.ppf(1 - alpha / 2, n - 1))
    pw = float(sps.nct.sf(tq, n - 1, nc) + sps.nct.cdf(-tq, n - 1, nc))
    return pw if np.isfinite(pw) else float(sps.norm.sf(tq - nc))  # nct fails far in the tail


def seeds_needed(effect: float, sd_seed: float, se_item: float = 0.0, power: float = 0.8,
                 alpha: float = 1 - LEVEL, max_n: int = 1000) -> float:
    """Smallest number of seeds whose t-test reaches ``power`` at this effect and noise; inf when
    the item noise alone keeps it out of reach (more items needed), NaN without an estimate."""
    if not (np.isfinite(effect) and np.isfinite(sd_seed)) or effect == 0:
        return math.nan
    for n in range(2, max_n + 1):
        pw = power_t(effect, sd_seed, se_item, n, alpha)
        if math.isnan(pw):
            return math.nan
        if pw >= power:
            return float(n)
    return math.inf


def strata_rho_power(rho: float, n_strata: int, seeds: int, alpha: float = 1 - LEVEL, n_sim: int = 400,
                     rng_seed: int = 0) -> float:
    """Power of claim 3's verdict rule by simulation: ``n_strata`` τ strata of ``seeds`` runs each,
    (ID, retention) bivariate normal with Spearman ρ = ``rho`` inside every stratum; the rule
    needs the t-interval of the mean within-stratum ρ (df ``n_strata`` - 1) on the side of ``rho``
    and an exact permutation test within strata that can reach ``alpha`` at all
    ((seeds!)^n_strata ≥ 2 / alpha).  A zero-width interval (every stratum at ±1) counts when its
    sign is right, as the permutation test then decides."""
    if n_strata < 2 or seeds < 3 or not np.isfinite(rho) or rho == 0:
        return math.nan
    if math.factorial(seeds) ** n_strata < 2 / alpha:
        return 0.0
    rng = np.random.default_rng(rng_seed)
    r = 2 * math.sin(math.pi * abs(rho) / 6)  # the Pearson r of a bivariate normal with Spearman |rho|
    x = rng.standard_normal((n_sim, n_strata, seeds))
    y = r * x + math.sqrt(max(1 - r * r, 0.0)) * rng.standard_normal(x.shape)
    rx = x.argsort(-1).argsort(-1) - (seeds - 1) / 2
    ry = y.argsort(-1).argsort(-1) - (seeds - 1) / 2
    rhos = (rx * ry).sum(-1) / (rx * rx).sum(-1)  # Spearman: both rank vectors have the same norm
    mean, sd = rhos.mean(-1), rhos.std(-1, ddof=1)
    half = float(sps.t.ppf(1 - alpha / 2, n_strata - 1)) * sd / math.sqrt(n_strata)
    return float(np.mean(mean - half > 0))


def strata_rho_seeds_needed(rho: float, n_strata: int, power: float = 0.8, alpha: float = 1 - LEVEL,
                            max_seeds: int = 40) -> float:
    """Smallest number of seeds per τ stratum at which claim 3's verdict rule reaches ``power`` at a
    within-stratum Spearman ρ of ``rho`` (``strata_rho_power``); inf beyond ``max_seeds``."""
    if not np.isfinite(rho) or rho == 0 or n_strata < 2:
        return math.nan
    for k in range(3, max_seeds + 1):
        if strata_rho_power(min(abs(rho), 0.999), n_strata, k, alpha) >= power:
            return float(k)
    return math.inf
