"""One function per pipeline stage; the Snakemake scripts only pass paths to these.

Each stage reads the cached artifacts of the stage before it and writes its own, with a
provenance JSON beside it.  Nothing here re-encodes text after the encode stage.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .artifacts import load_matrix, matrix_record
from .config import NO_RESULT_KEYS, RunSpec, expand_runs, trusts_remote_code, variant_settings
from .provenance import atomic_output, file_sha256, provenance, write_json


def _texts_out(path: str | Path, texts: list[str]) -> None:
    """Texts with their stable ids (SHA-1 prefix), row i = row i of the matching .npy."""
    from .data import text_id

    with atomic_output(path) as tmp:
        pd.DataFrame({"id": [text_id(t) for t in texts], "text": texts}).to_parquet(tmp, index=False)


def read_texts(path: str | Path) -> list[str]:
    return pd.read_parquet(path)["text"].tolist()


# ---- 0. text samples ---------------------------------------------------------------------


def write_documents(path: str | Path, docs: list[tuple[str, ...]]) -> None:
    with atomic_output(path) as tmp:
        pd.DataFrame({"doc": range(len(docs)), "sentences": [list(d) for d in docs]}).to_parquet(tmp, index=False)


def read_documents(path: str | Path) -> list[tuple[str, ...]]:
    return [tuple(s) for s in pd.read_parquet(path)["sentences"]]


def prepare_documents(config: dict[str, Any], docs_out: str, meta_out: str) -> None:
    """The unlabeled training documents (every trained model depends on them)."""
    from .data import load_corpus

    tr = config["training"]
    docs = load_corpus(tr["corpus"], tr["max_documents"])
    write_documents(docs_out, docs)
    write_json(meta_out, provenance(config, n_documents=len(docs), corpus=tr["corpus"]))


def prepare_id_texts(config: dict[str, Any], docs_path: str, id_out: str, meta_out: str) -> None:
    """The corpus ID sample: a fixed-seed sample of the training documents' distinct sentences."""
    from .data import sample_texts, unique_sentences

    sents = unique_sentences(read_documents(docs_path))
    cfg = config["intrinsic_dim"]
    if len(sents) < cfg["sample_size"]:
        raise ValueError(
            f"the training corpus has {len(sents)} distinct sentences, fewer than intrinsic_dim.sample_size "
            f"= {cfg['sample_size']}: lower it or add corpora to training.corpus"
        )
    sample = sample_texts(sents, len(sents), cfg["seed"])[: cfg["sample_size"]]
    _texts_out(id_out, sample)
    write_json(meta_out, provenance(config, n_sentences=len(sents), n_id=len(sample), seed=cfg["seed"]))


