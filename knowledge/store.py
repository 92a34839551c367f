"""Chroma as the single source of truth: chunks, a document manifest, and a version stamp.

Two collections:

- the chunks collection (its name is recorded in the state record; `reindex` swaps it):
  one record per chunk, id `<doc_key>:<generation>:<ordinal>`, with the vector, the chunk
  text and its citation fields. Its metadata records which embedding built it.
- `avatarbot-meta`: small records, no real vectors (a constant 1-d one, as Chroma wants one):
    `__state__`          version stamp (bumped on every write), chunks collection, embedding
    `doc:<key>`          the manifest: one per document, naming its committed generation
    `pending:<key>:<g>`  write-ahead intents, so a crash midway can be swept later

A document's chunks are written under a fresh generation first; the manifest record is the
commit point; older generations are deleted after. Readers only trust chunks whose
generation the manifest names, so a crash at any point leaves no orphans or duplicates
visible, and the next write sweeps them away.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import chromadb
from chromadb.config import Settings as ChromaSettings

from knowledge.config import KnowledgeConfig
from knowledge.models import Chunk

META_NAME = "avatarbot-meta"
FIRST_CHUNKS_NAME = "avatarbot-chunks"
STATE_ID = "__state__"
_ONE = [1.0]  # the constant vector meta records carry
PAGE = 2000


class StoreError(Exception):
    """The vector store cannot be reached or used."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"vector store at {where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class State:
    version: str
    collection: str
    embedding: str


def doc_key(datasource: str, source: str) -> str:
    return hashlib.sha1(f"{datasource}\0{source}".encode()).hexdigest()[:24]


_RANDOM = random.Random(uuid.uuid4().int)  # seeded once: os.urandom per call is slow in sandboxes


def new_generation() -> str:
    """A fresh id for one write of one document (unique across processes and restarts)."""
    return f"{_RANDOM.getrandbits(64):016x}"


def connect(config: KnowledgeConfig) -> tuple[Any, str]:
    """A Chroma client (embedded, or HTTP when chroma_host is set) and where it points."""
    # Telemetry off: the bot must never phone home.
    settings = ChromaSettings(anonymized_telemetry=False)
    if config.chroma_host:
        where = f"{config.chroma_host}:{config.chroma_port}"
        try:
            client = chromadb.HttpClient(
                host=config.chroma_host, port=config.chroma_port, settings=settings
            )
            client.heartbeat()
        except Exception as exc:
            raise StoreError(where, f"cannot connect ({type(exc).__name__})") from exc
        return client, where
    config.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(config.chroma_dir), settings=settings), str(
        config.chroma_dir
    )


