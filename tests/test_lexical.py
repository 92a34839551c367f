"""BM25 index: stemming, datasource filter, persistence, and the coverage relevance."""

from __future__ import annotations

from pathlib import Path

from knowledge.retrieval.lexical import LexicalIndex

IDS = ["c1", "c2", "c3", "c4"]
TEXTS = [
    "Rotating API keys: create a new key, then revoke the old key.",
    "The bot posts answers in the thread where it was mentioned.",
    "Videos render in the background and are uploaded when ready.",
    "Indexing documents: the knowledge base accepts markdown and PDF files.",
]
SOURCES = ["ops", "users", "users", "ops"]


def test_stemmed_match_ranks_the_right_chunk_first() -> None:
    index = LexicalIndex.build(IDS, TEXTS, SOURCES)
    hits = index.search("how are video uploads rendered?", n=3)
    assert hits[0][0] == "c3"
    assert index.search("rotate keys", n=3)[0][0] == "c1"
    assert index.search("zebra giraffe", n=3) == []


def test_datasource_filter(tmp_path: Path) -> None:
    index = LexicalIndex.build(IDS, TEXTS, SOURCES)
    hits = index.search("documents answers thread markdown", n=4, datasources=["users"])
    assert [doc for doc, _ in hits] == ["c2"]


def test_persisted_index_answers_the_same(tmp_path: Path) -> None:
    index = LexicalIndex.build(IDS, TEXTS, SOURCES)
    index.save(tmp_path / "v1")
    loaded = LexicalIndex.load(tmp_path / "v1")
    assert loaded.search("index pdf documents", n=2) == index.search("index pdf documents", n=2)
    assert loaded.coverage("rotate keys", TEXTS[0]) == index.coverage("rotate keys", TEXTS[0])


def test_coverage_is_high_for_the_rare_terms_and_zero_for_off_topic() -> None:
    index = LexicalIndex.build(IDS, TEXTS, SOURCES)
    assert index.coverage("rotate API keys", TEXTS[0]) == 1.0
    assert index.coverage("bake sourdough bread", TEXTS[0]) == 0.0
    partial = index.coverage("rotate keys in kubernetes", TEXTS[0])
    assert 0.3 < partial < 0.8


def test_empty_index_finds_nothing(tmp_path: Path) -> None:
    index = LexicalIndex.build([], [], [])
    assert index.search("anything", n=5) == []
    index.save(tmp_path / "empty")
    assert LexicalIndex.load(tmp_path / "empty").search("anything", n=5) == []
