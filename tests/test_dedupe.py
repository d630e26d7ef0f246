"""Texts are deduplicated before sampling: the training corpus and the BBC evaluation sample."""

from __future__ import annotations

from tempcompress.data import BBCArticle, bbc_articles, bbc_sample, distinct_articles, load_corpus


def test_distinct_articles_drops_repeated_bodies_and_headlines() -> None:
    arts = [BBCArticle("a-1", "tech", "H1", "body one"), BBCArticle("a-2", "tech", "H2", "body one"),
            BBCArticle("b-1", "sport", "H1", "body three"), BBCArticle("b-2", "sport", "H4", "body four")]
    assert [a.doc_id for a in distinct_articles(arts)] == ["a-1", "b-2"]


def test_bbc_evaluation_sample_has_no_duplicate_story() -> None:
    assert len({a.body for a in bbc_articles()}) < len(bbc_articles())  # the shipped set repeats stories
    for n in (300, 5000):
        sample = bbc_sample(n, 0)
        assert len({a.body for a in sample}) == len({a.headline for a in sample}) == len(sample)
    assert len(bbc_sample(300, 0)) == 300


def test_training_corpus_has_no_duplicate_document() -> None:
    docs = load_corpus(["lee_background"])
    assert len(docs) == len(set(docs))
    both = load_corpus(["lee_background", "lee_background"])
    assert both == docs  # a source listed twice adds nothing
