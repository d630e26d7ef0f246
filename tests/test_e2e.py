"""A tiny real run of the whole pipeline: real training, real ID estimates, real mteb scores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, TINY, job_counts, snakemake
from tempcompress.figures import FIGURES

pytestmark = pytest.mark.slow
N_RUNS = 18  # config/tiny.yaml: minilm 13 runs (base, crop 2 τ × 2 seeds, every other variant at seed 0), sre 5
N_TRAINED = 15  # every run but the two base models and the soup (which averages weights)


def test_every_figure_exists(tiny_run) -> None:
    for name in FIGURES:
        pdf = tiny_run / "paper_figures" / f"{name}.pdf"
        assert pdf.is_file() and pdf.stat().st_size > 5000, name
        assert pdf.read_bytes()[:4] == b"%PDF"


def test_summary_has_the_headline_numbers(tiny_run) -> None:
    text = (tiny_run / "results" / "summary.md").read_text()
    assert "Intrinsic dimension per temperature" in text and "| crop | 1.0 |" in text
    assert "Best variant at each dim: truncation" in text


def test_scores_table_is_complete_and_plausible(tiny_run) -> None:
    s = pd.read_parquet(tiny_run / "results" / "tables" / "scores.parquet")
    assert s["run"].nunique() == N_RUNS
    assert set(s["task"]) == {"LeeSTS", "BBCNewsClassification", "BBCNewsClustering", "BBCHeadlineRetrieval"}
    quantizers = {"binarization", "int8", "int4", "float16", "bfloat16", "float8"}
    assert set(s["method"]) == {"none", "truncation", "pca", "random_projection", "simproj"} | quantizers
    assert len(s) == N_RUNS * 4 * (1 + 10 * 1 + len(quantizers))  # 10 methods at 16 dims, quantizers also at 384
    assert set(s[s.method.isin(quantizers)]["dim"]) == {"16", "384"}
    assert s["score"].notna().all() and s["score"].between(-1, 1).all()
    full = s[s.method == "none"]
    assert (full["retention"] == 1).all()
    assert full[full.task == "LeeSTS"]["score"].min() > 0.2  # a real embedding model, not noise
    assert full[full.task == "BBCHeadlineRetrieval"]["score"].min() > 0.3
    # compression to 8 dims loses quality on average
    assert s[(s.method == "truncation") & (s.dim == "16")]["retention"].mean() < 0.98
    assert {"config_hash", "git_commit", "mteb_version"} <= set(s.columns)


def test_intrinsic_dim_table(tiny_run) -> None:
    ids = pd.read_parquet(tiny_run / "results" / "tables" / "intrinsic_dim.parquet")
    assert set(ids["estimator"]) == {"twonn", "mle", "lpca"}
    assert ids["id"].between(1, 384).all()
    assert set(ids["sample"]) == {"corpus", "eval"}
    assert (ids[ids["sample"] == "corpus"]["n_points"] == 200).all()
    # the eval sample: every distinct evaluation text here (fewer than sample_size), the same for every run
    texts = pd.read_parquet(tiny_run / "results" / "embeddings" / "minilm.base" / "eval_texts.parquet")
    n_eval = ids[ids["sample"] == "eval"]["n_points"]  # distinct points: truncation may merge a few
    assert n_eval.between(0.9 * min(200, texts["id"].nunique()), 200).all()
    assert len(ids) == N_RUNS * 2 * 3


def test_variants_and_loss_tables(tiny_run) -> None:
    v = pd.read_parquet(tiny_run / "results" / "tables" / "variants.parquet")
    assert {"agg-sum", "agg-nested", "soup", "mrl", "mrl2d", "sparse", "dropout", "crop", "base"} <= set(v.variant)
    loss = pd.read_parquet(tiny_run / "results" / "tables" / "training_loss.parquet")
    assert loss["loss"].notna().all() and loss["run"].nunique() == N_TRAINED


def test_rerun_schedules_nothing(tiny_run) -> None:
    res = snakemake("-n", "--configfile", TINY, cwd=tiny_run)
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


# (run whose file is replaced, file, the stages of that run that must rerun): one run per row, so
# one dry-run checks every row and each row fails on its own
REPLACED = [
    ("minilm.crop.tau-1.0.seed-0", "fit.npy", {"compress", "score"}),  # read only through the temp() codes
    ("minilm.crop.tau-1.0.seed-1", "idsample.npy", {"intrinsic_dim"}),
    ("sre.crop.tau-1.0.seed-0", "eval.npy", {"compress", "score", "intrinsic_dim"}),
]


def test_an_artifact_replaced_by_other_content_reruns_what_read_it(tiny_run) -> None:
    """Another run's file copied over one run's, with the original's time kept (as `cp -p` or a
    restore from backup does): Snakemake's times see nothing, the content hashes in params do.
    Only that run's readers are planned; nothing is retrained or re-encoded."""
    from test_growing import planned_runs

    emb = Path(tiny_run) / "results" / "embeddings"
    saved = {}
    try:
        for run, name, _ in REPLACED:
            target, other = emb / run / name, emb / run.replace("tau-1.0", "tau-0.05") / name
            saved[target] = (target.read_bytes(), target.stat())
            assert other.read_bytes() != saved[target][0]
            target.write_bytes(other.read_bytes())
            os.utime(target, ns=(saved[target][1].st_atime_ns, saved[target][1].st_mtime_ns))
        res = snakemake("-n", "--configfile", TINY, cwd=tiny_run)
        assert res.returncode == 0, res.stderr[-3000:]
        for rule in ("compress", "score", "intrinsic_dim"):
            expected = {run for run, _, stages in REPLACED if rule in stages}
            assert planned_runs(res.stdout, rule) == expected, (rule, res.stdout[-4000:])
        assert not {"train", "encode", "encode_sample"} & set(job_counts(res.stdout)), res.stdout[-3000:]
    finally:
        for target, (data, st) in saved.items():
            target.write_bytes(data)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    res = snakemake("-n", "--configfile", TINY, cwd=tiny_run)
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-3000:]


