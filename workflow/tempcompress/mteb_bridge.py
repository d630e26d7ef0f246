"""The mteb model wrappers that make "encode once, score many" work.

* ``RecordingEncoder`` runs the real model: it encodes each distinct text a task asks
  for once (mteb asks for the Lee documents 49 times each) and keeps every embedding.
* ``LookupEncoder`` serves precomputed (compressed) embeddings by text, so mteb's own
  evaluators score a variant without running a transformer.
* ``score_variants`` evaluates every variant of a run in one pass: each task's data is
  loaded once and every variant is evaluated on it before the next task is loaded.
* ``heal_result_cache`` moves mteb cache entries aside before mteb reads them when they do not
  parse or do not match the hash recorded beside them (``<Task>.json.sha256``, written once mteb
  has written the entry), so that they are recomputed instead of failing every later score of
  the run or passing as its result.  mteb writes its result JSON in place: a job killed mid-write
  leaves a truncated file and no hash; an entry copied from elsewhere parses but mismatches.

Prompts are not applied (the offline model has none); texts are the strings mteb's
dataloaders hand to ``encode``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction

from .embeddings import EmbeddingsNotFiniteError, encode_texts  # noqa: F401  (re-exported)


def dataloader_texts(inputs: Any) -> list[str]:
    """The texts of an mteb dataloader, in order.

    mteb's dataloaders are unshuffled torch DataLoaders over a datasets.Dataset whose
    "text" column is what the collate function hands out; that column is read in one
    batch query (iterating the loader, or the dataset's lazy column, formats row by row).
    Anything else is iterated.
    """
    ds = getattr(inputs, "dataset", None)
    sampler = type(getattr(inputs, "sampler", None)).__name__
    if sampler == "SequentialSampler" and "text" in getattr(ds, "column_names", ()):
        return list(ds.select_columns(["text"])[:]["text"]) if len(ds) else []
    texts: list[str] = []
    for batch in inputs:
        texts.extend(batch["text"])
    return texts


def model_meta(name: str, revision: str, dim: int, experiment: dict[str, Any] | None = None) -> ModelMeta:
    return ModelMeta.create_empty(
        {
            "name": f"tempcompress/{name}",
            "revision": revision,
            "embed_dim": dim,
            "similarity_fn_name": ScoringFunction.COSINE,
            "framework": ["Sentence Transformers"],
            "experiment_kwargs": experiment,
        }
    )




class RecordingEncoder(AbsEncoder):
    """Encodes each distinct text once with a real model and remembers every embedding."""

    def __init__(self, model: Any, name: str, batch_size: int = 64) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size
        self.store: dict[str, np.ndarray] = {}
        self.mteb_model_meta = model_meta(name, "recording", model.get_embedding_dimension())

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        texts = dataloader_texts(inputs)
        new = [t for t in dict.fromkeys(texts) if t not in self.store]
        if new:
            emb = encode_texts(self.model, new, self.batch_size, f"model '{self.name}' on {task_metadata.name}")
            self.store.update(zip(new, emb, strict=True))
        return np.stack([self.store[t] for t in texts])

    def table(self) -> tuple[list[str], np.ndarray]:
        texts = list(self.store)
        return texts, np.stack([self.store[t] for t in texts]).astype(np.float32)


class LookupEncoder(AbsEncoder):
    """Serves rows of a precomputed matrix by text; fails loudly on a text it never saw.

    ``texts`` is the row order of ``matrix`` (a list), or an already built text -> row
    mapping shared by many encoders of one run.
    """

    def __init__(self, texts: list[str] | dict[str, int], matrix: np.ndarray, meta: ModelMeta) -> None:
        self.row = texts if isinstance(texts, dict) else {t: i for i, t in enumerate(texts)}
        self.matrix = matrix
        self.mteb_model_meta = meta
        self.calls = 0

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        texts = dataloader_texts(inputs)
        self.calls += 1
        try:
            idx = [self.row[t] for t in texts]
        except KeyError as exc:
            raise KeyError(
                f"{task_metadata.name}: a text was not encoded by the encode stage ({str(exc)[:60]}...); "
                "rerun the encode rule for this model (the task data changed?)"
            ) from None
        return np.asarray(self.matrix[idx], dtype=np.float32)


def _reseed(task: Any) -> None:
    """mteb tasks keep one RNG across evaluations (clustering draws its bootstrap samples
    from it): re-seed so that every variant is scored on the same samples."""
    from mteb._set_seed import _set_seed

    task.rng_state, task.np_rng = _set_seed(task.seed)


def read_json(path: Path) -> Any:
    """A JSON file's content (every line of a ``.jsonl`` file); raises on anything unreadable."""
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError("the file is empty")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def hash_file(entry: Path) -> Path:
    """Where the hash of a cached mteb result is recorded."""
    return entry.with_name(entry.name + ".sha256")


def record_hash(entry: Path) -> None:
    """Record the hash of a result mteb has finished writing (atomically: a hash file is whole
    or absent)."""
    from .provenance import atomic_output, file_sha256

    with atomic_output(hash_file(entry)) as tmp:
        tmp.write_text(file_sha256(entry) + "\n")


def check_hash(entry: Path) -> None:
    """Raise unless a cached result matches the hash recorded when it was written."""
    from .provenance import file_sha256

    recorded = hash_file(entry)
    if not recorded.is_file():
        raise ValueError(f"no hash recorded beside it ({recorded.name}): mteb's write may not have finished")
    if recorded.read_text().strip() != file_sha256(entry):
        raise ValueError(f"its content does not match the hash recorded when it was written ({recorded.name})")


def read_result(path: Path) -> Any:
    """A cached mteb task result, checked against its recorded hash and parsed by mteb itself."""
    from mteb.results import TaskResult

    check_hash(path)
    return TaskResult.from_disk(path)


def quarantine_if_unreadable(path: Path, load: Callable[[Path], Any] = read_json) -> Path | None:
    """Move a cache file aside when ``load`` cannot read it (truncated, zero bytes, invalid, or
    not the content its hash records); returns where it went (``<name>.corrupt-<timestamp>``), or
    None when it is readable or absent.  A recorded hash beside it is removed with it.

    The caller then recomputes the entry as if it had never been cached.  A warning names the
    file, its new name and the error, so that nothing is lost silently.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        load(path)
        return None
    except Exception as exc:  # noqa: BLE001  (whatever makes it unreadable, the entry is recomputed)
        error = f"{type(exc).__name__}: {exc}"
    hash_file(path).unlink(missing_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    dest = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    os.replace(path, dest)
    print(f"WARNING unreadable cache entry {path} ({error[:200]}): moved aside to {dest.name}; "
          "it is recomputed", flush=True)
    return dest


def result_paths(cache_dir: Path, meta: ModelMeta, task_names: list[str]) -> list[Path]:
    """Where mteb keeps the result of ``meta`` on each task in the cache."""
    import mteb

    cache = mteb.ResultCache(cache_path=cache_dir)
    return [cache.get_task_result_path(task_name=name, model_name=meta) for name in task_names]


def heal_result_cache(cache_dir: Path, meta: ModelMeta, task_names: list[str]) -> list[Path]:
    """Quarantine the unreadable mteb cache files an evaluation of ``meta`` on these tasks would
    read: each task's result JSON (checked against its recorded hash and with mteb's own loader),
    and the run settings and model meta beside it.  Returns the quarantined files' new paths."""
    moved = []
    for result in result_paths(cache_dir, meta, task_names):
        for path, load in ((result, read_result), (result.parent / "run_settings.jsonl", read_json),
                           (result.parent / "model_meta.json", read_json)):
            dest = quarantine_if_unreadable(path, load)
            if dest is not None:
                moved.append(dest)
    return moved


