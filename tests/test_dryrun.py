"""The whole DAG, dry-run, for every shipped config; bad configs fail before any job."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, job_counts, snakemake


@pytest.mark.parametrize(
    "config,models,runs",
    [
        ("config.yaml", 1, 1 + 3 * 3 + 1),  # base + crop x 3 tau x 3 seeds + agg-sum at seed 0
        ("variants.yaml", 1, 1 + 3 * (3 + 3 + 1 + 1 + 1) + 6),  # + dropout, agg-sum, soup, mrl x 3 seeds; 6 at seed 0
        ("claims.yaml", 1, 1 + 3 * (3 + 3) + 3 + 3),  # + dropout x 3 tau, agg-sum and mrl, all x 3 seeds
        ("reinit.yaml", 1, 1 + 3 * 3),  # the core sweep on the re-initialised control start
        ("converged.yaml", 1, 1 + 3 * 3 + 3),  # the core sweep and aggregation at 3 seeds, from scratch
        ("tiny.yaml", 2, (1 + 2 * 2 + 2 + 6) + (1 + 2 * 2)),  # minilm: every variant; sre: the core sweep
        ("paper.yaml", 2, 2 * (1 + 3 * (3 * 7 + 6))),  # 2 models x (base + 3 seeds x (3 grid variants x 7 + 6))
    ],
)
def test_dry_run_schedules_the_whole_grid(config: str, models: int, runs: int, tmp_path) -> None:
    res = snakemake("-n", "--configfile", str(ROOT / "config" / config), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    assert counts["encode"] == counts["score"] == counts["intrinsic_dim"] == counts["compress"] == runs
    assert counts.get("train", 0) == runs - models  # every run but the un-fine-tuned base models
    assert counts["aggregate"] == 1
    figures = [k for k in counts if k.startswith("figure_")]
    assert len(figures) >= 8


def test_default_dry_run_without_configfile(tmp_path) -> None:
    res = snakemake("-n", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "minilm.crop.tau-1.0.seed-2" in res.stdout and "minilm.agg-sum.seed-0" in res.stdout


def test_bad_config_fails_before_any_job(tmp_path) -> None:
    bad = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    bad["compression"]["dims"] = [8, 4096]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    res = snakemake("-n", "--configfile", str(path), cwd=tmp_path)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "compression.dims" in out and "4096" in out and "384-dimensional" in out
    assert not (tmp_path / "results").exists()


def test_lint_is_clean(tmp_path) -> None:
    res = snakemake("--lint", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
