"""A job's environment: HF_HOME wins over a user's own cache variables, a read-only shared
cache still serves jobs, and thread limits are set before numpy or torch is imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from tempcompress import hub

WORKFLOW = str(ROOT / "workflow")

RESOLVED = """
import json, sys
sys.path.insert(0, {workflow!r})
from tempcompress.hub import set_job_env
set_job_env({home!r})
import datasets.config, huggingface_hub.constants
import os
print("RESULT " + json.dumps({{
    "hub": huggingface_hub.constants.HF_HUB_CACHE,
    "xet": huggingface_hub.constants.HF_XET_CACHE,
    "assets": huggingface_hub.constants.HF_ASSETS_CACHE,
    "datasets": datasets.config.HF_DATASETS_CACHE,
    "modules": datasets.config.HF_MODULES_CACHE,
    "st_home": os.environ.get("SENTENCE_TRANSFORMERS_HOME"),
    "transformers": os.environ.get("TRANSFORMERS_CACHE"),
}}, default=str))
"""


def _result(out: subprocess.CompletedProcess) -> dict:
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])


def test_a_users_cache_variables_do_not_override_hf_home(tmp_path: Path) -> None:
    home = tmp_path / "hf"
    elsewhere = tmp_path / "users-own"
    env = {**os.environ, **{var: str(elsewhere / var) for var in hub.CACHE_OVERRIDES}}
    env.pop(hub.OVERLAY_ENV, None)
    code = RESOLVED.format(workflow=WORKFLOW, home=str(home))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    paths = _result(out)
    assert paths.pop("st_home") is None and paths.pop("transformers") is None
    for name, path in paths.items():
        assert Path(path).resolve().is_relative_to(home.resolve()), (name, path)
    assert "ignoring HF_HUB_CACHE" in out.stderr


# ---- a read-only shared cache -----------------------------------------------------------------

PREPARE = """
import sys
sys.path.insert(0, {workflow!r})
import datasets
ds = datasets.load_dataset("json", data_files={data!r}, split="train")
print(len(ds.map(lambda r: {{"n": len(r["text"])}})))
"""

JOB = """
import json, os, sys
sys.path.insert(0, {workflow!r})
from tempcompress.hub import set_job_env
set_job_env({home!r})
import datasets
from tempcompress.models import hub_commit, load_model
ds = datasets.load_dataset("json", data_files={data!r}, split="train")
mapped = ds.map(lambda r: {{"m": 2 * len(r["text"])}})  # what mteb's tasks do
model = load_model("hub:standin/minilm", device="cpu")
print("RESULT " + json.dumps({{"rows": len(mapped), "dim": model.get_embedding_dimension(),
                               "commit": hub_commit("standin/minilm")}}))
"""


def _read_only(folder: Path, command: list[str]) -> list[str]:
    """``command`` run with ``folder`` mounted read-only (a private mount namespace)."""
    inner = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} {folder} && exec \"$@\""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", inner, "sh", *command]


def _can_mount_read_only(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    if shutil.which("unshare") is None:
        return False
    out = subprocess.run(_read_only(probe, ["sh", "-c", f"! touch {probe}/x 2>/dev/null"]), capture_output=True)
    return out.returncode == 0


def test_a_read_only_shared_cache_serves_jobs(tmp_path: Path) -> None:
    if not _can_mount_read_only(tmp_path):
        pytest.skip("needs unshare and mount (a private read-only bind mount)")
    from test_envs_and_hub import FAKE_COMMIT, _fake_hub_cache

    home = tmp_path / "hf"
    _fake_hub_cache(home, "standin/minilm")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": f"sentence {i}"}) + "\n" for i in range(20)))
    env = {k: v for k, v in os.environ.items() if k not in hub.CACHE_OVERRIDES and k != hub.OVERLAY_ENV}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    prep = subprocess.run([sys.executable, "-c", PREPARE.format(workflow=WORKFLOW, data=str(data))],
                          capture_output=True, text=True, env=env, timeout=300)
    assert prep.returncode == 0, prep.stderr[-3000:]
    before = sorted(str(p) for p in home.rglob("*"))
    code = JOB.format(workflow=WORKFLOW, home=str(home), data=str(data))
    out = subprocess.run(_read_only(home, [sys.executable, "-c", code]), capture_output=True, text=True,
                         env=env, timeout=300)
    assert _result(out) == {"rows": 20, "dim": 384, "commit": FAKE_COMMIT}
    assert "is read-only" in out.stderr
    assert sorted(str(p) for p in home.rglob("*")) == before


# ---- thread limits before numpy / torch ----------------------------------------------------------

SCRIPT_RUNNER = """
import importlib.abc, json, os, runpy, sys
seen = {{}}


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("numpy", "torch") and name not in seen:
            seen[name] = os.environ.get("OMP_NUM_THREADS")
        return None


class Anything:
    # stands in for snakemake.input / output / params / wildcards: every field is empty
    def __getattr__(self, name):
        return Anything()

    def __getitem__(self, key):
        return Anything()

    def __iter__(self):
        return iter(())

    def __bool__(self):
        return False

    def __len__(self):
        return 0

    def items(self):
        return []


class FakeSnakemake(Anything):
    scriptdir = {scriptdir!r}
    threads = 3
    rule = {rule!r}
    log = []
    config = {{}}


sys.meta_path.insert(0, Watch())
try:
    runpy.run_path({script!r}, init_globals={{"snakemake": FakeSnakemake()}})
except BaseException:  # noqa: BLE001  (the stage fails on the fake inputs; only the import order counts)
    pass
print("RESULT " + json.dumps(seen))
"""

SCRIPTS = sorted(p.name for p in (ROOT / "workflow" / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_thread_limits_are_set_before_numpy_or_torch_is_imported(script: str, tmp_path: Path) -> None:
    path = ROOT / "workflow" / "scripts" / script
    code = SCRIPT_RUNNER.format(scriptdir=str(path.parent), rule=path.stem, script=str(path))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                         cwd=tmp_path)
    seen = _result(out)
    if script != "prefetch.py":  # prefetch stops at the fake config before its hub libraries load
        assert "numpy" in seen, "the script never imported numpy: the check saw nothing"
    assert seen == {name: "3" for name in seen}, seen