def _evaluate(encoder: AbsEncoder, tasks: list[Any], cache_dir: Path | None, batch_size: int) -> list[dict[str, Any]]:
    import mteb

    names = [t.metadata.name for t in tasks]
    written_before: dict[Path, int | None] = {}
    if cache_dir is not None:
        heal_result_cache(cache_dir, encoder.mteb_model_meta, names)
        written_before = {e: e.stat().st_mtime_ns if e.is_file() else None
                          for e in result_paths(cache_dir, encoder.mteb_model_meta, names)}
    cache = mteb.ResultCache(cache_path=cache_dir) if cache_dir is not None else None
    result = mteb.evaluate(
        encoder,
        tasks,
        cache=cache,
        encode_kwargs={"batch_size": batch_size},
        show_progress_bar=False,
        overwrite_strategy="only-missing",
    )
    task_results = result.task_results
    if cache_dir is not None:
        # every entry is now whole: the heal checked it against its hash and mteb read it, or mteb
        # (re)wrote it, and then its hash is recorded; the score is taken as persisted (mteb rounds
        # to 6 decimals on writing), so that a score read back from the cache after a kill is
        # bit-identical to an unbroken run's
        from mteb.results import TaskResult

        task_results = []
        for entry, before in written_before.items():
            if before != entry.stat().st_mtime_ns or not hash_file(entry).is_file():
                record_hash(entry)
            task_results.append(TaskResult.from_disk(entry))
    by_name = {t.metadata.name: t for t in tasks}
    rows = []
    for tr in task_results:
        meta = by_name[tr.task_name].metadata
        rows.append({"task": tr.task_name, "task_type": meta.type, "metric": meta.main_score,
                     "score": float(tr.get_score())})
    return rows


def run_tasks(encoder: AbsEncoder, tasks: list[Any], cache_dir: Path | None,
              batch_size: int = 64) -> list[dict[str, Any]]:
    """Evaluate one encoder with mteb.evaluate; one row per task: task, type, metric (main score), score."""
    for task in tasks:
        _reseed(task)
    return _evaluate(encoder, tasks, cache_dir, batch_size)


@dataclass(frozen=True)
class Variant:
    """One served matrix of a run: its labels, its mteb identity, and how to build it."""

    method: str
    dim: str
    meta: ModelMeta
    matrix: Callable[[], np.ndarray]  # built when a task needs it (memory: one variant at a time)


@contextlib.contextmanager
def _loaded(task: Any) -> Iterator[None]:
    """The task's data loaded once for the block (and unloaded after, if loaded here)."""
    loaded_here = not task.data_loaded
    if loaded_here:
        task.load_data()
    try:
        yield
    finally:
        if loaded_here:
            task.unload_data()


def score_variants(variants: list[Variant], texts: list[str], tasks: list[Any], cache_dir: Path | None,
                   batch_size: int = 64) -> list[dict[str, Any]]:
    """mteb scores of every variant on every task, in one pass.

    Task-major: each task's data is loaded once, every variant is evaluated on it with
    mteb's own evaluator (``mteb.evaluate`` on the pre-loaded task, re-seeded per variant,
    results in the mteb result cache), then the data is unloaded.  Rows: method, dim, task,
    task_type, metric, score.
    """
    row = {t: i for i, t in enumerate(texts)}
    rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for ti, task in enumerate(tasks):
        with _loaded(task):
            for vi, var in enumerate(variants):
                _reseed(task)
                encoder = LookupEncoder(row, var.matrix(), var.meta)
                rows[vi, ti] = [{"method": var.method, "dim": var.dim, **r}
                                for r in _evaluate(encoder, [task], cache_dir, batch_size)]
    return [r for key in sorted(rows) for r in rows[key]]  # variant-major, tasks in order
