"""Hugging Face hub logistics for cluster runs: one prefetch on the submit host, offline jobs.

With ``hf_home:`` set in the config, every job runs with ``HF_HOME=<hf_home>`` and
``HF_HUB_OFFLINE=1`` / ``HF_DATASETS_OFFLINE=1`` (set when the Snakefile is parsed, which every
cluster job does).  Only the local rule ``prefetch`` runs with the submit host's own settings:
it downloads, once, every hub model at its configured revision, every real MTEB task's data
(through mteb's own ``load_data``, which also prepares the Arrow cache that offline
``datasets`` reads) and the training corpus sample of every hub corpus (streamed, so never
cached: written to ``data.corpus_sample_file`` inside ``HF_HOME``, which the offline
``prepare_documents`` job reads), and writes what it found to a JSON manifest.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
SUBMIT_ENV = "TEMPCOMPRESS_SUBMIT_HF_ENV"  # the submit host's own offline settings (JSON)
# Each of these would send one library to another cache than HF_HOME's (the hub, datasets,
# sentence-transformers, transformers' legacy names, xet chunks, assets, dataset scripts).
CACHE_OVERRIDES = (
    "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "SENTENCE_TRANSFORMERS_HOME",
    "TRANSFORMERS_CACHE", "PYTORCH_TRANSFORMERS_CACHE", "PYTORCH_PRETRAINED_BERT_CACHE", "HF_XET_CACHE",
    "HF_ASSETS_CACHE", "HF_MODULES_CACHE",
)
OVERLAY_ENV = "TEMPCOMPRESS_DATASETS_OVERLAY"  # a job's writable view of a read-only datasets cache


def set_job_env(hf_home: str | Path) -> None:
    """HF_HOME=hf_home and the hub offline for this process and its children.

    A user's own cache variables (``CACHE_OVERRIDES``: HF_HUB_CACHE, HF_DATASETS_CACHE,
    SENTENCE_TRANSFORMERS_HOME, ...) are removed, so that every library reads the cache that
    ``prefetch`` filled.  A read-only datasets cache gets a writable per-job view
    (``writable_datasets_cache``).  The first call in a process tree records the submit host's
    own values in SUBMIT_ENV, so that ``prefetch`` (a local rule) can restore them.
    """
    os.environ.setdefault(SUBMIT_ENV, json.dumps({k: os.environ.get(k) for k in OFFLINE_VARS}))
    home = Path(hf_home).expanduser().resolve()
    os.environ["HF_HOME"] = str(home)
    for var in OFFLINE_VARS:
        os.environ[var] = "1"
    ours = {"HF_DATASETS_CACHE": os.environ.get(OVERLAY_ENV)}  # a view made by an outer call is kept
    dropped = [v for v in CACHE_OVERRIDES if v in os.environ and os.environ[v] != ours.get(v)]
    for var in dropped:
        del os.environ[var]
    if dropped:
        print(f"hf_home is set: ignoring {', '.join(dropped)} (jobs read HF_HOME={home})", file=sys.stderr)
    view = writable_datasets_cache(home / "datasets")
    if view is not None:
        os.environ["HF_DATASETS_CACHE"] = os.environ[OVERLAY_ENV] = str(view)


def writable_datasets_cache(cache: Path) -> Path | None:
    """A writable view of a read-only datasets cache, or None when ``cache`` is writable (or absent).

    ``datasets`` writes lock files beside every prepared dataset, even offline, and ``map``
    (which mteb's tasks call) writes its cache files into the dataset's folder: on a
    read-only shared cache both fail.  The view, in a per-job temporary folder (``$TMPDIR``),
    repeats the cache's folders as real folders and links every file, so that reads go to
    the shared cache and these writes stay in the job.  Made once per process tree (a nested
    call reuses it); removed when the process that made it exits.
    """
    import atexit
    import shutil
    import tempfile

    if not cache.is_dir() or os.access(cache, os.W_OK):
        return None
    existing = os.environ.get(OVERLAY_ENV)
    if existing and Path(existing).is_dir():
        return Path(existing)
    view = Path(tempfile.mkdtemp(prefix="tempcompress-hf-datasets-"))
    for folder, _dirs, files in os.walk(cache):
        target = view / Path(folder).relative_to(cache)
        target.mkdir(exist_ok=True)
        for name in files:
            if not name.endswith(".lock"):
                (target / name).symlink_to(Path(folder) / name)
    atexit.register(shutil.rmtree, view, ignore_errors=True)
    print(f"the datasets cache {cache} is read-only: this job reads it through {view}", file=sys.stderr)
    return view


def restore_submit_env() -> bool:
    """Undo set_job_env's offline flags (before any hub library is imported); True if online."""
    saved = json.loads(os.environ.get(SUBMIT_ENV, "{}"))
    for var in OFFLINE_VARS:
        if saved.get(var) is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = saved[var]
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes", "on")


def hub_models(config: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """{model name: (repo id, revision or None)} for the config's ``hub:`` models."""
    out = {}
    for name, mcfg in config["models"].items():
        kind, _, ref = mcfg["source"].partition(":")
        if kind == "hub":
            out[name] = (ref, mcfg.get("revision"))
    return out


def remote_tasks(config: dict[str, Any]) -> list[str]:
    """The configured evaluation tasks that are real MTEB tasks (hub data), not local ones."""
    from .tasks import LOCAL_TASKS

    return [t for t in config["evaluation"]["tasks"] if t not in LOCAL_TASKS]


def hf_corpora(config: dict[str, Any]) -> list[str]:
    return [s for s in config["training"]["corpus"] if s.startswith("hf:")]


def needs_hub(config: dict[str, Any]) -> bool:
    return bool(hub_models(config) or remote_tasks(config) or hf_corpora(config))


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def prefetch(config: dict[str, Any], manifest: str | Path) -> dict[str, Any]:
    """Fetch (or, offline, verify) every hub artifact the config needs; write a JSON manifest."""
    online = restore_submit_env()
    from huggingface_hub import snapshot_download

    from .config import ConfigError, trusts_remote_code
    from .models import load_model
    from .tasks import build_tasks

    t0 = time.time()
    out: dict[str, Any] = {"hf_home": os.environ.get("HF_HOME"), "online": online, "models": {}, "tasks": {}}
    for name, (repo, revision) in hub_models(config).items():
        try:
            load_model(f"hub:{repo}", revision=revision, device="cpu",  # everything sentence-transformers reads
                       trust_remote_code=trusts_remote_code(config, name))
        except (ConfigError, OSError) as exc:
            raise ConfigError(f"models.{name}: {unknown_on_hub('model', repo, revision, exc)}") from exc
        snap = Path(snapshot_download(repo, revision=revision, local_files_only=True))
        if revision is None:
            print(f"WARNING model '{name}' ({repo}) has no pinned revision; fetched {snap.name}. "
                  f"Pin it: models.{name}.revision: {snap.name}")
        out["models"][name] = {"repo": repo, "revision": revision, "commit": snap.name}
        print(f"model {name}: {repo}@{snap.name}")
    names = remote_tasks(config)
    tasks = build_tasks(names, config["evaluation"]) if names else []
    clashes = shared_repo_revisions(tasks)
    if clashes:
        raise RevisionMismatch(
            "these tasks need different revisions of one dataset repo, which offline jobs cannot tell apart "
            f"(datasets loads the most recently prepared one): {clashes}. Run them from separate configs, "
            "each with its own hf_home."
        )
    for task in tasks:
        task.load_data()  # mteb's own loader: downloads and prepares the Arrow cache
        check_task_revision(task)
        meta = task.metadata
        out["tasks"][meta.name] = {"path": meta.dataset["path"], "revision": meta.dataset["revision"]}
        print(f"task {meta.name}: {meta.dataset['path']}@{meta.dataset['revision']}")
    out["corpus"] = {src: prefetch_corpus(src, config["training"]["max_documents"]) for src in hf_corpora(config)}
    home = Path(out["hf_home"] or Path.home() / ".cache" / "huggingface")
    out["hf_home_bytes"] = _dir_bytes(home) if home.is_dir() else 0
    out["seconds"] = round(time.time() - t0, 1)
    Path(manifest).write_text(json.dumps(out, indent=1))
    return out


def prefetch_corpus(source: str, max_documents: int) -> dict[str, Any]:
    """Stream the training sample of hub corpus ``source`` (``hf:...``) into the file that the
    offline ``prepare_documents`` job reads (``data.corpus_sample_file``); what it fetched."""
    from huggingface_hub import HfApi

    from .config import ConfigError
    from .data import materialise_hf_corpus, parse_hf_ref

    ref = source.partition(":")[2]
    name, revision, *_ = parse_hf_ref(ref)
    try:
        commit = HfApi().dataset_info(name, revision=revision).sha
    except OSError as exc:
        raise ConfigError(f"training.corpus '{source}': {unknown_on_hub('dataset', name, revision, exc)}") from exc
    path, n = materialise_hf_corpus(ref, max_documents)
    if revision is None:
        print(f"WARNING corpus '{source}' has no pinned revision; sampled {name}@{commit}. "
              f"Pin it: hf:{name}@{commit}:{ref.split(':', 1)[1]}")
    print(f"corpus {source}: {n} documents from {name}@{commit} -> {path}")
    return {"revision": revision, "commit": commit, "documents": n, "file": str(path)}


def unknown_on_hub(kind: str, repo: str, revision: str | None, exc: BaseException) -> str:
    """What went wrong fetching a hub repo, in words that name it and its revision: an id the hub
    does not know (or that needs a token), a revision it does not have, or the hub's own error."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    causes, c = [], exc
    while c is not None and c not in causes:  # the whole chain: transformers wraps the hub's error
        causes.append(c)
        c = c.__cause__ or c.__context__
    at = f"{repo}@{revision}" if revision else repo
    if any(isinstance(c, RevisionNotFoundError) for c in causes):
        return f"the hub has {kind} '{repo}' but no revision '{revision}': pin a commit, branch or tag that it has"
    if any(isinstance(c, GatedRepoError) for c in causes):
        return f"{kind} '{at}' is gated: accept its terms on the hub and log in (`hf auth login`) before the prefetch"
    if any(isinstance(c, RepositoryNotFoundError) for c in causes):
        return (f"the hub has no {kind} '{repo}' (or it is private: log in with `hf auth login`); "
                "check the id's spelling")
    return f"cannot fetch {kind} '{at}': {exc}"


# ---- revisions offline ---------------------------------------------------------------------


class RevisionMismatch(RuntimeError):
    """An MTEB task's data came from another revision of its dataset repo than the one it pins."""


def loaded_revisions(obj: Any) -> set[str]:
    """Revisions of the prepared Arrow caches behind a loaded dataset (a DatasetDict, a dict or a
    dataclass of them): ``datasets`` files them under ``.../<org>___<name>/<config>/<version>/<commit>/``.
    Empty for data held in memory."""
    from datasets import Dataset

    if isinstance(obj, Dataset):
        return {Path(f["filename"]).parent.name for f in obj.cache_files}
    if isinstance(obj, dict) or (hasattr(obj, "keys") and hasattr(obj, "__getitem__")):
        return set().union(*(loaded_revisions(obj[k]) for k in obj.keys()))
    if isinstance(obj, (list, tuple)):
        return set().union(*(loaded_revisions(v) for v in obj))
    if hasattr(obj, "__dataclass_fields__"):
        return set().union(*(loaded_revisions(getattr(obj, f)) for f in obj.__dataclass_fields__))
    return set()


def check_task_revision(task: Any) -> None:
    """Fail unless a loaded MTEB task's data is the revision its metadata pins.

    Offline, ``datasets`` ignores the requested revision and loads the most recently prepared
    one in the cache; a task and its ``.v2`` often share a dataset repo at two revisions.
    """
    meta = task.metadata
    pinned, repo = meta.dataset.get("revision"), meta.dataset.get("path")
    found = loaded_revisions(getattr(task, "dataset", None))
    if pinned and found and found != {pinned}:
        raise RevisionMismatch(
            f"task {meta.name}: pinned revision {pinned} of dataset {repo}, but the HF datasets cache "
            f"({os.environ.get('HF_HOME', 'the default HF_HOME')}) served revision {', '.join(sorted(found))}. "
            "Offline, datasets loads the most recently prepared revision of a repo, whatever was pinned, and "
            "tasks share repos (e.g. a task and its .v2). Use one hf_home per config that needs another "
            f"revision of {repo}, or delete the other revision's folder under <hf_home>/datasets/ and re-run "
            "the prefetch."
        )


def shared_repo_revisions(tasks: list[Any]) -> dict[str, dict[str, str]]:
    """{dataset repo: {task: pinned revision}} for every repo that tasks pin at more than one
    revision (e.g. a task and its .v2): one HF cache cannot serve both offline."""
    by_repo: dict[str, dict[str, str]] = {}
    for task in tasks:
        ds = task.metadata.dataset
        by_repo.setdefault(ds.get("path"), {})[task.metadata.name] = ds.get("revision")
    return {repo: pins for repo, pins in by_repo.items() if len(set(pins.values())) > 1}


def revision_checked(tasks: list[Any]) -> list[Any]:
    """The tasks, each checking its data's revision (``check_task_revision``) whenever it loads."""
    for task in tasks:
        def load_data(*args: Any, _load: Any = task.load_data, _task: Any = task, **kwargs: Any) -> None:
            _load(*args, **kwargs)
            check_task_revision(_task)

        task.load_data = load_data
    return tasks
