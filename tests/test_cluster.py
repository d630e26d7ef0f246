"""What a cluster run asks of SLURM, from Snakemake's own dry run of config/paper.yaml: the
partition of every job follows its GPU request, every rule declares its threads, and the
profile keeps going after a failure."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import ROOT, snakemake

LOCAL = {"all", "aggregate", "figures", "summary", "prefetch", "budget", "findings"}


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory) -> list[dict[str, str]]:
    """One dict per job of paper.yaml's dry run: rule, wildcards, resources line, threads."""
    tmp = tmp_path_factory.mktemp("paper_dry")
    res = snakemake("-n", "--cores", "8", "--configfile", str(ROOT / "config" / "paper.yaml"), cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", res.stdout):
        head = re.match(r"\s*(local)?rule (\w+):", block)
        if not head:
            continue
        resources = re.search(r"resources: (.*)", block)
        threads = re.search(r"threads: (\d+)", block)
        wildcards = re.search(r"wildcards: (.*)", block)
        jobs.append({"rule": head.group(2), "local": bool(head.group(1)),
                     "resources": resources.group(1) if resources else "",
                     "threads": int(threads.group(1)) if threads else 1,
                     "wildcards": wildcards.group(1) if wildcards else ""})
    return jobs


def _local(job: dict[str, str]) -> bool:
    """Jobs of local rules (run by snakemake itself on the submit host, never submitted)."""
    return job["local"] or job["rule"] in LOCAL or job["rule"].startswith("figure_")


def _resource(job: dict[str, str], name: str) -> str | None:
    m = re.search(rf"(?:^|, ){name}=([^,]+)", job["resources"])
    return m.group(1) if m else None


def test_every_job_goes_to_the_partition_its_gpu_request_needs(paper_jobs) -> None:
    parts = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["resources"]["partitions"]
    submitted = [j for j in paper_jobs if not _local(j)]
    assert {"train", "encode", "encode_sample", "intrinsic_dim", "compress", "score"} <= {j["rule"] for j in submitted}
    for job in submitted:
        gpu = int(_resource(job, "gpu") or 0)
        assert _resource(job, "slurm_partition") == (parts["gpu"] if gpu else parts["cpu"]), job
    # the sample encodings request the encode stage's GPU; a soup only averages weights on the CPU
    assert all(int(_resource(j, "gpu") or 0) == 1 for j in submitted if j["rule"] == "encode_sample")
    soups = [j for j in submitted if j["rule"] == "train" and ".soup." in j["wildcards"]]
    assert soups and all(_resource(j, "slurm_partition") == parts["cpu"] for j in soups)


def test_every_submitted_rule_declares_its_stage_threads(paper_jobs) -> None:
    threads = {s: r.get("threads", 1) for s, r in
               yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["resources"].items() if s != "partitions"}
    for job in paper_jobs:
        if _local(job):
            continue
        gpu = int(_resource(job, "gpu") or 0)
        expected = threads["train" if job["rule"] == "train" and gpu else "encode" if gpu else "cpu"]
        assert job["threads"] == expected, job


def test_rules_group_by_run() -> None:
    """A group id is per run, so group-components never packs two runs into one job."""
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    groups = re.findall(r"group:\s*\n\s*\"([^\"]+)\"", rules)
    assert groups and all(g.endswith("_{run}") for g in groups), groups
    profile = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    assert set(profile["group-components"]) == set(groups)


def test_profile_keeps_going_and_retries() -> None:
    profile = yaml.safe_load((ROOT / "slurm" / "config.yaml").read_text())
    assert profile["keep-going"] is True and profile["retries"] >= 1
    assert "set-resources" not in profile  # no per-rule routing: res() derives it from the request
    # how environments reach the nodes: built once into a shared conda prefix, then activated
    text = (ROOT / "slurm" / "config.yaml").read_text()
    assert "--sdm conda" in text and "--conda-prefix" in text and "--conda-create-envs-only" in text


def test_checkpoints_on_a_clock_and_at_sigterm() -> None:
    """Training saves on a time cadence and, on SIGTERM (SLURM's notice at the time limit),
    saves at once and stops; the previous SIGTERM handler is restored after training."""
    import os
    import signal
    import time

    from tempcompress.training import checkpoint_callback
    from transformers import TrainerControl, TrainerState

    state = TrainerState(global_step=3, max_steps=10)
    clock = checkpoint_callback(0.001)  # 0.06 s
    clock.on_train_begin(None, state, TrainerControl())
    control = TrainerControl()
    clock.on_step_end(None, state, control)
    assert not control.should_save  # too soon
    time.sleep(0.1)
    clock.on_step_end(None, state, control)
    assert control.should_save and not control.should_training_stop
    clock.on_save(None, state, control)
    clock.on_train_end(None, state, control)

    previous = signal.getsignal(signal.SIGTERM)
    never = checkpoint_callback(None)  # no clock: only SIGTERM saves
    never.on_train_begin(None, state, TrainerControl())
    try:
        control = TrainerControl()
        never.on_step_end(None, state, control)
        assert not control.should_save
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        never.on_step_end(None, state, control)
        assert control.should_save and control.should_training_stop and never.terminated
    finally:
        never.on_train_end(None, state, TrainerControl())
    assert signal.getsignal(signal.SIGTERM) == previous


def test_paper_checkpoints_on_a_clock_not_a_step_count() -> None:
    training = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["training"]
    assert training["checkpoint_steps"] is None and training["checkpoint_minutes"] > 0
