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


# ---- against the stand-in hub server (tests/standin_hub.py): online prefetch, offline jobs ----

import sys  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
import standin_hub  # noqa: E402

ONLINE_CORPUS = """
import json, sys
sys.path.insert(0, {workflow!r})
from tempcompress.hub import prefetch_corpus
print("RESULT " + json.dumps(prefetch_corpus({source!r}, 12)))
"""
OFFLINE_CORPUS = """
import json, sys
sys.path.insert(0, {workflow!r})
from tempcompress.config import ConfigError
from tempcompress.data import load_corpus
try:
    docs = load_corpus([{source!r}], 12)
    print("RESULT " + json.dumps([list(d) for d in docs]))
except ConfigError as exc:
    print("RESULT " + json.dumps(str(exc)))
"""
LOAD_TASKS = """
import json, sys
sys.path.insert(0, {workflow!r})
import mteb
from tempcompress.hub import RevisionMismatch, revision_checked
out = {{}}
for name in {names!r}:
    task = revision_checked([mteb.get_task(name)])[0]
    try:
        task.load_data()
        out[name] = "ok"
    except RevisionMismatch as exc:
        out[name] = str(exc)
print("RESULT " + json.dumps(out))
"""


def _python(code: str, hf_home, endpoint: str | None, online: bool) -> object:
    env = dict(HF_HOME=str(hf_home), HF_ENDPOINT=endpoint or "http://127.0.0.1:9", TOKENIZERS_PARALLELISM="false",
               HF_UPDATE_DOWNLOAD_COUNTS="0", HF_HUB_DISABLE_TELEMETRY="1")
    if not online:
        env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return standin_hub.run_python(code, env, timeout=600)


def test_prefetch_materialises_the_pinned_corpus_sample_for_offline_jobs(hub_store, tmp_path) -> None:
    """A streamed corpus caches nothing: the prefetch writes the sample that offline jobs read."""
    wf = str(ROOT / "workflow")
    pinned = f"hf:{standin_hub.CORPUS_REPO}@{standin_hub.CORPUS_REVISION}:{standin_hub.CORPUS_CONFIG}:train:text"
    latest = f"hf:{standin_hub.CORPUS_REPO}:{standin_hub.CORPUS_CONFIG}:train:text"
    home = tmp_path / "hf"
    with standin_hub.serve(hub_store) as endpoint:
        got = _python(ONLINE_CORPUS.format(workflow=wf, source=pinned), home, endpoint, online=True)
        assert got["commit"] == standin_hub.CORPUS_REVISION and got["documents"] == 12
        online_docs = _python(OFFLINE_CORPUS.format(workflow=wf, source=pinned), tmp_path / "other", endpoint,
                              online=True)
        main_docs = _python(OFFLINE_CORPUS.format(workflow=wf, source=latest), tmp_path / "other", endpoint,
                            online=True)
    # the server is stopped: the offline job reads the prefetched sample, the same documents
    offline_docs = _python(OFFLINE_CORPUS.format(workflow=wf, source=pinned), home, None, online=False)
    assert offline_docs == online_docs and len(offline_docs) == 12
    assert main_docs != online_docs  # the pin matters: main is another revision
    # without a prefetch, an offline job says what to run
    missing = _python(OFFLINE_CORPUS.format(workflow=wf, source=pinned), tmp_path / "empty", None, online=False)
    assert isinstance(missing, str) and "prefetch" in missing and "offline" in missing


def test_offline_tasks_fail_on_another_revision_of_their_dataset_repo(hub_store, tmp_path) -> None:
    """Banking77Classification and its .v2 share mteb/banking77: offline, datasets serves the most
    recently prepared revision to both, so the older task must fail, naming both revisions."""
    wf = str(ROOT / "workflow")
    names = ["Banking77Classification", "Banking77Classification.v2"]  # .v2 prepared last
    with standin_hub.serve(hub_store) as endpoint:
        online = _python(LOAD_TASKS.format(workflow=wf, names=names), tmp_path, endpoint, online=True)
    assert online == {n: "ok" for n in names}  # online, each pinned revision is downloaded
    offline = _python(LOAD_TASKS.format(workflow=wf, names=names), tmp_path, None, online=False)
    assert offline["Banking77Classification.v2"] == "ok"
    msg = offline["Banking77Classification"]
    pinned = standin_hub.standin_task_revision("Banking77Classification")
    found = standin_hub.standin_task_revision("Banking77Classification.v2")
    assert "Banking77Classification" in msg and pinned in msg and found in msg, msg