def test_forcing_one_figure_rebuilds_only_that_figure(tiny_run) -> None:
    res = snakemake("-n", "-f", "paper_figures/id_vs_tau.pdf", "--configfile", TINY, cwd=tiny_run)
    assert res.returncode == 0
    assert job_counts(res.stdout) == {"figure_id_vs_tau": 1}, res.stdout[-2000:]


def test_report_holds_every_figure_and_the_config(tiny_run) -> None:
    res = snakemake("--report", "report.html", "--configfile", TINY, cwd=tiny_run)
    assert res.returncode == 0, res.stderr[-3000:]
    html = (tiny_run / "report.html").read_text(errors="replace")
    for name in FIGURES:
        assert f"{name}.pdf" in html, name
    assert "config_used.yaml" in html
    assert "Intrinsic dimension" in html  # a caption


@pytest.fixture
def job_threads():
    """torch on one thread, as in the pipeline's jobs (resources.<stage>.threads, default 1): a
    float sum's order, and so its last bit, depends on the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_rerun_gives_bit_identical_embeddings_and_identical_scores(tiny_run, tmp_path, job_threads) -> None:
    import yaml
    from tempcompress.config import load_config
    from tempcompress.stages import compress, encode, encode_sample, score

    cfg = load_config(yaml.safe_load(open(TINY)))
    res = tiny_run / "results"
    run = "minilm.crop.tau-1.0.seed-0"
    encode(cfg, run, str(res / "models" / run / "model"), str(tmp_path / "emb"))
    for name, texts in (("idsample", "id_texts"), ("fit", "fit_texts")):
        encode_sample(cfg, run, str(res / "models" / run / "model"), str(res / "data" / f"{texts}.parquet"),
                      str(tmp_path / "emb" / f"{name}.npy"), str(tmp_path / "emb" / f"{name}.meta.json"))
    for name in ("eval.npy", "idsample.npy", "fit.npy"):
        assert (tmp_path / "emb" / name).read_bytes() == (res / "embeddings" / run / name).read_bytes(), name
    # the compact codes are temp() (deleted once scored): recompute them, then score again
    compress(cfg, run, str(tmp_path / "emb"), str(tmp_path / "codes.npz"))
    score(cfg, run, str(tmp_path / "emb"), str(tmp_path / "codes.npz"), str(tmp_path / "scores.csv"),
          str(tmp_path / "mteb"))
    again = pd.read_csv(tmp_path / "scores.csv")
    before = pd.read_csv(res / "scores" / f"{run}.csv")
    pd.testing.assert_frame_equal(again, before)
    meta = yaml.safe_load((res / "embeddings" / run / "meta.json").read_text())
    assert meta["seed"] == "0" and meta["git_commit"] and meta["packages"]["torch"].startswith("2.13")


def test_hpd_students_are_scored_like_any_method(tiny_run, tmp_path) -> None:
    """HPD (method 'hpd'): a student encoder per dim, its codes scored through the same path."""
    import numpy as np
    import yaml
    from tempcompress.config import load_config
    from tempcompress.stages import hpd_compress, read_codes, score

    raw = yaml.safe_load(open(TINY))
    raw["compression"]["methods"] = ["hpd"]
    cfg = load_config(raw)
    res = tiny_run / "results"
    emb = res / "embeddings" / "minilm.base"
    hpd_compress(cfg, "minilm.base", None, str(res / "data" / "fit_texts.parquet"), str(emb / "eval_texts.parquet"),
                 str(tmp_path / "hpd.npz"))
    codes = read_codes([str(tmp_path / "hpd.npz")])
    x = codes[("hpd", "16")]["x"]
    assert x.shape == (np.load(emb / "eval.npy").shape[0], 16) and np.isfinite(x).all()
    assert np.abs(x).max() <= 1.0  # the tanh head
    score(cfg, "minilm.base", str(emb), [str(tmp_path / "hpd.npz")], str(tmp_path / "s.csv"), None)
    s = pd.read_csv(tmp_path / "s.csv")
    assert set(s["method"]) == {"none", "hpd"} and s["score"].between(-1, 1).all()


def test_jobs_record_their_transformer_seconds_for_the_overhead_benchmark(tiny_run) -> None:
    """train_seconds / forward_seconds in the jobs' meta.json; bench/overhead.py reads them."""
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "overhead.py"), "--wall", "100"],
                         cwd=tiny_run, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    table = pd.read_csv(tiny_run / "results" / "benchmarks" / "overhead.csv").set_index("stage")
    for stage in ("train", "encode", "encode_sample"):
        assert 0 < table.loc[stage, "compute_s"] < table.loc[stage, "job_s"], table
    # the ratio is written with 2 decimals
    assert table.loc["pipeline", "overhead_ratio"] == pytest.approx(100 / table.loc["pipeline", "compute_s"], abs=0.005)
