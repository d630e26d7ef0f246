"""The stand-in hub cache (tests/standin_hub.py): mteb loads and scores each real task offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests"))
import standin_hub  # noqa: E402

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

# runs in a fresh process so that HF_HOME / offline flags are read at import time
SCORE_ALL = """
import json, sys
sys.path.insert(0, {workflow!r})
import mteb
from tempcompress.models import load_model
info = json.load(open({info!r}))
out = {{}}
for repo, rev in info["models"].items():
    model = load_model("hub:" + repo, revision=rev, device="cpu")
    for name in info["tasks"]:
        task = mteb.get_task(name)
        task.load_data()          # mteb's own loader: datasets.load_dataset(path, revision=...)
        res = mteb.evaluate(model, [task], cache=None, show_progress_bar=False)
        out[repo + "|" + name] = res.task_results[0].get_score()
from datasets import load_dataset
corpus = load_dataset("wikimedia/wikipedia", "20231101.en", split="train[:8]")
out["corpus"] = [len(corpus), corpus.column_names]
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    env = {**os.environ, **OFFLINE, "HF_HOME": str(home)}
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "standin_hub.py"), str(home)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return home


def test_layout_is_huggingface_hubs(hf_home) -> None:
    info = json.loads((hf_home / "standin.json").read_text())
    for repo, rev in info["models"].items():
        folder = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
        assert (folder / "refs" / "main").read_text() == rev
        weights = folder / "snapshots" / rev / "model.safetensors"
        assert weights.is_symlink() and weights.resolve().parent == (folder / "blobs").resolve()
    for name, ds in info["tasks"].items():
        folder = hf_home / "hub" / ("datasets--" + ds["path"].replace("/", "--"))
        assert (folder / "snapshots" / ds["revision"] / "README.md").is_file(), name
        org, short = ds["path"].split("/")
        assert list((hf_home / "datasets" / f"{org}___{short}").glob(f"*/0.0.0/{ds['revision']}")), name
    assert set(info["tasks"]) == set(standin_hub.TASKS)


@pytest.mark.slow
def test_each_task_loads_and_scores_offline_with_both_models(hf_home) -> None:
    code = SCORE_ALL.format(workflow=str(ROOT / "workflow"), info=str(hf_home / "standin.json"))
    env = {**os.environ, **OFFLINE, "HF_HOME": str(hf_home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert result.pop("corpus") == [8, ["id", "url", "title", "text"]]
    assert len(result) == 2 * len(standin_hub.TASKS)
    for key, score in result.items():
        assert 0.0 < score <= 1.0, key
    # the stand-in retrieval task is headline -> its own article: any sentence model finds most
    assert result["sentence-transformers/all-MiniLM-L6-v2|SciFact"] > 0.8