def fit_pools(config: dict[str, Any], docs_path: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Held-out in-domain texts per source, and for each task where its fit texts come from.

    Local tasks: BBC articles outside the evaluation sample, Lee background documents.  Real
    MTEB tasks: the task's train split (minus texts of its evaluation splits); a task without
    one falls back to whole training-corpus documents, and the returned origin says so.
    """
    from .data import local_fit_pools, mteb_train_texts
    from .tasks import LOCAL_TASKS

    ev = config["evaluation"]
    local = [t for t in ev["tasks"] if t in LOCAL_TASKS]
    pools = local_fit_pools(local, ev["max_documents"])
    origin = {t: "Lee background documents" if t == "LeeSTS" else "BBC articles outside the evaluation sample"
              for t in local}
    fallback = False
    for name in (t for t in ev["tasks"] if t not in LOCAL_TASKS):
        import mteb

        texts = mteb_train_texts(mteb.get_task(name))
        if texts:
            pools[f"{name}:train"] = texts
            origin[name] = "its train split"
        else:
            fallback = True
            origin[name] = "no train split: training-corpus documents"
    if fallback or not pools:
        pools["training_documents"] = [" ".join(d) for d in read_documents(docs_path)]
    return pools, origin


def prepare_fit_texts(config: dict[str, Any], docs_path: str, fit_out: str, meta_out: str) -> None:
    """The fit set that PCA / int8 / the learned projections are fitted on: held-out texts of the
    evaluation tasks' own domain, of matching length (whole documents), never the evaluation sample."""
    from .data import draw_fit_set

    comp = config["compression"]
    pools, origin = fit_pools(config, docs_path)
    texts = draw_fit_set(pools, comp["fit_size"], comp["seed"])
    if len(texts) < comp["fit_size"]:
        raise ValueError(
            f"only {len(texts)} held-out in-domain texts for the fit set, fewer than compression.fit_size = "
            f"{comp['fit_size']}: lower compression.fit_size (or evaluation.max_documents)"
        )
    _texts_out(fit_out, texts)
    chosen = set(texts)
    write_json(meta_out, provenance(config, n_fit=len(texts), seed=comp["seed"], origin=origin,
                                    pool_sizes={k: len(v) for k, v in pools.items()},
                                    drawn={k: sum(t in chosen for t in dict.fromkeys(v)) for k, v in pools.items()}))


# ---- 1. training -------------------------------------------------------------------------


def failure_marker(failed_dir: str | Path, run_id: str) -> Path:
    return Path(failed_dir) / f"{run_id}.json"


@contextlib.contextmanager
def divergence_marker(config: dict[str, Any], run_id: str, failed_dir: str | Path) -> Iterator[None]:
    """On NaN/inf loss or embeddings, leave a marker naming the run and re-raise: later
    invocations leave it out of the tables and mark it missing in the figures (delete the
    marker to retry).  On success, remove a stale marker of the same run."""
    from .embeddings import EmbeddingsNotFiniteError
    from .training import TrainingDivergedError

    marker = failure_marker(failed_dir, run_id)
    try:
        yield
    except (TrainingDivergedError, EmbeddingsNotFiniteError) as exc:
        write_json(marker, provenance(config, run=run_id, error=str(exc)))
        raise
    marker.unlink(missing_ok=True)


def model_revision(config: dict[str, Any], spec: RunSpec) -> str | None:
    """The hub commit a run's base model was loaded at (resolved from the HF cache, which holds
    it once the model is loaded), or None for a package / local folder."""
    from .models import hub_commit

    mcfg = config["models"][spec.model]
    kind, _, ref = mcfg["source"].partition(":")
    return hub_commit(ref, mcfg.get("revision")) if kind == "hub" else None


def _load_base(config: dict[str, Any], spec: RunSpec, device: str | None = None) -> Any:
    """The run's starting model as configured (source, revision, kept and re-initialised layers)."""
    from .models import load_model

    mcfg = config["models"][spec.model]
    return load_model(mcfg["source"], revision=mcfg.get("revision"), device=device,
                      keep_layers=mcfg.get("keep_layers"), reinit_top_layers=mcfg.get("reinit_top_layers", 0),
                      seed=int(spec.seed), trust_remote_code=trusts_remote_code(config, spec.model))


def train(config: dict[str, Any], run_id: str, docs_path: str, model_out: str, loss_out: str, meta_out: str,
          checkpoint_dir: str, parent_dirs: list[str], failed_dir: str = "results/failed") -> None:
    """Fine-tune one run (or average its parents for a soup) and save the model.

    A diverged run (NaN/inf loss or embeddings) fails with an error naming the run and its
    temperature, leaves a marker in ``failed_dir`` and deletes its checkpoints, so that a
    retry starts from the beginning, not from the state just before the divergence.
    """
    from .training import TrainingDivergedError, clean_checkpoints

    try:
        with divergence_marker(config, run_id, failed_dir):
            _train(config, run_id, docs_path, model_out, loss_out, meta_out, checkpoint_dir, parent_dirs)
    except TrainingDivergedError:
        clean_checkpoints(Path(checkpoint_dir))
        raise


def training_settings(config: dict[str, Any], spec: RunSpec, docs_sha256: str) -> dict[str, Any]:
    """Everything a resumed checkpoint must share with the run that resumes it (checkpoint
    frequency and gradient checkpointing aside, which change no result)."""
    training = {k: v for k, v in config["training"].items() if k not in NO_RESULT_KEYS["training"]}
    variant = variant_settings(config, spec.variant) if spec.variant in config["variants"] else {}
    return {"run": spec.run_id, "training": training, "variant": variant or None,
            "model": config["models"][spec.model], "documents_sha256": docs_sha256,
            "target_dims": matryoshka_dims(config, spec) if spec.kind.startswith("matryoshka") else None}


DEFAULT_MATRYOSHKA_DIMS = (256, 128, 64, 32, 16)


def matryoshka_dims(config: dict[str, Any], spec: RunSpec) -> list[int]:
    """The prefix sizes a Matryoshka loss trains (besides the full size): the variant's own
    ``matryoshka_dims``, else a fixed ladder.  Never ``compression.dims``, so that adding a
    target dim to the evaluation never retrains a model."""
    var = config["variants"].get(spec.variant) or {}
    return sorted(var.get("matryoshka_dims") or DEFAULT_MATRYOSHKA_DIMS)


def _train(config: dict[str, Any], run_id: str, docs_path: str, model_out: str, loss_out: str, meta_out: str,
           checkpoint_dir: str, parent_dirs: list[str]) -> None:
    from transformers import set_seed

    from .convergence import plateau_check
    from .embeddings import encode_texts
    from .models import device_report, stage_device
    from .training import (
        TrainingDivergedError,
        apply_masks,
        build_loss,
        check_finite_history,
        clean_checkpoints,
        fine_tune,
        gradient_shares,
        lr_scheduler,
        make_pairs,
        make_soup,
        prune_masks,
        resolve_precision,
        saliency_scores,
        settings_checkpoint_dir,
        sparsity,
        write_loss_curve,
    )

    spec: RunSpec = expand_runs(config)[run_id]
    training = config["training"]
    dims = matryoshka_dims(config, spec)
    ckpt = Path(checkpoint_dir)
    extra: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    if spec.kind == "soup":
        device = "cpu"
        model = make_soup([Path(p) for p in parent_dirs], device=device,
                          trust_remote_code=trusts_remote_code(config, spec.model))
        extra["parents"] = list(spec.parents)
    else:
        device = stage_device(config, "train")  # fails at once unless the requested GPU is visible
        model = _load_base(config, spec, device)
        extra["base_model_revision"] = model_revision(config, spec)
        model.max_seq_length = training["max_seq_length"]
        masks = None
        docs = read_documents(docs_path)
        batch = training["batch_size"]
        crop = training["crop_sentences"]
        if spec.kind == "sparse":
            set_seed(int(spec.seed))
            a, p = make_pairs(docs, 8 * batch, "crop", crop, int(spec.seed) + 1, batch)
            masks = prune_masks(saliency_scores(model, a, p, batch, seed=int(spec.seed)), spec.prune_fraction)
            apply_masks(model, masks)
            extra["sparsity_after_pruning"] = sparsity(model)
        if spec.kind == "multi_temperature":
            # on the first batch the trainer sees (make_pairs' first block, same seed)
            a, p = make_pairs(docs, batch, spec.augmentation, crop, int(spec.seed), batch)
            loss = build_loss(model, spec, model.get_embedding_dimension(), dims, training["symmetric"])
            extra["gradient_shares"] = gradient_shares(model, loss, a, p)
        settings = training_settings(config, spec, file_sha256(docs_path))
        t0 = time.perf_counter()
        history = fine_tune(model, spec, training, docs, settings_checkpoint_dir(ckpt, settings), dims, masks=masks)
        extra["train_seconds"] = round(time.perf_counter() - t0, 3)  # the trainer's steps (bench/overhead.py)
        check_finite_history(history, spec)
        extra["plateau"] = plateau_check([h["loss"] for h in history])
        extra["lr_scheduler"] = lr_scheduler(training)
        extra["precision"] = resolve_precision(training["precision"])
        extra["symmetric"] = training["symmetric"]
        if masks is not None:
            extra["sparsity_final"] = sparsity(model)
    probe = ["a short probe sentence to check the model still produces finite embeddings"] * 2
    try:
        encode_texts(model, probe, 2, f"run '{run_id}' (tau={spec.tau_label})")
    except RuntimeError as exc:
        raise TrainingDivergedError(str(exc)) from exc
    model.save(model_out)
    write_loss_curve(history, Path(loss_out), spec)
    extra.update(device_report(device))
    write_json(meta_out, provenance(config, run=run_id, seed=spec.seed, tau=spec.tau_label, kind=spec.kind,
                                    variant=spec.variant, steps=len(history), **extra))
    clean_checkpoints(ckpt)


# ---- 2. encoding -------------------------------------------------------------------------


def encode(config: dict[str, Any], run_id: str, model_dir: str | None, out_dir: str,
           failed_dir: str = "results/failed") -> None:
    """Encode, once, every text the tasks ask for (the shared samples: ``encode_sample``)."""
    with divergence_marker(config, run_id, failed_dir):
        _encode(config, run_id, model_dir, out_dir)


def _run_model(config: dict[str, Any], spec: RunSpec, model_dir: str | None) -> Any:
    """A run's model for encoding: the configured base model, or the trained one, on the device
    the encode stage requested (failing at once unless the requested GPU is visible)."""
    from .models import load_trained, stage_device

    device = stage_device(config, "encode")
    model = (_load_base(config, spec, device) if model_dir is None
             else load_trained(model_dir, device, trust_remote_code=trusts_remote_code(config, spec.model)))
    model.max_seq_length = config["evaluation"]["max_seq_length"]
    return model


def encode_sample(config: dict[str, Any], run_id: str, model_dir: str | None, texts_path: str, out_npy: str,
                  meta_out: str, failed_dir: str = "results/failed") -> None:
    """One run's embeddings (float32, row i = text i) of a shared sample: the ID sample or the fit set."""
    from .embeddings import encode_texts, forward_seconds
    from .models import device_report

    with divergence_marker(config, run_id, failed_dir):
        spec: RunSpec = expand_runs(config)[run_id]
        model = _run_model(config, spec, model_dir)
        matrix = encode_texts(model, read_texts(texts_path), config["evaluation"]["batch_size"], f"run '{run_id}'")
        with atomic_output(out_npy) as tmp:
            np.save(tmp, matrix)
        write_json(meta_out, provenance(config, run=run_id, seed=spec.seed, n_texts=int(matrix.shape[0]),
                                        artifacts={Path(out_npy).name: matrix_record(out_npy)},
                                        texts=str(texts_path), max_seq_length=model.max_seq_length,
                                        forward_seconds=forward_seconds(), **device_report(str(model.device))))


def eval_texts(tasks: list[Any], model: Any, run_id: str, batch_size: int) -> tuple[list[str], np.ndarray]:
    """Every distinct text the tasks will ask for, and its embedding, each encoded once.

    The texts are read from each task's loaded data (``tasks.task_texts``), without running
    an evaluation; a task type without a text collector is evaluated once with a recording
    encoder instead (which re-uses the embeddings already computed).
    """
    from .mteb_bridge import RecordingEncoder, encode_texts, run_tasks
    from .tasks import TextCollectionUnsupported, task_texts

    texts: list[str] = []
    unsupported = []
    for task in tasks:
        task.load_data()
        try:
            texts += task_texts(task)
        except TextCollectionUnsupported:
            unsupported.append(task)
        finally:
            task.unload_data()
    texts = list(dict.fromkeys(texts))
    matrix = encode_texts(model, texts, batch_size, f"run '{run_id}'") if texts else None
    if not unsupported:
        return texts, matrix
    recorder = RecordingEncoder(model, run_id, batch_size)
    if matrix is not None:
        recorder.store.update(zip(texts, matrix, strict=True))
    run_tasks(recorder, unsupported, cache_dir=None, batch_size=batch_size)
    return recorder.table()


def _encode(config: dict[str, Any], run_id: str, model_dir: str | None, out_dir: str) -> None:
    from .embeddings import forward_seconds
    from .hub import revision_checked
    from .models import device_report
    from .tasks import build_tasks

    spec: RunSpec = expand_runs(config)[run_id]
    ev = config["evaluation"]
    model = _run_model(config, spec, model_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts, matrix = eval_texts(revision_checked(build_tasks(ev["tasks"], ev)), model, run_id, ev["batch_size"])
    with atomic_output(out / "eval.npy") as tmp:
        np.save(tmp, matrix)
    _texts_out(out / "eval_texts.parquet", texts)
    record = matrix_record(out / "eval.npy")
    write_json(out / "meta.json", provenance(config, run=run_id, seed=spec.seed, n_eval_texts=len(texts),
                                             dim=int(matrix.shape[1]), max_seq_length=ev["max_seq_length"],
                                             model_revision=model_revision(config, spec) if model_dir is None else None,
                                             eval_sha256=record["sha256"], artifacts={"eval.npy": record},
                                             forward_seconds=forward_seconds(), **device_report(str(model.device))))


# ---- 3. intrinsic dimension --------------------------------------------------------------


def eval_sample_rows(text_ids: list[str], n: int, seed: int) -> np.ndarray:
    """Rows of a run's eval.npy forming the fixed-seed evaluation ID sample: drawn from the sorted
    text ids, so every run whose evaluation texts are the same gets the same texts."""
    from .data import sample_texts

    chosen = set(sample_texts(sorted(set(text_ids)), n, seed))
    return np.array([i for i, t in enumerate(text_ids) if t in chosen], dtype=int)


def intrinsic_dim(config: dict[str, Any], run_id: str, sample_npy: str, out_csv: str,
                  eval_npy: str | None = None, eval_texts: str | None = None) -> None:
    """ID estimates of a run's L2-normalised embeddings of two samples: ``corpus`` (the shared
    fixed ID sample of training-corpus sentences) and ``eval`` (a fixed-seed sample of the run's
    evaluation texts, rows of eval.npy, not re-encoded).  One row per (sample, estimator)."""
    from .intrinsic_dim import estimate, l2_normalise

    cfg = config["intrinsic_dim"]
    samples = {"corpus": load_matrix(sample_npy)}
    if eval_npy is not None and eval_texts is not None:
        ids = pd.read_parquet(eval_texts)["id"].tolist()
        rows = eval_sample_rows(ids, cfg["sample_size"], cfg["seed"])
        samples["eval"] = load_matrix(eval_npy, mmap=True)[rows]
    frames = []
    for name, x in samples.items():
        df = pd.DataFrame(estimate(l2_normalise(x), cfg["estimators"], {"mle_k": cfg["mle_k"]}))
        df.insert(0, "sample", name)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "run", run_id)
    with atomic_output(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    write_json(out_csv + ".meta.json", provenance(config, run=run_id, seed=cfg["seed"],
                                                  n_points={k: len(v) for k, v in samples.items()}))


# ---- 4. compression ----------------------------------------------------------------------


def _code_key(method: str, dim: str, field: str) -> str:
    return f"{method}:{dim}:{field}"


def compress(config: dict[str, Any], run_id: str, emb_dir: str, out_npz: str) -> None:
    """Compact codes of one run's eval embeddings: every method at every target dim (and each
    quantizer at the native dim), each fitted on the fit set only, all in one .npz
    (packed sign bits, int8 / int4 codes, float16 / bfloat16 / float8 bit patterns, float32)."""
    from .compression import check_method, fit_encode, score_variants, stored_nbytes

    emb = Path(emb_dir)
    full, fit = load_matrix(emb / "eval.npy"), load_matrix(emb / "fit.npy")
    comp = config["compression"]
    opts = {"seed": comp["seed"], "simproj_epochs": comp["simproj_epochs"]}
    arrays: dict[str, np.ndarray] = {}
    nbytes: dict[str, int] = {}
    for method, dim in score_variants(comp["methods"], comp["dims"], full.shape[1])[1:]:
        if check_method(method).needs_encoder:
            continue  # HPD: its own rule (hpd_compress)
        codes = fit_encode(method, fit, full, int(dim), opts)
        nbytes[f"{method}:{dim}"] = stored_nbytes(codes)
        arrays.update({_code_key(method, dim, k): v for k, v in codes.items()})
    Path(out_npz).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out_npz) as tmp:
        np.savez(tmp, **arrays)
    write_json(out_npz + ".meta.json",
               provenance(config, run=run_id, seed=comp["seed"], methods=comp["methods"], dims=comp["dims"],
                          native_dim=int(full.shape[1]), fit_size=len(fit), stored_bytes=nbytes))


def hpd_compress(config: dict[str, Any], run_id: str, model_dir: str | None, fit_texts: str, eval_texts: str,
                 out_npz: str) -> None:
    """HPD codes of one run at every target dim: for each d, a student (a copy of the run's
    encoder plus a PCA-initialised Dense(d, tanh)) is trained with MSE to the PCA-projected
    embeddings of the fit texts (``compression.hpd_epochs`` epochs), then encodes the
    evaluation texts.  One .npz in the compress format, so scoring reads it the same way."""
    import time

    from .hpd import hpd_embeddings
    from .models import device_report

    spec: RunSpec = expand_runs(config)[run_id]
    comp, ev = config["compression"], config["evaluation"]
    model = _run_model(config, spec, model_dir)
    fit, texts = read_texts(fit_texts), read_texts(eval_texts)
    arrays: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for dim in comp["dims"]:
        t0 = time.perf_counter()
        emb = hpd_embeddings(model, fit, texts, int(dim), epochs=comp["hpd_epochs"], batch_size=ev["batch_size"],
                             seed=comp["seed"])
        seconds[str(dim)] = round(time.perf_counter() - t0, 2)
        arrays[_code_key("hpd", str(dim), "x")] = emb
    Path(out_npz).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out_npz) as tmp:
        np.savez(tmp, **arrays)
    write_json(out_npz + ".meta.json", provenance(config, run=run_id, seed=comp["seed"], dims=comp["dims"],
                                                  epochs=comp["hpd_epochs"], fit_size=len(fit), seconds=seconds,
                                                  **device_report(str(model.device))))


