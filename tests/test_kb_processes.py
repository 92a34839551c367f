"""Several OS processes on one knowledge base at once: two writers adding and removing
overlapping documents while a third searches, embedded and against a real `chroma run`."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from knowledge.index import BATCH, KnowledgeBase, Upload
from tests import kb_workers
from tests.fixtures.chroma_server import chroma_port, fresh_chroma_port

__all__ = ["chroma_port", "fresh_chroma_port"]  # fixtures, used by name

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
    assert len(own) == 2 * ROUNDS
    return own


def stored_chunks(kb: KnowledgeBase) -> int:
    state = kb._store.state()
    return kb._store.count(state.collection) if state else 0


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


def test_two_writers_and_a_searcher_share_the_embedded_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    own = run_writers_beside_a_searcher(tmp_path, data, None)
    kb = kb_workers.open_kb(data, None)
    assert_consistent(kb, own)
    hit = kb.search("w1r3p0 code word", k=1)[0]
    assert hit.chunk.source == "own-1-3.md"


@pytest.mark.chroma_server
def test_two_writers_and_a_searcher_share_a_chroma_server(tmp_path: Path, chroma_port: int) -> None:
    own = run_writers_beside_a_searcher(tmp_path, tmp_path / "a", chroma_port)
    kb = kb_workers.open_kb(tmp_path / "b", chroma_port)
    assert_consistent(kb, own)
    assert kb.search("w0r2p1 code word", k=1)[0].chunk.source == "own-0-2.md"


def long_document(path: Path) -> Path:
    path.write_text(
        "# Guide\n\n"
        + "\n\n".join(f"Paragraph {i} about penguins, number {i}." for i in range(1000))
    )
    return path


def start_paused_writer(
    tmp_path: Path, data: Path, port: int | None, lease: float
) -> tuple[Any, Any, Path]:
    paused, go = tmp_path / "paused", tmp_path / "go"
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(
        kb_workers.paused_writer,
        str(data),
        port,
        str(long_document(tmp_path / "guide.md")),
        str(paused),
        str(go),
        lease,
    )
    while not paused.exists():
        assert not future.done(), future.exception()
        time.sleep(0.05)
    return pool, future, go


def test_a_writer_never_sweeps_another_writers_running_add(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pool, future, go = start_paused_writer(tmp_path, data, None, lease=60)
    with pool:
        # The first writer is parked after its first batch; a second one adds beside it.
        other = kb_workers.open_kb(data, None)
        other.add([Upload("note.md", b"# Note\n\nA small note about walruses.\n")])
        go.touch()
        report = future.result(timeout=120)
    assert report["skipped"] == [] and report["chunks"] > BATCH
    kb = kb_workers.open_kb(data, None)
    assert_consistent(kb, {})
    assert {d.source.rsplit("/", 1)[-1]: d.chunks for d in kb.list_documents()} == {
        "guide.md": report["chunks"],
        "note.md": 1,
    }


@pytest.mark.chroma_server
def test_a_writer_whose_lease_ran_out_is_swept_and_told_to_add_again(
    tmp_path: Path, fresh_chroma_port: int
) -> None:
    # On a server: a stopped process may hold the embedded store's file lock, which is the
    # embedded mode's documented limit (others wait, then get a ChunkStoreError saying so).
    port = fresh_chroma_port
    pool, future, go = start_paused_writer(tmp_path, tmp_path / "a", port, lease=1.0)
    pid = next(iter(pool._processes))  # the worker's OS process
    other = kb_workers.open_kb(tmp_path / "b", port)
    while not other._store.pending() or stored_chunks(other) < BATCH:
        time.sleep(0.05)  # until its first batch and intent are written
    with pool:
        os.kill(pid, signal.SIGSTOP)  # a real pause: not even its lease renewer runs
        try:
            while any(i.expires > time.time() for i in other._store.pending()):
                time.sleep(0.1)  # wait for the stopped writer's lease to run out
            other.add([Upload("note.md", b"# Note\n\nA small note about walruses.\n")])
            assert other._store.pending() == []  # swept: its first batch is gone
        finally:
            os.kill(pid, signal.SIGCONT)
        go.touch()
        report = future.result(timeout=120)
    assert report["added"] == [] and report["chunks"] == 0
    assert "lease ran out" in report["skipped"][0] and "add again" in report["skipped"][0]
    kb = kb_workers.open_kb(tmp_path / "c", port)
    assert_consistent(kb, {})
    assert [d.source for d in kb.list_documents()] == ["note.md"]