class ChunkStore:
    """Low-level reads and writes on the two collections; no ranking, no embedding."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.meta = client.get_or_create_collection(META_NAME, embedding_function=None)
        self._collections: dict[str, Any] = {}

    # --- state -------------------------------------------------------------------------

    def state(self) -> State | None:
        got = self.meta.get(ids=[STATE_ID], include=["metadatas"])
        if not got["ids"]:
            return None
        m = got["metadatas"][0]
        return State(str(m["version"]), str(m["collection"]), str(m["embedding"]))

    def write_state(self, collection: str, embedding: str) -> State:
        state = State(uuid.uuid4().hex, collection, embedding)
        self.meta.upsert(
            ids=[STATE_ID],
            embeddings=[_ONE],
            metadatas=[{"kind": "state", **state.__dict__}],
        )
        return state

    def ensure_state(self, embedding: str) -> State:
        state = self.state()
        if state is None:
            # A fixed first name: two processes starting at once share one collection.
            self.collection(FIRST_CHUNKS_NAME, embedding)
            state = self.write_state(FIRST_CHUNKS_NAME, embedding)
        return state

    def collection(self, name: str, embedding: str | None = None) -> Any:
        if name not in self._collections:
            if embedding is None:
                self._collections[name] = self.client.get_collection(name)
            else:
                self._collections[name] = self.client.get_or_create_collection(
                    name,
                    embedding_function=None,
                    metadata={"embedding": embedding},
                    configuration={"hnsw": {"space": "cosine"}},
                )
        return self._collections[name]

    def drop_collection(self, name: str) -> None:
        self._collections.pop(name, None)
        self.client.delete_collection(name)

    # --- manifest ----------------------------------------------------------------------

    def manifest(self, datasource: str | None = None) -> list[dict[str, Any]]:
        where: dict[str, Any] = {"kind": "doc"}
        if datasource is not None:
            where = {"$and": [{"kind": "doc"}, {"datasource": datasource}]}
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            got = self.meta.get(where=where, include=["metadatas"], limit=PAGE, offset=offset)
            out.extend(got["metadatas"])
            if len(got["ids"]) < PAGE:
                return out
            offset += PAGE

    def commit(self, records: Sequence[dict[str, Any]]) -> None:
        """Make documents' generations current: the commit point of an add."""
        if records:
            self.meta.upsert(
                ids=[f"doc:{r['doc']}" for r in records],
                embeddings=[_ONE] * len(records),
                metadatas=list(records),
            )

    def uncommit(self, keys: Sequence[str]) -> None:
        if keys:
            self.meta.delete(ids=[f"doc:{k}" for k in keys])

    # --- write-ahead intents -----------------------------------------------------------
    # Chroma calls cost tens of ms each on disk, so every step takes a whole batch at once.

    def intend(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Record (doc key, generation) writes about to start."""
        if pairs:
            self.meta.upsert(
                ids=[f"pending:{k}:{g}" for k, g in pairs],
                embeddings=[_ONE] * len(pairs),
                metadatas=[{"kind": "pending", "doc": k, "gen": g} for k, g in pairs],
            )

    def done(self, pairs: Sequence[tuple[str, str]]) -> None:
        if pairs:
            self.meta.delete(ids=[f"pending:{k}:{g}" for k, g in pairs])

    def pending(self) -> list[tuple[str, str]]:
        got = self.meta.get(where={"kind": "pending"}, include=["metadatas"])
        return [(str(m["doc"]), str(m["gen"])) for m in got["metadatas"]]

    # --- chunks --------------------------------------------------------------------------

    def drop_replaced(self, chunks: Any, keep: dict[str, str | None]) -> None:
        """For each doc key, delete its chunks except generation keep[key] (all when None)."""
        gone = [k for k, g in keep.items() if g is None]
        kept = {k: g for k, g in keep.items() if g is not None}
        if gone:
            chunks.delete(where={"doc": {"$in": gone}})
        if kept:
            # Generations are random per write, so "not one of these generations" spares
            # exactly each document's new chunks.
            chunks.delete(
                where={
                    "$and": [
                        {"doc": {"$in": list(kept)}},
                        {"gen": {"$nin": list(kept.values())}},
                    ]
                }
            )

    def sweep(self, chunks: Any) -> int:
        """Finish or undo writes a crashed process left behind; returns intents cleared."""
        intents = self.pending()
        if not intents:
            return 0
        committed = {m["doc"]: m["gen"] for m in self.manifest()}
        self.drop_replaced(chunks, {key: committed.get(key) for key, _ in intents})
        self.done(intents)
        return len(intents)

    def iter_chunks(
        self, chunks: Any, include: Sequence[str] = ("documents", "metadatas")
    ) -> Iterator[dict[str, Any]]:
        """Every chunk record in pages, as dicts of id plus the included fields."""
        offset = 0
        while True:
            got = chunks.get(include=list(include), limit=PAGE, offset=offset)
            for i, chunk_id in enumerate(got["ids"]):
                row: dict[str, Any] = {"id": chunk_id}
                for field in include:
                    row[field] = got[field][i]
                yield row
            if len(got["ids"]) < PAGE:
                return
            offset += PAGE


def chunk_from_record(row: dict[str, Any]) -> Chunk:
    """A chunk as stored (id, text and metadata) back into a `Chunk`."""
    meta = row["metadatas"]
    return Chunk(
        id=row["id"],
        source=meta["source"],
        title=meta["title"],
        section=meta.get("section", ""),
        link=meta.get("link") or None,
        text=row["documents"],
        datasource=meta["datasource"],
        ordinal=int(meta.get("ordinal", 0)),
        content_hash=meta.get("content_hash", ""),
    )