def read_codes(paths: str | Path | list[str]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """The compact codes of compress (and hpd) .npz files, by (method, dim)."""
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    if isinstance(paths, (list, tuple)):
        for p in paths:
            out.update(read_codes(p))
        return out
    path = paths
    with np.load(path) as z:
        for key in z.files:
            method, dim, field = key.split(":")
            out.setdefault((method, dim), {})[field] = z[key]
    return out


def _codes_sha(codes: dict[str, np.ndarray]) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in sorted(codes):
        h.update(name.encode())
        h.update(np.ascontiguousarray(codes[name]).tobytes())
    return h.hexdigest()[:12]


# ---- 5. scoring --------------------------------------------------------------------------

SCORE_SETTINGS = ("tasks", "max_documents", "experiments", "samples_per_label", "normalize")


def score_key(evaluation: dict[str, Any], embeddings_sha: str) -> str:
    """The mteb cache revision of a run's scores: its embeddings and every evaluation setting
    that changes a score (a changed setting never serves a stale cached score)."""
    import hashlib
    import json

    settings = {k: evaluation[k] for k in SCORE_SETTINGS}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{embeddings_sha[:12]}-{digest}"


def score(config: dict[str, Any], run_id: str, emb_dir: str, codes_npz: str, out_csv: str,
          mteb_cache: str | None) -> None:
    """mteb scores of every (method, dim) of one run, served from cached embeddings.

    Each served matrix is decoded from its compact codes when a task needs it and, under the
    headline protocol (``evaluation.normalize``), L2-normalised.  All variants are scored in
    one pass that loads each task's data once (``mteb_bridge.score_variants``).
    """
    from functools import partial

    from .compression import decode, l2_normalize, score_variants
    from .hub import revision_checked
    from .mteb_bridge import Variant, model_meta
    from .mteb_bridge import score_variants as run_variants
    from .tasks import build_tasks

    ev, comp = config["evaluation"], config["compression"]
    emb = Path(emb_dir)
    texts = read_texts(emb / "eval_texts.parquet")
    full = load_matrix(emb / "eval.npy")
    codes = read_codes(codes_npz)
    revision = score_key(ev, file_sha256(emb / "eval.npy"))
    serve = l2_normalize if ev["normalize"] else (lambda m: np.asarray(m, dtype=np.float32))

    def build(method: str, variant_codes: dict[str, np.ndarray] | None) -> np.ndarray:
        return serve(full if variant_codes is None else decode(method, variant_codes))

    variants = []
    for method, dim in score_variants(comp["methods"], comp["dims"], full.shape[1]):
        if method == "none":
            var_codes, sha, width = None, revision, full.shape[1]
        elif (method, dim) in codes:
            var_codes, sha, width = codes[(method, dim)], _codes_sha(codes[(method, dim)]), int(dim)
        else:
            raise FileNotFoundError(
                f"{codes_npz} holds no codes for method '{method}' at dim {dim}: rerun the compress rule "
                f"for run '{run_id}' (snakemake -R compress)"
            )
        meta = model_meta(run_id, revision, width, {"method": method, "dim": dim, "sha": sha})
        variants.append(Variant(method, dim, meta, partial(build, method, var_codes)))
    cache = Path(mteb_cache) if mteb_cache is not None else None
    rows = run_variants(variants, texts, revision_checked(build_tasks(ev["tasks"], ev)), cache, ev["batch_size"])
    df = pd.DataFrame(rows)
    df.insert(0, "run", run_id)
    df["normalized"] = bool(ev["normalize"])
    with atomic_output(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    write_json(out_csv + ".meta.json", provenance(config, run=run_id, embeddings_revision=revision))
