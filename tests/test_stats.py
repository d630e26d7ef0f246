"""Confidence intervals and verdicts on data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tempcompress.findings import diff_estimate
from tempcompress.stats import (
    CONTRADICTED,
    INCONCLUSIVE,
    REPRODUCED,
    Estimate,
    hierarchical_contrast,
    holm,
    mean_ci,
    seed_trend,
    seeds_needed,
    spearman_ci,
    summarise,
    trend_pvalue,
    verdict,
)


def _monotone(n_seeds: int, taus=(0.01, 0.1, 1.0), sign: int = 1) -> pd.DataFrame:
    return pd.DataFrame([{"seed": str(s), "log_tau": math.log10(t), "y": sign * (10 * math.log10(t) + 0.01 * s)}
                         for s in range(n_seeds) for t in taus])


def test_t_interval_covers_the_true_mean_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(4000):
        est = mean_ci(rng.normal(1.0, 2.0, 5))
        hits.append(est.lo < 1.0 < est.hi)
    assert 0.935 < np.mean(hits) < 0.965  # a z-interval (no t) would cover ~0.88 at n = 5


def test_spearman_interval_coverage_near_95_percent() -> None:
    rng = np.random.default_rng(1)
    true_rho = 6 / math.pi * math.asin(0.5 / 2)  # Spearman's ρ of a bivariate normal with r = 0.5
    hits = []
    for _ in range(1000):
        z = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], 40)
        est = spearman_ci(z[:, 0], z[:, 1])
        hits.append(est.lo < true_rho < est.hi)
    assert 0.92 < np.mean(hits) < 0.98


def test_one_replicate_gives_no_interval_never_a_zero_width_one() -> None:
    est = mean_ci([0.7])
    assert est.value == 0.7 and est.n == 1 and math.isnan(est.lo) and math.isnan(est.hi)
    assert verdict(est, +1) == INCONCLUSIVE
    s = summarise(pd.DataFrame({"g": ["a", "a", "b"], "v": [1.0, 3.0, 5.0]}), ["g"], "v")
    assert s.set_index("g").loc["b", "n"] == 1 and math.isnan(s.set_index("g").loc["b", "ci_lo"])
    a = s.set_index("g").loc["a"]
    assert a["n"] == 2 and a["ci_lo"] < 2.0 < a["ci_hi"]
    assert a["ci_hi"] - 2.0 == pytest.approx(12.706, rel=1e-3)  # t(0.975, 1) · sd/√n


def test_perfectly_monotone_table_gives_rho_one_and_reproduced() -> None:
    df = _monotone(3)
    est = seed_trend(df, "log_tau", "y")
    assert (est.value, est.lo, est.hi, est.n) == (1.0, 1.0, 1.0, 3)
    p = trend_pvalue(df, "log_tau", "y")
    assert p == pytest.approx(2 / 6**3)  # exact: all 3 seeds in order, either direction
    assert verdict(est, +1, p_value=p) == REPRODUCED
    assert verdict(est, -1, p_value=p) == CONTRADICTED
    falling = _monotone(3, sign=-1)
    est = seed_trend(falling, "log_tau", "y")
    assert est.value == -1.0 and verdict(est, -1, p_value=trend_pvalue(falling, "log_tau", "y")) == REPRODUCED


def test_two_seeds_or_one_seed_are_too_few_for_a_trend_verdict() -> None:
    for n in (1, 2):
        df = _monotone(n)
        est = seed_trend(df, "log_tau", "y")
        p = trend_pvalue(df, "log_tau", "y")
        assert verdict(est, +1, p_value=p) == INCONCLUSIVE


def test_shuffled_seeds_are_inconclusive() -> None:
    """τ labels permuted within each seed: no trend; verdicts must be 'inconclusive' (≥ 95% of the time)."""
    rng = np.random.default_rng(2)
    base = _monotone(5, taus=(0.01, 0.03, 0.1, 0.3, 1.0))
    verdicts = []
    for _ in range(100):
        df = base.copy()
        df["y"] = df.groupby("seed")["y"].transform(lambda v: rng.permutation(v.to_numpy()))
        est = seed_trend(df, "log_tau", "y")
        verdicts.append(verdict(est, +1, p_value=trend_pvalue(df, "log_tau", "y", n_perm=2000)))
    assert np.mean([v == INCONCLUSIVE for v in verdicts]) >= 0.93
    # the t-interval alone is optimistic here: the permutation test is what keeps this near 5%
    no_test = []
    for _ in range(100):
        df = base.copy()
        df["y"] = df.groupby("seed")["y"].transform(lambda v: rng.permutation(v.to_numpy()))
        no_test.append(verdict(seed_trend(df, "log_tau", "y"), +1))
    assert np.mean([v == INCONCLUSIVE for v in no_test]) <= np.mean([v == INCONCLUSIVE for v in verdicts])


def test_spearman_of_a_monotone_relation_is_one() -> None:
    est = spearman_ci([1, 2, 3, 4, 5, 6], [2, 4, 8, 16, 32, 64])
    assert (est.value, est.lo, est.hi, est.n) == (1.0, 1.0, 1.0, 6)
    assert verdict(est, +1, min_n=4) == INCONCLUSIVE  # a zero-width interval without a test decides nothing
    assert verdict(est, +1, min_n=4, p_value=0.001) == REPRODUCED
    assert verdict(spearman_ci([1, 2, 3], [1, 2, 3]), +1, min_n=4) == INCONCLUSIVE  # too few runs


def test_paired_and_unpaired_differences() -> None:
    a = pd.Series([1.0, 2.0, 3.0], index=["0", "1", "2"])
    b = a - 0.5 + pd.Series([0.01, -0.01, 0.0], index=a.index)
    est, how = diff_estimate(a, b)
    assert how == "paired by seed" and est.value == pytest.approx(0.5) and est.lo > 0.4 and est.n == 3
    est, how = diff_estimate(a, pd.Series([0.0], index=["7"]))  # one seed on one side
    assert how == "unpaired" and est.value == pytest.approx(2.0) and math.isnan(est.lo)
    est, how = diff_estimate(a, pd.Series([0.0, 0.2], index=["7", "8"]))
    assert how.startswith("unpaired (Welch)") and est.lo < est.value < est.hi


def test_zero_variance_is_inconclusive() -> None:
    """Identical differences across seeds: a zero-width interval, never a decisive verdict."""
    a = pd.Series([0.7, 0.8, 0.9], index=["0", "1", "2"])
    est, _ = diff_estimate(a, a - 0.1)
    assert est.lo == pytest.approx(est.hi) and verdict(est, +1) == INCONCLUSIVE
    c = hierarchical_contrast(np.full(3, 0.1))
    assert c.est.lo == c.est.hi and verdict(c.est, +1) == INCONCLUSIVE and math.isnan(c.p_value)
    assert verdict(Estimate(0.1, 0.1, 0.1, 3), +1) == INCONCLUSIVE


def test_holm_known_values() -> None:
    adj = holm([0.01, 0.04, 0.03, math.nan, 0.5])
    np.testing.assert_allclose(adj[[0, 2, 1, 4]], [0.04, 0.09, 0.09, 0.5])
    assert math.isnan(adj[3])


def _simulate(rng: np.random.Generator, n_seeds: int, n_items: int, n_rep: int, effect: float,
              sd_seed: float, sd_item: float) -> np.ndarray:
    """Per-seed contrasts on the observed items (row 0) and on n_rep item resamples (rows 1..):
    seed effect + the mean of item effects over the drawn items (the same items for every seed)."""
    items = rng.normal(0, sd_item, n_items)  # the item main effect on the contrast
    seeds = effect + rng.normal(0, sd_seed, n_seeds) + rng.normal(0, sd_item / 3, (n_items, n_seeds)).mean(0)
    draws = rng.integers(0, n_items, (n_rep, n_items))
    obs = seeds + items.mean()
    reps = seeds[None, :] + items[draws].mean(axis=1)[:, None]
    reps = reps - reps.mean(axis=0) + obs  # centred on the observation, as contrasts.run_matrix does
    return np.vstack([obs, reps])


def test_hierarchical_bootstrap_covers_95_percent() -> None:
    """Seeds and items both noisy: the interval covers the true contrast about 95% of the time,
    and an interval over seeds alone (items fixed) undercovers."""
    rng = np.random.default_rng(3)
    hits, seed_only = [], []
    for _ in range(300):
        c = _simulate(rng, n_seeds=5, n_items=40, n_rep=100, effect=0.2, sd_seed=0.05, sd_item=0.3)
        est = hierarchical_contrast(c, n_boot=400, seed=int(rng.integers(1 << 30))).est
        hits.append(est.lo < 0.2 < est.hi)
        e = mean_ci(c[0])
        seed_only.append(e.lo < 0.2 < e.hi)
    assert 0.92 <= np.mean(hits) <= 0.98
    assert np.mean(seed_only) < 0.85
    three = []  # 3 seeds, no item data: as good as the t-interval
    for _ in range(300):
        c = _simulate(rng, n_seeds=3, n_items=40, n_rep=1, effect=0.2, sd_seed=0.05, sd_item=0.0)[:1]
        est = hierarchical_contrast(c, n_boot=400, seed=int(rng.integers(1 << 30))).est
        three.append(est.lo < 0.2 < est.hi)
    assert 0.91 <= np.mean(three) <= 0.98


def test_seeds_needed_known_values() -> None:
    # paired t-test, effect = 1 sd, 80% power, two-sided 5%: 10 pairs (standard tables)
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(0.5, 0.01) <= 3
    assert seeds_needed(0.1, 0.01, se_item=0.2) == math.inf  # item noise alone: more items needed
    assert math.isnan(seeds_needed(0.0, 1.0))


def test_claim_3_power_simulates_its_own_verdict_rule() -> None:
    """Three τ strata, within-stratum ρ = -0.67: the t-interval over 3 strata (df 2) clears zero in
    about a third of grids at 3 seeds per τ, so 80% power needs over 10 seeds per τ, not the ~6
    that a Fisher-z count over all runs suggests; a near-perfect ρ needs the minimum."""
    from tempcompress.stats import strata_rho_power, strata_rho_seeds_needed

    assert 0.25 < strata_rho_power(-0.67, 3, 3) < 0.45
    assert strata_rho_power(-0.67, 3, 10) > strata_rho_power(-0.67, 3, 3)
    assert strata_rho_seeds_needed(-0.67, 3) > 10
    assert strata_rho_seeds_needed(-0.95, 3) == 3
    assert strata_rho_seeds_needed(-0.67, 5) < strata_rho_seeds_needed(-0.67, 3)  # more strata, more df
    assert strata_rho_power(-0.9, 3, 2) != strata_rho_power(-0.9, 3, 2)  # NaN: 2 runs per stratum
    assert strata_rho_power(-0.9, 1, 5) != strata_rho_power(-0.9, 1, 5)  # NaN: one stratum, no interval


def test_power_table_known_values() -> None:
    """One primary row per claim kind: a paired contrast (effect = 1 sd: 10 seeds), a contrast
    within its noise floor (no seeds suffice), claim 1's permutation floor (3 τ: 3! = 6 orders per
    seed, so 3 seeds reach 2/α = 40), and claim 3's simulated rule."""
    from tempcompress.findings import findings_settings, power_table
    from tempcompress.stats import strata_rho_seeds_needed

    base = {"role": "primary", "model": "m", "subject": "s", "n": 3, "se_item": 0.0, "margin": math.nan,
            "min_effect": 0.0}
    rows = pd.DataFrame([
        {**base, "claim": 2, "effect": 1.0, "sd_seed": 1.0},
        {**base, "claim": 4, "effect": 0.05, "sd_seed": 0.01, "min_effect": 0.08},
        {**base, "claim": 1, "effect": -1.0, "sd_seed": 0.0},
        {**base, "claim": 3, "effect": -0.67, "sd_seed": 0.3},
        {**base, "claim": 2, "effect": 1.0, "sd_seed": 1.0, "role": "sensitivity"},
    ])
    p = power_table(rows, findings_settings(None), n_taus=3).set_index("claim")
    assert len(p) == 4  # primary rows only
    assert p.loc[2, "seeds_needed"] == 10
    assert p.loc[4, "seeds_needed"] == math.inf
    assert p.loc[1, "seeds_needed"] == 3
    assert p.loc[3, "seeds_needed"] == strata_rho_seeds_needed(-0.67, 3) > 10
