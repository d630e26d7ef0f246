"""Figures, summary and findings on synthetic two-model tables: keyed by model, CIs over seeds only.

Every expected number is recomputed here from scores.csv / intrinsic_dim.csv with plain pandas,
independently of the package's helpers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_synth import MODEL_OFFSET, build_tables, synth_config
from scipy import stats as sps
from tempcompress import figures, summary
from tempcompress.figures import FIGURES, make_figure
from tempcompress.figures_budget import BUDGET_FIGURES
from tempcompress.findings import findings_table, write_findings
from tempcompress.tables import chance_level

# the budget figures read the budget tables (tests/test_budget.py covers them)
ANALYSIS_FIGURES = [name for name in FIGURES if name not in BUDGET_FIGURES]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    cfg = synth_config()
    return cfg, build_tables(cfg, root), root


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    """One seed, no ID `sample` column, renamed / new methods (simproj, hpd) and no dropout variant."""
    root = tmp_path_factory.mktemp("analysis1")
    cfg = synth_config(seeds=("0",))
    cfg["compression"]["methods"] = ["truncation", "binarization", "simproj", "hpd"]
    del cfg["variants"]["dropout"]
    return cfg, build_tables(cfg, root, id_samples=False), root


def _scores(tables: dict[str, str]) -> pd.DataFrame:
    return pd.read_csv(tables["scores"], dtype={"dim": str, "tau": str, "seed": str})


def _t_ci(values: pd.Series) -> tuple[float, float, float, int]:
    v = values.to_numpy(float)
    n = len(v)
    m = v.mean()
    if n < 2:
        return m, math.nan, math.nan, n
    h = sps.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)
    return m, m - h, m + h, n


def _recompute(scores: pd.DataFrame, value: str, keys: list[str]) -> pd.DataFrame:
    """Mean over tasks of a type, then over types, per run; then mean + t-CI over seeds per keys."""
    per_type = scores.groupby(["run", "model", "variant", "tau", "seed", "method", "dim", "task_type"],
                              dropna=False)[value].mean()
    per_run = per_type.groupby(["run", "model", "variant", "tau", "seed", "method", "dim"], dropna=False).mean()
    per_run = per_run.reset_index()
    rows = []
    for key, g in per_run.groupby(keys):
        m, lo, hi, n = _t_ci(g[value])
        rows.append({**dict(zip(keys, key, strict=True)), "mean": m, "ci_lo": lo, "ci_hi": hi, "n": n})
    return pd.DataFrame(rows)


def _match(plotted: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    m = expected.merge(plotted, on=keys, suffixes=("_exp", ""), how="left", validate="one_to_one")
    assert len(m) == len(expected) and m["mean"].notna().all(), "a recomputed point is not plotted"
    np.testing.assert_allclose(m["mean"], m["mean_exp"], rtol=1e-9)
    np.testing.assert_allclose(m["ci_lo"], m["ci_lo_exp"], rtol=1e-9)
    np.testing.assert_allclose(m["ci_hi"], m["ci_hi_exp"], rtol=1e-9)
    assert (m["n"] == m["n_exp"]).all()


def test_chance_levels() -> None:
    assert chance_level("BBCNewsClassification", "Classification", "accuracy") == pytest.approx(0.2)
    assert chance_level("Banking77Classification", "Classification", "accuracy") == pytest.approx(1 / 77)
    for task, ttype, metric in [("LeeSTS", "STS", "cosine_spearman"), ("X", "Clustering", "v_measure"),
                                ("Y", "Retrieval", "ndcg_at_10")]:
        assert chance_level(task, ttype, metric) == 0.0
    with pytest.warns(UserWarning, match="unknown"):
        assert math.isnan(chance_level("NoSuchTask", "Classification", "accuracy"))


def test_scores_table_has_chance_corrected_retention(two_models) -> None:
    _, tables, _ = two_models
    s = _scores(tables)
    cls = s[s.task == "BBCNewsClassification"]
    np.testing.assert_allclose(cls["retention_cc"], (cls["score"] - 0.2) / (cls["full_score"] - 0.2))
    sts = s[s.task == "LeeSTS"]
    np.testing.assert_allclose(sts["retention_cc"], sts["retention"])
    assert (s[s.method == "none"]["retention_cc"] == 1).all()


def test_figures_are_keyed_by_model_and_match_scores_csv(two_models, tmp_path) -> None:
    cfg, tables, _ = two_models
    s = _scores(tables)
    data = {name: make_figure(name, tables, cfg, str(tmp_path / f"{name}.pdf"), str(tmp_path / f"{name}.csv"))
            for name in ANALYSIS_FIGURES}
    for name, d in data.items():
        assert (tmp_path / f"{name}.pdf").stat().st_size > 5000, name
        assert set(d["model"]) == {"m1", "m2"}, name  # every figure: both models, each on its own
        assert pd.read_csv(tmp_path / f"{name}.csv").shape[0] == len(d), name
    # score_vs_dim: crop and base lines per model, mean and CI over seeds of the task-type mean
    sd = data["score_vs_dim"]
    exp = _recompute(s[s.variant.isin(["crop", "base"]) & (s.method != "none")], "score",
                     ["model", "method", "tau", "dim"])
    exp["dim_num"] = exp.pop("dim").astype(float)
    _match(sd, exp, ["model", "method", "tau", "dim_num"])
    # the models differ by MODEL_OFFSET at full size: no mixture of models anywhere
    full = sd[sd.method == "none"].pivot_table(index="tau", columns="model", values="mean")
    np.testing.assert_allclose(full["m2"] - full["m1"], MODEL_OFFSET["m2"], atol=0.02)
    # variants_retention: chance-corrected retention per model, variant, method, dim
    exp = _recompute(s[s.method != "none"], "retention_cc", ["model", "variant", "tau", "method", "dim"])
    exp["dim_num"] = exp.pop("dim").astype(float)
    _match(data["variants_retention"], exp, ["model", "variant", "tau", "method", "dim_num"])
    # retention_by_task_type: raw retention per task type at the smallest dim
    rt = data["retention_by_task_type"]
    d16 = s[(s.variant == "crop") & (s.dim == "16")]
    for (model, ttype, method, tau), g in d16.groupby(["model", "task_type", "method", "tau"]):
        m, lo, hi, n = _t_ci(g.groupby("seed")["retention"].mean())
        row = rt[(rt.model == model) & (rt.task_type == ttype) & (rt.method == method) & (rt.tau == tau)]
        assert len(row) == 1 and row["mean"].iloc[0] == pytest.approx(m) and row["n"].iloc[0] == n
        assert row["ci_lo"].iloc[0] == pytest.approx(lo)
    # id_vs_tau uses the eval sample and keeps models apart
    ids = pd.read_csv(tables["intrinsic_dim"], dtype={"tau": str, "seed": str})
    idv = data["id_vs_tau"]
    for (model, est, variant, tau), g in ids[(ids["sample"] == "eval") & (ids.kind == "infonce")].groupby(
            ["model", "estimator", "variant", "tau"]):
        m, lo, hi, n = _t_ci(g["id"])
        row = idv[(idv.model == model) & (idv.estimator == est) & (idv.variant == variant) & (idv.tau == tau)]
        assert row["mean"].iloc[0] == pytest.approx(m) and row["ci_hi"].iloc[0] == pytest.approx(hi)
    # retention_vs_id: ρ per model, over that model's runs only
    rid = data["retention_vs_id"]
    assert rid.groupby(["model", "estimator"])["rho_n_runs"].first().eq(s[s.model == "m1"]["run"].nunique()).all()


def test_one_seed_draws_points_without_bars(one_seed, tmp_path) -> None:
    cfg, tables, _ = one_seed
    for name in ANALYSIS_FIGURES:
        d = make_figure(name, tables, cfg, str(tmp_path / f"{name}.pdf"))
        assert len(d), name
        ci_cols = [c for c in d.columns if c.endswith(("_lo", "_hi")) and not c.startswith("rho")]
        assert (d["n"] == 1).all(), name
        assert d[ci_cols].isna().all().all(), name  # no interval, so no (zero-width) bar
    # binarization at its largest dim is the native dim (384) when scored there
    rvs = figures.retention_vs_score(figures.load_tables(tables), cfg, str(tmp_path / "r.pdf"))
    assert set(rvs[rvs.method == "binarization"]["dim"].astype(str)) == {"384"}
    assert {"simproj", "hpd"} <= set(figures.variants_retention(figures.load_tables(tables), cfg,
                                                                  str(tmp_path / "v.pdf"))["method"])


def test_summary_rows_per_model_match_scores_csv(two_models, tmp_path) -> None:
    _, tables, _ = two_models
    s = _scores(tables)
    st = summary.retention_stats(s)
    full = st[st.quantity == "full-size score"]
    exp = _recompute(s[s.method == "none"], "score", ["model", "variant", "tau"])
    _match(full, exp, ["model", "variant", "tau"])
    trunc = st[st.quantity == "truncation@16 retention (cc)"]
    exp = _recompute(s[(s.method == "truncation") & (s.dim == "16")], "retention_cc", ["model", "variant", "tau"])
    _match(trunc, exp, ["model", "variant", "tau"])
    assert "binarization@384 retention (cc)" in set(st.quantity)  # quantization at native dim
    per_type = summary.retention_per_type_stats(s)
    assert set(per_type["task_type"]) == {"STS", "Classification", "Clustering", "Retrieval"}
    summary.write_summary(tables, str(tmp_path / "summary.md"))
    text = (tmp_path / "summary.md").read_text()
    assert "| m1 | crop | 1.0 |" in text and "| m2 | crop | 1.0 |" in text and "(n=3)" in text
    assert "ID on the 'corpus' text sample" in text
    w = summary.winners(s, "truncation")
    assert set(w["model"]) == {"m1", "m2"}


def test_findings_on_a_run_with_the_paper_effects(two_models, tmp_path) -> None:
    _, tables, _ = two_models
    t = write_findings(tables, str(tmp_path / "findings.md"), str(tmp_path / "findings.csv"))
    assert set(t["claim"]) == set(range(1, 8))
    assert set(t["model"]) == {"m1", "m2"}
    c1 = t[(t.claim == 1) & (t.variant == "crop")]
    assert set(c1["sample"]) == {"eval", "corpus"}  # both ID samples reported
    assert (c1["verdict"] == "reproduced").all() and (c1["effect"] == -1).all()
    c2 = t[(t.claim == 2) & (t.method == "truncation")]
    assert (c2["verdict"] == "reproduced").all()
    c6 = t[(t.claim == 6) & (t.subject == "all τ")]
    assert (c6["verdict"] == "reproduced").all() and (c6["effect"] > 0.04).all()
    md = (tmp_path / "findings.md").read_text()
    for claim in range(1, 8):
        assert f"## Claim {claim}:" in md
    assert pd.read_csv(tmp_path / "findings.csv").shape[0] == len(t)


def test_findings_with_one_seed_are_inconclusive(one_seed) -> None:
    _, tables, _ = one_seed
    s = pd.read_parquet(tables["scores"].replace(".csv", ".parquet"))
    ids = pd.read_parquet(tables["intrinsic_dim"].replace(".csv", ".parquet"))
    t = findings_table(s, ids)
    seeded = t[t.claim.isin([1, 2, 4, 5, 7])]
    assert len(seeded) and (seeded["verdict"] == "inconclusive").all()
    assert seeded["note"].str.contains("n too small").all()
    assert 6 not in set(t["claim"])  # no dropout variant: claim 6 not testable
    assert set(t[t.claim == 1]["sample"]) == {"all"}  # no `sample` column in the ID table


def test_item_bootstrap_known_answers() -> None:
    from tempcompress.item_noise import retrieval_bootstrap, sts_bootstrap

    rng = np.random.default_rng(0)
    docs = rng.normal(size=(30, 8))
    score, reps = retrieval_bootstrap(docs * 2.0, docs, n_boot=200)  # each query is its own document
    assert score == 1.0 and (reps == 1.0).all()
    shuffled = docs[rng.permutation(30)]
    score, reps = retrieval_bootstrap(shuffled, docs, n_boot=200)
    assert score < 0.5 and np.percentile(reps, 2.5) < score < np.percentile(reps, 97.5)
    emb = rng.normal(size=(20, 8))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    pairs = [(i, j, float(unit[i] @ unit[j])) for i in range(20) for j in range(i + 1, 20)]
    rho, reps = sts_bootstrap(emb, pairs, n_boot=100)
    assert rho == pytest.approx(1.0) and np.allclose(reps, 1.0)  # gold = cosine: perfect rank agreement
    noisy = [(i, j, g + rng.normal(0, 0.3)) for i, j, g in pairs]
    rho, reps = sts_bootstrap(emb, noisy, n_boot=300)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert 0.2 < rho < 0.95 and lo < rho < hi and hi - lo > 0.05
