"""CHROMA_HOST mode against a real `chroma run` server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase, Upload
from knowledge.retrieval.store import ChunkStoreError
from tests.fixtures.chroma_server import chroma_port, free_port, running_chroma

__all__ = ["chroma_port"]  # a fixture, used by name

pytestmark = pytest.mark.chroma_server


def server_kb(tmp_path: Path, port: int, name: str) -> KnowledgeBase:
    # Each replica has its own data dir (BM25 cache); the vectors live on the server.
    config = KnowledgeConfig(
        data_dir=tmp_path / name, embeddings="none", chroma_host="127.0.0.1", chroma_port=port
    )
    return KnowledgeBase(config)


def test_replicas_share_one_knowledge_base(tmp_path: Path, chroma_port: int) -> None:
    first, second = server_kb(tmp_path, chroma_port, "a"), server_kb(tmp_path, chroma_port, "b")
    report = first.add([Upload("runbook.md", b"# Runbook\n\nRestart the worker with systemctl.\n")])
    assert report.added == ["runbook.md"]
    assert not (tmp_path / "a" / "chroma").exists()  # nothing embedded on disk

    hit = second.search("how do I restart the worker?")[0]
    assert hit.chunk.source == "runbook.md" and hit.chunk.title == "Runbook"
    assert second.add(
        [Upload("runbook.md", b"# Runbook\n\nRestart the worker with systemctl.\n")]
    ).unchanged == ["runbook.md"]

    second.add([Upload("runbook.md", b"# Runbook\n\nReboot the host; workers come back.\n")])
    assert "Reboot the host" in first.search("reboot host")[0].chunk.text
    assert first.search("systemctl") == []
    assert first.stats() == second.stats()

    first.remove(["runbook.md"])
    assert second.search("reboot host") == []


def test_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    config = KnowledgeConfig(
        data_dir=tmp_path, embeddings="none", chroma_host="127.0.0.1", chroma_port=free_port()
    )
    with pytest.raises(ChunkStoreError, match=r"127\.0\.0\.1:\d+.*cannot connect"):
        KnowledgeBase(config)


def test_a_server_that_goes_away_is_a_store_error_not_a_chroma_or_httpx_one(
    tmp_path: Path,
) -> None:
    with running_chroma(tmp_path / "server") as port:
        kb = server_kb(tmp_path, port, "gone")
        kb.add([Upload("faq.md", b"# FAQ\n\nThe avatar speaks Esperanto.\n")])
    # The server has stopped: every call says which store and what to check.
    for call in (lambda: kb.search("esperanto"), kb.stats, lambda: kb.remove(["faq.md"])):
        with pytest.raises(
            ChunkStoreError, match=r"127\.0\.0\.1:\d+.*cannot reach the Chroma server"
        ):
            call()
