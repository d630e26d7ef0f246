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
    mean_ci,
    seed_trend,
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
    assert verdict(est, +1, min_n=4) == REPRODUCED
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
