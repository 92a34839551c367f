"""Chroma as the single source of truth: chunks, a document manifest, and a version stamp.

Two collections:

- the chunks collection (its name is recorded in the state record; `reindex` swaps it):
  one record per chunk, id `<doc_key>:<generation>:<ordinal>`, with the vector, the chunk
  text and its citation fields. Its metadata records which embedding built it.
- `avatarbot-meta`: small records, no real vectors (a constant 1-d one, as Chroma wants one):
    `__state__`          version stamp (bumped on every write), chunks collection, embedding
    `__writer__`         the commit lock: owner and lease expiry (see `knowledge.ingest.protocol`)
    `doc:<key>`          the manifest: one per document, naming its committed generation and
                         the generation it replaced
    `pending:<key>:<g>`  write-ahead intents with their owner and lease expiry, so a crash
                         midway can be swept once the lease has run out

Generations are random per write of one document, so chunks are always deleted by naming
their generations, never by "everything except": a concurrent writer's chunks are never hit.

Every Chroma (and httpx) failure leaves this module as a `ChunkStoreError`. In embedded mode each
call runs under `knowledge.retrieval.access.EmbeddedAccess` (one process at a time, reopened when
another process wrote).
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import chromadb
from chromadb.config import Settings as ChromaSettings

from knowledge.config import KnowledgeConfig
from knowledge.errors import KnowledgeError
from knowledge.models import Chunk
from knowledge.recent import Recent
from knowledge.retrieval.access import AccessTimeout, EmbeddedAccess, ServerAccess

META_NAME = "avatarbot-meta"
FIRST_CHUNKS_NAME = "avatarbot-chunks"
STATE_ID = "__state__"
WRITER_ID = "__writer__"
_ONE = [1.0]  # the constant vector meta records carry
PAGE = 2000
_TRANSIENT = ("Error finding id", "Nothing found on disk")


class ChunkStoreError(KnowledgeError):
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


@dataclass(frozen=True)
class Intent:
    """A write in progress: generation `gen` of document `doc` may have chunks stored."""

    doc: str
    gen: str
    owner: str = ""
    expires: float = 0.0


def doc_key(datasource: str, source: str) -> str:
    return hashlib.sha1(f"{datasource}\0{source}".encode()).hexdigest()[:24]


_RANDOM = random.Random(uuid.uuid4().int)  # seeded once: os.urandom per call is slow in sandboxes


def new_generation() -> str:
    """A fresh id for one write of one document (unique across processes and restarts)."""
    return f"{_RANDOM.getrandbits(64):016x}"


def connect(config: KnowledgeConfig) -> tuple[EmbeddedAccess | ServerAccess, str]:
    """Access to Chroma (embedded, or HTTP when chroma_host is set) and where it points."""
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
            raise ChunkStoreError(where, f"cannot connect ({type(exc).__name__})") from exc
        return ServerAccess(client), where
    where = str(config.chroma_dir)
    try:
        config.chroma_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChunkStoreError(where, f"cannot create the folder ({exc.strerror})") from exc
    access = EmbeddedAccess.for_dir(
        config.chroma_dir,
        config.data_dir / "chroma.lock",
        lambda: chromadb.PersistentClient(path=where, settings=settings),
    )
    return access, where


class ChunkStore:
    """Low-level reads and writes on the two collections; no ranking, no embedding.

    Collections are named, never handed out: every call goes through `_call`, which holds
    the embedded store for this process and turns Chroma's errors into `ChunkStoreError`.
    """

    rows_kept = 2048  # chunk rows remembered by `rows` (~3 KB each)

    def __init__(self, access: EmbeddedAccess | ServerAccess, where: str) -> None:
        self.access = access
        self.where = where
        self._collections: dict[str, Any] = {}
        self._epoch = -1
        self._state: tuple[bytes, State | None] | None = None  # (access mark, state)
        # (collection, id) -> (document, metadata, embedding): a chunk id names one write of
        # one document (`doc:generation:ordinal`), so its row never changes; callers check
        # the generation is still live. Popular passages are read from Chroma once.
        self._rows: Recent[tuple[str, str], tuple[str, dict[str, Any], Any]] = Recent(
            self.rows_kept
        )

    @contextmanager
    def _call(self, write: bool = False) -> Iterator[Any]:
        """The client, held for this process; any failure inside becomes a ChunkStoreError."""
        try:
            with self.access.use(write) as client:
                if self._epoch != self.access.epoch:  # reopened: old handles are stale
                    self._collections.clear()
                    self._epoch = self.access.epoch
                yield client
        except ChunkStoreError:
            raise
        except AccessTimeout:
            raise ChunkStoreError(
                self.where,
                "another process has held the embedded store for over "
                f"{self.access.wait_seconds:.0f} s; wait for it to finish, or run a Chroma "
                "server (`chroma run`) and set CHROMA_HOST so processes need not take turns",
            ) from None
        except Exception as exc:  # chromadb.errors.*, httpx.*, and Chroma's ValueErrors
            raise ChunkStoreError(self.where, _reason(exc)) from exc

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the embedded store across several calls (a no-op for a server)."""
        with self._call(write=True):
            yield

    def _col(self, client: Any, name: str, embedding: str | None = None) -> Any:
        if name not in self._collections:
            if name == META_NAME:
                self._collections[name] = client.get_or_create_collection(
                    META_NAME, embedding_function=None
                )
            elif embedding is None:
                self._collections[name] = client.get_collection(name)
            else:
                self._collections[name] = client.get_or_create_collection(
                    name,
                    embedding_function=None,
                    metadata={"embedding": embedding},
                    configuration={"hnsw": {"space": "cosine"}},
                )
        return self._collections[name]

    def _meta(self, client: Any) -> Any:
        return self._col(client, META_NAME)

    # --- state -------------------------------------------------------------------------

    def state(self) -> State | None:
        for _ in range(5):
            with self._call() as client:
                mark = self.access.mark
                if mark is not None and self._state is not None and self._state[0] == mark:
                    return self._state[1]  # nobody wrote since it was read
                got = self._meta(client).get(ids=[STATE_ID], include=["metadatas"])
                m = got["metadatas"][0] if got["ids"] else None
                state = (
                    State(str(m["version"]), str(m["collection"]), str(m["embedding"]))
                    if m
                    else None
                )
                if mark is not None and (m or not got["ids"]):
                    self._state = (mark, state)
            if not got["ids"] or state is not None:
                return state
            time.sleep(0.01)  # None while a server is mid-way through replacing the record
        raise ChunkStoreError(self.where, "the state record keeps coming back empty")

    def write_state(self, collection: str, embedding: str) -> State:
        state = State(uuid.uuid4().hex, collection, embedding)
        with self._call(write=True) as client:
            self._meta(client).upsert(
                ids=[STATE_ID],
                embeddings=[_ONE],
                metadatas=[{"kind": "state", **state.__dict__}],
            )
        return state

    def ensure_state(self, embedding: str) -> State:
        with self._call(write=True) as client:
            state = self.state()
            if state is None:
                # A fixed first name: two processes starting at once share one collection;
                # `add` (not upsert) keeps the first state record if both get here.
                self._col(client, FIRST_CHUNKS_NAME, embedding)
                first = State(uuid.uuid4().hex, FIRST_CHUNKS_NAME, embedding)
                self._meta(client).add(
                    ids=[STATE_ID],
                    embeddings=[_ONE],
                    metadatas=[{"kind": "state", **first.__dict__}],
                )
                state = self.state()
        assert state is not None
        return state

    def create_collection(self, name: str, embedding: str) -> None:
        with self._call(write=True) as client:
            self._col(client, name, embedding)

    def drop_collection(self, name: str) -> None:
        with self._call(write=True) as client:
            self._collections.pop(name, None)
            client.delete_collection(name)

    # --- datasource settings -----------------------------------------------------------

    def datasource_settings(self) -> dict[str, dict[str, Any]]:
        """Per-datasource settings (e.g. `base_url`), by datasource name."""
        return {str(m["datasource"]): m for m in self._meta_pages({"kind": "datasource"})}

    def set_datasource_settings(self, datasource: str, values: dict[str, Any]) -> None:
        """Replace one datasource's settings; beside the manifest, so every process sees them."""
        with self._call(write=True) as client:
            self._meta(client).upsert(
                ids=[f"datasource:{datasource}"],
                embeddings=[_ONE],
                metadatas=[{**values, "kind": "datasource", "datasource": datasource}],
            )

    # --- manifest ----------------------------------------------------------------------

    def manifest(self, datasource: str | None = None) -> list[dict[str, Any]]:
        where: dict[str, Any] = {"kind": "doc"}
        if datasource is not None:
            where = {"$and": [{"kind": "doc"}, {"datasource": datasource}]}
        return self._meta_pages(where)

    def committed(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The manifest records of these document keys that exist, by key."""
        if not keys:
            return {}
        with self._call() as client:
            got = self._meta(client).get(ids=[f"doc:{k}" for k in keys], include=["metadatas"])
        return {m["doc"]: m for m in got["metadatas"]}

    def commit(self, records: Sequence[dict[str, Any]]) -> None:
        """Make documents' generations current: the commit point of an add."""
        if records:
            with self._call(write=True) as client:
                self._meta(client).upsert(
                    ids=[f"doc:{r['doc']}" for r in records],
                    embeddings=[_ONE] * len(records),
                    metadatas=list(records),
                )

    def uncommit(self, keys: Sequence[str]) -> None:
        if keys:
            with self._call(write=True) as client:
                self._meta(client).delete(ids=[f"doc:{k}" for k in keys])

    # --- write-ahead intents and the commit lock ----------------------------------------
    # Chroma calls cost tens of ms each on disk, so every step takes a whole batch at once.

    def intend(self, intents: Sequence[Intent]) -> None:
        """Record (or renew) writes about to start, with their owner and lease."""
        if intents:
            with self._call(write=True) as client:
                self._meta(client).upsert(
                    ids=[f"pending:{i.doc}:{i.gen}" for i in intents],
                    embeddings=[_ONE] * len(intents),
                    metadatas=[_intent_record(i) for i in intents],
                )

    def renew(self, intents: Sequence[Intent]) -> None:
        """Extend leases of intents that still exist (`update` skips swept ones: a writer
        that was paused too long must not bring its intents back)."""
        if intents:
            with self._call(write=True) as client:
                self._meta(client).update(
                    ids=[f"pending:{i.doc}:{i.gen}" for i in intents],
                    metadatas=[_intent_record(i) for i in intents],
                )

    def done(self, intents: Sequence[Intent]) -> None:
        if intents:
            with self._call(write=True) as client:
                self._meta(client).delete(ids=[f"pending:{i.doc}:{i.gen}" for i in intents])

    def pending(self, owner: str | None = None) -> list[Intent]:
        where: dict[str, Any] = {"kind": "pending"}
        if owner is not None:
            where = {"$and": [{"kind": "pending"}, {"owner": owner}]}
        return [
            Intent(
                str(m["doc"]),
                str(m["gen"]),
                str(m.get("owner", "")),
                float(m.get("expires", 0.0)),
            )
            for m in self._meta_pages(where)
        ]

    def try_lock(self, owner: str, expires: float, purpose: str) -> dict[str, Any]:
        """Create the commit lock if nobody holds it (`add` keeps an existing record);
        returns the lock as it now stands, whoever holds it."""
        with self._call(write=True) as client:
            meta = self._meta(client)
            meta.add(
                ids=[WRITER_ID],
                embeddings=[_ONE],
                metadatas=[_lock_record(owner, expires, purpose)],
            )
            got = meta.get(ids=[WRITER_ID], include=["metadatas"])
        return got["metadatas"][0] if got["ids"] else {}

    def renew_lock(self, owner: str, expires: float, purpose: str) -> bool:
        """Extend our lock's lease; False when it is no longer ours."""
        with self._call(write=True) as client:
            meta = self._meta(client)
            got = meta.get(ids=[WRITER_ID], include=["metadatas"])
            if not got["ids"] or got["metadatas"][0].get("owner") != owner:
                return False
            meta.update(
                ids=[WRITER_ID],
                metadatas=[_lock_record(owner, expires, purpose)],
            )
        return True

    def unlock(self, owner: str, expires: float | None = None) -> None:
        """Delete the lock if `owner` still holds it (and, when given, with that expiry)."""
        where: dict[str, Any] = {"owner": owner}
        if expires is not None:
            where = {"$and": [{"owner": owner}, {"expires": expires}]}
        with self._call(write=True) as client:
            self._meta(client).delete(ids=[WRITER_ID], where=where)

    def _meta_pages(self, where: dict[str, Any]) -> list[dict[str, Any]]:
        pages = self._pages(
            lambda client, offset: self._meta(client).get(
                where=where, include=["metadatas"], limit=PAGE, offset=offset
            )
        )
        # A record being deleted while a server reads it can come back without metadata.
        return [m for got in pages for m in got["metadatas"] if m]

    def _pages(self, get: Callable[[Any, int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """`get(client, offset)` page after page (each call holding the store) until a short
        page; the store is let go between pages."""
        offset = 0
        while True:
            with self._call() as client:
                got = get(client, offset)
            yield got
            if len(got["ids"]) < PAGE:
                return
            offset += PAGE

    # --- chunks --------------------------------------------------------------------------

    def upsert_chunks(
        self,
        collection: str,
        ids: Sequence[str],
        embeddings: Any,
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        with self._call(write=True) as client:
            self._col(client, collection).upsert(
                ids=list(ids),
                embeddings=embeddings,
                documents=list(documents),
                metadatas=list(metadatas),
            )

    def delete_generations(self, collection: str, generations: Sequence[str]) -> None:
        """Delete every chunk of these generations (each names one write of one document)."""
        gens = sorted(set(generations))
        if gens:
            with self._call(write=True) as client:
                self._col(client, collection).delete(where={"gen": {"$in": gens}})

    def get_chunks(self, collection: str, ids: Sequence[str], include: list[str]) -> dict[str, Any]:
        return self._read(
            lambda client: self._col(client, collection).get(ids=list(ids), include=include)
        )

    def rows(
        self, collection: str, ids: Sequence[str]
    ) -> dict[str, tuple[str, dict[str, Any], Any]]:
        """id -> (document, metadata, embedding) of the chunks of `ids` that exist; those
        read before come from memory, the rest in one read."""
        known = self._rows.pick((collection, cid) for cid in ids)
        found = {cid: row for (_, cid), row in known.items()}
        missing = [cid for cid in dict.fromkeys(ids) if cid not in found]
        if missing:
            got = self.get_chunks(collection, missing, ["documents", "metadatas", "embeddings"])
            embeddings = got.get("embeddings")
            for i, cid in enumerate(got["ids"]):
                meta = got["metadatas"][i]
                if not meta:  # mid-way through a server's replace: not remembered
                    continue
                vector = embeddings[i] if embeddings is not None else None
                found[cid] = (got["documents"][i], meta, vector)
                self._rows.put((collection, cid), found[cid])
        return found

    def nearest(
        self, collection: str, vector: Any, n: int, where: dict[str, Any] | None
    ) -> tuple[list[str], list[float]]:
        """The ids of the `n` chunks nearest `vector` and their distances, nearest first
        (only the index: the rows themselves come from `rows`)."""

        def query(client: Any) -> dict[str, Any]:
            return self._col(client, collection).query(
                query_embeddings=[vector], n_results=n, where=where, include=["distances"]
            )

        got = self._read(query)
        return list(got["ids"][0]), [float(d) for d in got["distances"][0]]

    def _read(self, read: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """A read, retried a few times on Chroma's transient internal errors: a server
        answers "Error finding id" when a query meets a concurrent delete, and "Nothing
        found on disk" before another client's first writes to a collection are
        materialised (chroma-core/chroma#4212); both pass in moments."""
        for attempt in range(5):
            try:
                with self._call() as client:
                    return read(client)
            except ChunkStoreError as exc:
                transient = any(t in exc.reason for t in _TRANSIENT)
                if not transient or attempt == 4:
                    raise
                time.sleep(0.02 * 2**attempt)
        raise AssertionError("unreachable")

    def count(self, collection: str) -> int:
        with self._call() as client:
            return self._col(client, collection).count()

    def iter_chunks(
        self, collection: str, include: Sequence[str] = ("documents", "metadatas")
    ) -> Iterator[dict[str, Any]]:
        """Every chunk record in pages, as dicts of id plus the included fields."""
        pages = self._pages(
            lambda client, offset: self._col(client, collection).get(
                include=list(include), limit=PAGE, offset=offset
            )
        )
        for got in pages:
            for i, chunk_id in enumerate(got["ids"]):
                row: dict[str, Any] = {"id": chunk_id}
                for field in include:
                    row[field] = got[field][i]
                yield row


def _intent_record(i: Intent) -> dict[str, Any]:
    return {"kind": "pending", "doc": i.doc, "gen": i.gen, "owner": i.owner, "expires": i.expires}


def _lock_record(owner: str, expires: float, purpose: str) -> dict[str, Any]:
    return {"kind": "lock", "owner": owner, "expires": expires, "purpose": purpose}


def _reason(exc: Exception) -> str:
    """A short description of a Chroma or httpx failure (never a URL with credentials)."""
    kind = type(exc).__name__
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    if "httpx" in type(exc).__module__ or "ConnectError" in kind or "Timeout" in kind:
        return f"cannot reach the Chroma server ({kind}); is it running?"
    return f"{kind}: {text}" if text else kind


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
        place=meta.get("place") or "",
        ordinal=int(meta.get("ordinal", 0)),
        content_hash=meta.get("content_hash", ""),
    )
