"""Work for the multi-process knowledge-base tests; each function runs in its own spawned
OS process (importable by module name, returns plain data)."""

from __future__ import annotations

import time
import traceback
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase, Upload

SHARED = 4  # documents both writers add (and remove) under the same names


class HashEmbedder:
    """A deterministic bag of crc32-hashed words: the same vectors in every process."""

    name = "hash-test"

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.full((len(texts), 32), 1e-3, dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % 32] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def open_kb(data_dir: Path, port: int | None) -> KnowledgeBase:
    config = KnowledgeConfig(
        data_dir=data_dir,
        chunk_size=200,
        chunk_overlap=0,
        chroma_host="127.0.0.1" if port else None,
        chroma_port=port or 8000,
    )
    return KnowledgeBase(config, embedder=HashEmbedder())


def text(writer: int, round_: int, name: str, paragraphs: int) -> bytes:
    body = "\n\n".join(
        f"Writer {writer} round {round_} wrote paragraph {p} of {name}: the code word is "
        f"w{writer}r{round_}p{p} and it mentions penguins, walruses and tokens."
        for p in range(paragraphs)
    )
    return f"# {name}\n\n{body}\n".encode()


def writer(index: int, data_dir: str, port: int | None, rounds: int) -> dict[str, Any]:
    """Adds overlapping shared documents and its own, removes shared ones; returns what its
    reports said about its own documents (never touched by anyone else)."""
    kb = open_kb(Path(data_dir), port)
    own: dict[str, int] = {}
    for r in range(rounds):
        name = f"own-{index}-{r}.md"
        uploads = [Upload(name, text(index, r, name, 3 + r % 3))]
        uploads += [
            Upload(f"shared-{j}.md", text(index, r, f"shared-{j}", 2 + (index + j) % 3))
            for j in range(SHARED)
        ]
        report = kb.add(uploads)
        assert not report.skipped, report.skipped
        assert name in report.added
        own[name] = next(d.chunks for d in kb.list_documents() if d.source == name)
        if r % 2 == 1:
            kb.remove([f"shared-{(r + index) % SHARED}.md"])
    return {"own": own}


def searcher(data_dir: str, port: int | None, stop_file: str) -> dict[str, Any]:
    """Searches like the bot until told to stop; every failure is collected, not raised."""
    kb = open_kb(Path(data_dir), port)
    searches, errors = 0, []
    while not Path(stop_file).exists():
        try:
            kb.search("which code word mentions penguins and walruses?", k=5)
            kb.search("tokens", k=3, datasources=["default"])
        except Exception as exc:  # counted: the test asserts there were none
            where = traceback.extract_tb(exc.__traceback__)[-3:]
            errors.append(f"{type(exc).__name__}: {exc} at {traceback.format_list(where)}")
        searches += 2
        time.sleep(0.01)  # a busy bot, not a spin loop
    return {"searches": searches, "errors": errors[:5], "failed": len(errors)}


def adder(data_dir: str, port: int | None, folder: str) -> dict[str, Any]:
    """One `knowledge add` of a folder; returns its report's figures and its duration."""
    kb = open_kb(Path(data_dir), port)
    start = time.perf_counter()
    report = kb.add([folder])
    return {
        "seconds": time.perf_counter() - start,
        "chunks": report.chunks,
        "documents": len(report.added) + len(report.updated),
        "skipped": len(report.skipped),
    }


class PausingEmbedder(HashEmbedder):
    """Parks before its second batch (the first is written by then) until `go` exists."""

    def __init__(self, paused: Path, go: Path) -> None:
        self.calls = 0
        self.paused, self.go = paused, go

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == 2:
            self.paused.touch()
            while not self.go.exists():
                time.sleep(0.02)
        return super().embed_documents(texts)


def paused_writer(
    data_dir: str, port: int | None, doc: str, paused: str, go: str, lease: float
) -> dict[str, Any]:
    """Adds one long document, parking after its first batch; returns its report."""
    config = KnowledgeConfig(
        data_dir=Path(data_dir),
        chunk_size=100,
        chunk_overlap=0,
        write_lease_seconds=lease,
        chroma_host="127.0.0.1" if port else None,
        chroma_port=port or 8000,
    )
    kb = KnowledgeBase(config, embedder=PausingEmbedder(Path(paused), Path(go)))
    report = kb.add([doc])
    return {
        "added": report.added,
        "chunks": report.chunks,
        "skipped": [s.reason for s in report.skipped],
    }
