"""A `snakemake` killed (SIGKILL, the whole process group) while a score job writes mteb's cache,
a second `snakemake` started in the same folder while the first is held mid-job (SIGSTOP), and
the stale lock the killed one leaves: each stops with Snakemake's lock message, and after
`--unlock` the next run ends with scores bit-identical to those of the unbroken tiny run, reusing
what the killed job had cached."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, TINY, snakemake

pytestmark = pytest.mark.slow
A = "minilm.crop.tau-1.0.seed-0"


def copy_run(src: Path, dst: Path) -> None:
    """A working copy of a finished run: the trained models hard-linked (never written in place:
    they are protected), everything else copied with its times."""
    shutil.copytree(src / ".snakemake", dst / ".snakemake", symlinks=True)
    for child in (src / "results").iterdir():
        target = dst / "results" / child.name
        if child.name == "models":
            shutil.copytree(child, target, copy_function=os.link)
        elif child.is_dir():
            shutil.copytree(child, target)
        else:
            shutil.copy2(child, target)


def _entries(folder: Path) -> dict[Path, int]:
    """The finished mteb results of a folder (those with their hash recorded) and their times."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*.json")
            if p.name != "model_meta.json" and p.with_name(p.name + ".sha256").is_file()}


def _locked(res: subprocess.CompletedProcess) -> bool:
    return res.returncode != 0 and "cannot be locked" in res.stdout + res.stderr


def test_a_score_killed_mid_cache_resumes_to_the_same_scores_and_the_lock_says_what_to_do(tiny_run, tmp_path) -> None:
    work = tmp_path / "run"
    copy_run(Path(tiny_run), work)
    target = f"results/scores/{A}.csv"
    mteb_dir = work / "results" / "mteb" / "results" / f"tempcompress__{A}"
    assert mteb_dir.is_dir()
    shutil.rmtree(mteb_dir)  # the score recomputes every entry of the run
    for suffix in ("", ".meta.json"):
        (work / (target + suffix)).unlink()
    # targets before --configfile, which takes every argument after it
    cmd = [sys.executable, "-m", "snakemake", target, "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores", "1",
           "--configfile", TINY]
    first = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.time() + 900
        while len(_entries(mteb_dir)) < 3:  # killed part-way through the run's cache
            assert first.poll() is None, "the score job ended before it could be killed"
            assert time.time() < deadline, "no mteb result was written in 15 minutes"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGSTOP)  # held mid-job: alive, its lock on the folder taken
        assert _locked(snakemake(target, "--cores", "1", "--configfile", TINY, cwd=work))
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    kept = _entries(mteb_dir)
    assert not (work / target).exists()  # no half-written score table
    stale = snakemake(target, "--cores", "1", "--configfile", TINY, cwd=work)
    assert _locked(stale) and "--unlock" in stale.stdout + stale.stderr  # Snakemake names the fix
    assert snakemake("--unlock", "--configfile", TINY, cwd=work).returncode == 0
    done = snakemake(target, "--cores", "2", "--rerun-incomplete", "--configfile", TINY, cwd=work)
    assert done.returncode == 0, done.stderr[-4000:]
    resumed, unbroken = pd.read_csv(work / target), pd.read_csv(Path(tiny_run) / target)
    pd.testing.assert_frame_equal(resumed, unbroken, check_exact=True)  # bit-identical scores
    reused = {p for p, t in kept.items() if p.is_file() and p.stat().st_mtime_ns == t}
    assert len(reused) >= len(kept) - 1, (len(reused), len(kept))  # at most the one being written is redone
    # a kill mid-write leaves at most the one variant being written (its result, run settings and
    # model meta) half-written: moved aside and recomputed
    assert len({p.parent for p in mteb_dir.rglob("*.corrupt-*")}) <= 1
