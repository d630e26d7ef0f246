"""Grid values as YAML numbers, the in-domain fit set, and the two ID samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, read_yaml
from tempcompress.config import ConfigError, expand_runs, load_config

# ---- grid values -------------------------------------------------------------------------


def test_grid_values_may_be_yaml_numbers_and_name_one_run(tiny_raw: dict) -> None:
    as_strings = expand_runs(load_config(tiny_raw))
    tiny_raw["temperatures"] = [0.05, 1]
    tiny_raw["seeds"] = [0, 1]
    tiny_raw["variants"]["soup"]["temperatures"] = ["0.050", 1.0]
    tiny_raw["variants"]["mrl"]["temperature"] = 0.05
    cfg = load_config(tiny_raw)
    assert cfg["temperatures"] == ["0.05", "1.0"] and cfg["seeds"] == ["0", "1"]
    runs = expand_runs(cfg)
    assert runs == as_strings  # same run ids, hence the same paths
    assert runs["minilm.soup.seed-0"].parents == ("minilm.crop.tau-0.05.seed-0", "minilm.crop.tau-1.0.seed-0")


@pytest.mark.parametrize("values", [["0.1", 0.1], [0.1, "0.10"], ["1e-1", 0.1]])
def test_only_true_duplicate_temperatures_are_rejected(tiny_raw: dict, values: list) -> None:
    tiny_raw["temperatures"] = values
    with pytest.raises(ConfigError, match="same temperature"):
        load_config(tiny_raw)


def test_duplicate_seeds_and_non_numbers_are_rejected(tiny_raw: dict) -> None:
    tiny_raw["seeds"] = [1, "01"]
    with pytest.raises(ConfigError, match="same seed"):
        load_config(tiny_raw)
    tiny_raw["seeds"] = ["one"]
    with pytest.raises(ConfigError, match="seeds"):
        load_config(tiny_raw)


# ---- the fit set -------------------------------------------------------------------------


def test_fit_set_is_held_out_in_domain_text(tmp_path) -> None:
    """Whole BBC articles outside the evaluation sample and Lee background documents; never a
    text that a task scores."""
    from tempcompress.data import bbc_sample, lee_documents
    from tempcompress.stages import prepare_fit_texts, write_documents

    cfg = load_config(read_yaml(ROOT / "config" / "tiny.yaml"))
    write_documents(tmp_path / "docs.parquet", [("a sentence of a document.",)])
    prepare_fit_texts(cfg, str(tmp_path / "docs.parquet"), str(tmp_path / "fit.parquet"), str(tmp_path / "m.json"))
    fit = pd.read_parquet(tmp_path / "fit.parquet")["text"].tolist()
    assert len(fit) == len(set(fit)) == cfg["compression"]["fit_size"]
    sample = bbc_sample(cfg["evaluation"]["max_documents"], 0)
    scored = {a.body for a in sample} | {a.headline for a in sample} | set(lee_documents())
    assert not scored & set(fit)
    from tempcompress.data import bbc_articles, gensim_test_data, read_lines_latin1

    bodies = {a.body for a in bbc_articles()}
    lee_background = set(read_lines_latin1(gensim_test_data() / "lee_background.cor"))
    assert sum(t in bodies for t in fit) >= 25 and sum(t in lee_background for t in fit) >= 25
    assert np.median([len(t.split()) for t in fit if t in bodies | lee_background]) > 100  # documents


def test_fit_set_of_a_real_mteb_task_is_its_train_split() -> None:
    from mteb.mocks.mock_tasks.classification import MockClassificationTask
    from tempcompress.data import _split_strings, mteb_train_texts

    task = MockClassificationTask()
    task.load_data()
    texts = mteb_train_texts(task)
    train = set(_split_strings(task.dataset, "train"))
    test = set(_split_strings(task.dataset, "test"))
    assert texts and set(texts) <= train and not set(texts) & test


def test_fit_sources_follow_the_domains_not_the_task_list() -> None:
    from tempcompress.data import fit_sources

    a = fit_sources(["LeeSTS", "BBCNewsClassification"])
    assert a == fit_sources(["LeeSTS", "BBCNewsClassification", "BBCNewsClustering"])
    assert "bbc_held_out_headlines" in fit_sources(["BBCHeadlineRetrieval"])
    assert fit_sources(["STSBenchmark"]) == ["STSBenchmark:train"]


# ---- the ID samples ----------------------------------------------------------------------


def test_eval_id_sample_is_the_same_texts_whatever_the_row_order() -> None:
    from tempcompress.stages import eval_sample_rows

    ids = [f"{i:04x}" for i in range(300)]
    rows = eval_sample_rows(ids, 50, 0)
    shuffled = list(reversed(ids))
    rows2 = eval_sample_rows(shuffled, 50, 0)
    assert len(rows) == 50 and {ids[i] for i in rows} == {shuffled[i] for i in rows2}
    assert len(eval_sample_rows(ids[:20], 50, 0)) == 20


def test_id_is_estimated_on_unit_vectors() -> None:
    """Rescaling embeddings (a norm direction the cosine loss never trains) changes nothing."""
    from tempcompress.intrinsic_dim import estimate, l2_normalise

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 64))
    scaled = x * rng.uniform(0.2, 5.0, size=(400, 1))
    a = estimate(l2_normalise(x), ["twonn", "mle"], {"mle_k": 10})
    b = estimate(l2_normalise(scaled), ["twonn", "mle"], {"mle_k": 10})
    assert [r["id"] for r in a] == pytest.approx([r["id"] for r in b])
    raw = estimate(scaled, ["twonn", "mle"], {"mle_k": 10})
    assert [r["id"] for r in raw] != pytest.approx([r["id"] for r in b])
    assert np.allclose(np.linalg.norm(l2_normalise(scaled), axis=1), 1)


def test_mle_is_the_harmonic_mean_of_skdim_pointwise_estimates() -> None:
    import skdim
    from tempcompress.intrinsic_dim import knn, mle, prepare_sample

    x = prepare_sample(np.random.default_rng(1).normal(size=(300, 5)))
    dist, idx = knn(x, 10)
    est = skdim.id.MLE().fit(x, precomputed_knn_arrays=(dist, idx), n_neighbors=10)
    assert mle(x, {"mle_k": 10}) == pytest.approx(1 / np.mean(1 / est.dimension_pw_))
    assert mle(x, {"mle_k": 10}) != pytest.approx(np.mean(est.dimension_pw_))
