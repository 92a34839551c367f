"""Several OS processes on one knowledge base at once: two writers adding and removing
overlapping documents while a third searches, embedded and against a real `chroma run`."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from knowledge.index import KnowledgeBase
from tests import kb_workers
from tests.fixtures.chroma_server import chroma_port

__all__ = ["chroma_port"]  # a fixture, used by name

ROUNDS = 4


def run_writers_beside_a_searcher(tmp_path: Path, data: Path, port: int | None) -> dict:
    stop = tmp_path / "stop"
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        search = pool.submit(kb_workers.searcher, str(data), port, str(stop))
        writes = [pool.submit(kb_workers.writer, i, str(data), port, ROUNDS) for i in (0, 1)]
        try:
            own = {k: v for w in writes for k, v in w.result(timeout=300)["own"].items()}
        finally:
            stop.touch()
        searched = search.result(timeout=120)
    assert searched["failed"] == 0, searched["errors"]
    assert searched["searches"] > 0
    return own


def assert_consistent(kb: KnowledgeBase, own: dict[str, int]) -> None:
    """Every committed document has all its chunks, nothing else is stored, nothing pending,
    and every document a writer reported (and nobody removed) is there in full."""
    state = kb._store.state()
    assert state is not None
    stored = Counter(
        (row["metadatas"]["doc"], row["metadatas"]["gen"])
        for row in kb._store.iter_chunks(state.collection, include=("metadatas",))
    )
    manifest = kb._store.manifest()
    expected = Counter({(m["doc"], m["gen"]): int(m["chunks"]) for m in manifest})
    assert stored == expected  # no orphans, no missing chunks
    assert kb._store.pending() == []
    listed = {d.source: d.chunks for d in kb.list_documents()}
    assert {s: listed.get(s) for s in own} == own
    assert len(own) == 2 * ROUNDS


def test_two_writers_and_a_searcher_share_the_embedded_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    own = run_writers_beside_a_searcher(tmp_path, data, None)
    kb = kb_workers.open_kb(data, None)
    assert_consistent(kb, own)
    hit = kb.search("w1r3p0 code word", k=1)[0]
    assert hit.chunk.source == "own-1-3.md"


@pytest.mark.chroma_server
def test_two_writers_and_a_searcher_share_a_chroma_server(
    tmp_path: Path, chroma_port: int
) -> None:
    own = run_writers_beside_a_searcher(tmp_path, tmp_path / "a", chroma_port)
    kb = kb_workers.open_kb(tmp_path / "b", chroma_port)
    assert_consistent(kb, own)
    assert kb.search("w0r2p1 code word", k=1)[0].chunk.source == "own-0-2.md"
