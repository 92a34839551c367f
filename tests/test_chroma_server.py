"""CHROMA_HOST mode against a real `chroma run` server on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase, Upload
from knowledge.store import StoreError

pytestmark = pytest.mark.chroma_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chroma_cli() -> str:
    beside_python = Path(sys.executable).parent / "chroma"
    found = str(beside_python) if beside_python.exists() else shutil.which("chroma")
    if not found:
        pytest.skip("the chroma CLI (from the chromadb wheel) is not installed")
    return found


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [chroma_cli(), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # poll until it accepts connections, with a generous deadline
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chroma run did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:\d+.*cannot connect"):
        KnowledgeBase(config)
