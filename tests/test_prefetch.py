"""hf_home: jobs run offline against the configured HF cache; `prefetch` (local) fills it once."""

from __future__ import annotations

import json
import os

from conftest import ROOT, job_counts, snakemake
from tempcompress import hub


def test_paper_grid_prefetches_once_before_any_job(tmp_path) -> None:
    res = snakemake("-n", "--configfile", str(ROOT / "config" / "paper.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert job_counts(res.stdout)["prefetch"] == 1
    # prepare_documents (which every run needs) waits for it
    assert "results/data/prefetch.json" in res.stdout.split("rule prepare_documents:")[1].split("rule ")[0]


def test_offline_default_needs_no_prefetch(tmp_path) -> None:
    res = snakemake("-n", "--configfile", str(ROOT / "config" / "tiny.yaml"), "--config", f"hf_home={tmp_path}/hf",
                    cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "prefetch" not in job_counts(res.stdout)


def test_job_env_is_offline_and_prefetch_restores_the_submit_hosts(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(hub.SUBMIT_ENV, raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.set_job_env(tmp_path / "cache")
    assert os.environ["HF_HOME"] == str((tmp_path / "cache").resolve())
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["HF_DATASETS_OFFLINE"] == "1"
    hub.set_job_env(tmp_path / "cache")  # a nested job (SLURM) keeps the submit host's record
    assert json.loads(os.environ[hub.SUBMIT_ENV]) == {"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": None}
    assert hub.restore_submit_env() is True
    assert os.environ["HF_HUB_OFFLINE"] == "0" and "HF_DATASETS_OFFLINE" not in os.environ