def test_prefetch_refuses_two_revisions_of_one_repo_in_one_config() -> None:
    """Offline jobs cannot tell two prepared revisions of one repo apart: the submit host says so."""
    import mteb
    from tempcompress.hub import shared_repo_revisions

    tasks = [mteb.get_task(n) for n in ("Banking77Classification", "Banking77Classification.v2", "SciFact")]
    clashes = shared_repo_revisions(tasks)
    assert list(clashes) == ["mteb/banking77"]
    assert set(clashes["mteb/banking77"]) == {"Banking77Classification", "Banking77Classification.v2"}
    assert shared_repo_revisions(tasks[:1] + tasks[2:]) == {}


def test_the_paper_grid_pins_every_model_and_its_corpus_to_a_commit() -> None:
    """An unpinned hub reference makes the full-scale run's inputs whatever `main` is on the day of
    its prefetch: every model and hub corpus of config/paper.yaml names a 40-hex commit."""
    import re

    import yaml
    from tempcompress.data import parse_hf_ref

    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    commit = re.compile(r"^[0-9a-f]{40}$")
    for name, model in cfg["models"].items():
        if model["source"].startswith("hub:"):
            assert commit.match(str(model.get("revision", ""))), f"model {name} has no pinned revision"
    hub_corpora = [s for s in cfg["training"]["corpus"] if s.startswith("hf:")]
    assert hub_corpora
    for source in hub_corpora:
        revision = parse_hf_ref(source[3:])[1]
        assert revision and commit.match(revision), f"corpus {source} has no pinned revision"


PREFETCH_ONE = """
import json, sys
sys.path.insert(0, {workflow!r})
from tempcompress.hub import prefetch
config = {{"models": {models!r}, "evaluation": {{"tasks": []}},
          "training": {{"corpus": {corpus!r}, "max_documents": 12}}}}
try:
    prefetch(config, {manifest!r})
    print("RESULT " + json.dumps("no error"))
except Exception as exc:
    print("RESULT " + json.dumps(f"{{type(exc).__name__}}: {{exc}}"))
"""
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
UNKNOWN = [  # (what the config names, what the error must name)
    ({"models": {"m": {"source": "hub:nobody/no-such-model"}}}, ["nobody/no-such-model", "models.m"]),
    ({"models": {"m": {"source": f"hub:{MINILM_REPO}", "revision": "0" * 40}}}, [MINILM_REPO, "0" * 40, "models.m"]),
    ({"corpus": ["hf:nobody/no-such-corpus:en:train:text"]}, ["nobody/no-such-corpus", "training.corpus"]),
    ({"corpus": [f"hf:{standin_hub.CORPUS_REPO}@{'1' * 40}:{standin_hub.CORPUS_CONFIG}:train:text"]},
     [standin_hub.CORPUS_REPO, "1" * 40, "training.corpus"]),
]


def test_prefetch_names_an_unknown_model_or_corpus_and_a_revision_the_hub_does_not_have(hub_store, tmp_path) -> None:
    """Against a real hub-protocol server: each unknown id or revision stops the prefetch with an
    error that names it and the config key to fix, before any job runs."""
    wf = str(ROOT / "workflow")
    with standin_hub.serve(hub_store) as endpoint:
        for i, (names, expected) in enumerate(UNKNOWN):
            code = PREFETCH_ONE.format(workflow=wf, models=names.get("models", {}), corpus=names.get("corpus", []),
                                       manifest=str(tmp_path / f"manifest-{i}.json"))
            msg = _python(code, tmp_path / f"hf-{i}", endpoint, online=True)
            assert msg.startswith("ConfigError") and all(e in msg for e in expected), (names, msg)
            assert not (tmp_path / f"manifest-{i}.json").exists()
