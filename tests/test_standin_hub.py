"""The stand-in hub (tests/standin_hub.py): its store layout, and real clients downloading from its
server: a prefetch-like online pass into an empty HF_HOME, then every task scored offline."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests"))
import standin_hub  # noqa: E402

# runs in fresh processes so that HF_HOME / HF_ENDPOINT / offline flags are read at import time
ONLINE = """
import json, sys
sys.path.insert(0, {workflow!r})
import mteb
from huggingface_hub import snapshot_download
info = json.load(open({info!r}))
for repo, rev in info["models"].items():
    snapshot_download(repo, revision=rev)
for name in {tasks!r}:
    mteb.get_task(name).load_data()   # mteb's own loader: datasets.load_dataset(path, revision=...)
print("RESULT " + json.dumps("ok"))
"""
OFFLINE_SCORES = """
import json, sys
sys.path.insert(0, {workflow!r})
import mteb
from tempcompress.models import load_model
info = json.load(open({info!r}))
out = {{}}
for repo, rev in info["models"].items():
    model = load_model("hub:" + repo, revision=rev, device="cpu")
    out[repo + "|modules"] = [type(m).__name__ for m in model]
    for name in {tasks!r}:
        task = mteb.get_task(name)
        task.load_data()
        res = mteb.evaluate(model, [task], cache=None, show_progress_bar=False)
        out[repo + "|" + name] = res.task_results[0].get_score()
print("RESULT " + json.dumps(out))
"""


@pytest.fixture
def store(hub_store):
    return hub_store


_run = standin_hub.run_python


def test_store_layout_and_rehearsal_pins(store) -> None:
    import yaml

    info = json.loads((store / "standin.json").read_text())
    for repo, rev in info["models"].items():
        folder = standin_hub.repo_dir(store, "model", repo)
        assert (folder / "refs" / "main").read_text() == rev
        assert (folder / rev / "model.safetensors").is_file()
    plain = standin_hub.repo_dir(store, "model", "standin/sre-embedding-model") / info["models"][
        "standin/sre-embedding-model"]
    assert not (plain / "modules.json").exists() and (plain / "config.json").is_file()
    for name, ds in info["tasks"].items():
        assert (standin_hub.repo_dir(store, "dataset", ds["path"]) / ds["revision"] / "README.md").is_file(), name
    # two revisions of mteb/banking77; main is the .v2 one, so only a pinned download gets the other
    banking = standin_hub.repo_dir(store, "dataset", "mteb/banking77")
    assert (banking / "refs" / "main").read_text() == info["tasks"]["Banking77Classification.v2"]["revision"]
    assert info["tasks"]["Banking77Classification"]["revision"] != info["tasks"]["Banking77Classification.v2"][
        "revision"]
    rehearsal = yaml.safe_load((ROOT / "config" / "rehearsal.yaml").read_text())
    assert {m["source"][4:]: m["revision"] for m in rehearsal["models"].values()} == info["models"]
    assert f"@{info['corpus_revision']}:" in rehearsal["training"]["corpus"][0]


@pytest.mark.slow
def test_real_clients_download_then_score_offline(store, tmp_path) -> None:
    home = tmp_path / "hf"
    info = str(store / "standin.json")
    wf = str(ROOT / "workflow")
    tasks = standin_hub.TASKS
    with standin_hub.serve(store) as endpoint:
        _run(ONLINE.format(workflow=wf, info=info, tasks=tasks), {"HF_HOME": str(home), "HF_ENDPOINT": endpoint})
    offline = {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_ENDPOINT": "http://127.0.0.1:9", "TOKENIZERS_PARALLELISM": "false"}
    result = _run(OFFLINE_SCORES.format(workflow=wf, info=info, tasks=tasks), offline)
    # the plain checkpoint got sentence-transformers' default mean pooling
    assert result.pop("standin/sre-embedding-model|modules") == ["Transformer", "Pooling"]
    result.pop("sentence-transformers/all-MiniLM-L6-v2|modules")
    assert len(result) == 2 * len(tasks)
    for key, score in result.items():
        assert 0.0 < score <= 1.0, key
    # the stand-in retrieval task is headline -> its own article: any sentence model finds most
    assert result["sentence-transformers/all-MiniLM-L6-v2|SciFact"] > 0.8
