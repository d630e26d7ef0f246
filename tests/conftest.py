"""Shared fixtures: the repository root, a validated tiny config, helpers to run snakemake."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The heavy groups, longest first: each runs the real pipeline once and shares that run between
# its tests, so all of a group's tests must go to one pytest-xdist worker.  The scheduler below
# (pyproject: -n 2 --dist loadgroup) queues them first, one per worker, and the quick tests fill
# in around them.  xdist's controller sees only test ids, so a group is written as id prefixes;
# collection fails if a test that uses a group's shared run is missing from it (FIXTURE_GROUPS).
HEAVY_GROUPS = {
    "rehearsal": ("tests/test_rehearsal.py::",),
    "tiny": ("tests/test_e2e.py::", "tests/test_two_models.py::", "tests/test_verify.py::", "tests/test_kill.py::",
             "tests/test_growing.py::test_an_edit_reruns_only_what_depends_on_it"),
    "reliability": ("tests/test_reliability.py::test_killed_training_resumes_from_its_checkpoint",
                    "tests/test_reliability.py::test_diverged_runs_are_named_skipped_and_marked_missing"),
}
FIXTURE_GROUPS = {"tiny_run": "tiny", "cluster": "rehearsal", "workdir": "reliability"}  # the shared runs


def heavy_group(nodeid: str) -> str | None:
    """The heavy group of a test id (its shared real run), or None for a quick test."""
    return next((name for name, prefixes in HEAVY_GROUPS.items() if nodeid.startswith(prefixes)), None)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """--dist loadgroup with the groups of HEAVY_GROUPS (xdist's own group marks do not reach its
    scheduler under pytest 9, whose test ids are no longer rewritten by xdist)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class HeavyGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return heavy_group(nodeid) or nodeid

    return HeavyGroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check that every test of a shared run is in that run's group; queue the groups first."""
    for item in items:
        for fixture, group in FIXTURE_GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()) and heavy_group(item.nodeid) != group:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the shared run of '{fixture}': add its id to HEAVY_GROUPS['{group}'] "
                    "in tests/conftest.py, or a second worker would repeat that run"
                )
    order = list(HEAVY_GROUPS)
    items.sort(key=lambda item: order.index(g) if (g := heavy_group(item.nodeid)) else len(order))


@pytest.fixture(autouse=True)
def _restore_environ():
    """Undo any test's direct os.environ writes (e.g. hub.set_job_env), so none leaks into later
    tests' subprocesses (a leaked submit-host record once turned the rehearsal's prefetch online)."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def hub_store(tmp_path_factory) -> Path:
    """The stand-in hub's repositories (tests/standin_hub.py), built once per worker and only read."""
    import standin_hub

    path = tmp_path_factory.mktemp("hub_store")
    standin_hub.build(path)
    return path


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def tiny_raw() -> dict:
    return read_yaml(ROOT / "config" / "tiny.yaml")


def snakemake(*args: str, cwd: Path, timeout: int = 1800, env: dict | None = None,
              chdir: Path | None = None) -> subprocess.CompletedProcess:
    """Run the project's Snakefile with `cwd` as working directory (results land there).

    ``chdir`` is where the process starts (profiles such as ``--profile slurm`` resolve from it).
    """
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(cwd), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=chdir or cwd,
                          env={**os.environ, **(env or {})})


def job_counts(stdout: str) -> dict[str, int]:
    """{rule: count} from the 'Job stats' table snakemake prints."""
    if "Job stats:" not in stdout:
        return {}
    block = stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


TINY = str(ROOT / "config" / "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One completed tiny run (config/tiny.yaml), shared by the end-to-end and rerun tests.

    TEMPCOMPRESS_TINY_RUN=<dir> reuses (and keeps) a run completed there before (development:
    the tests only add report.html to it).
    """
    reuse = os.environ.get("TEMPCOMPRESS_TINY_RUN")
    if reuse:
        res = snakemake("-n", "--configfile", TINY, cwd=Path(reuse))
        if "Nothing to be done" not in res.stdout + res.stderr:
            pytest.fail(f"TEMPCOMPRESS_TINY_RUN={reuse} is not a completed tiny run:\n{res.stdout[-2000:]}")
        yield Path(reuse)
        return
    work = tmp_path_factory.mktemp("tiny")
    res = snakemake("--cores", "2", "--configfile", TINY, cwd=work, timeout=2700)
    if res.returncode != 0:
        logs = "\n".join(p.read_text()[-2000:] for p in (work / "results" / "logs").rglob("*.log"))
        pytest.fail(f"tiny pipeline failed:\n{res.stderr[-4000:]}\n{logs[-6000:]}")
    yield work
    shutil.rmtree(work, ignore_errors=True)
