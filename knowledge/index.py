"""KnowledgeBase: datasources of documents; add, remove, list, search (dense + BM25, fused).

Chroma holds everything (see `knowledge.store`); the BM25 index is derived from it and
rebuilt whenever the store's version stamp moves, so every process and every replica on a
shared Chroma server searches the same documents without a restart.

Relevance (`Hit.relevance`, in [0, 1], for the "nothing relevant" threshold):
- with embeddings: the cosine similarity of the query and chunk vectors, clamped to [0, 1]
  (all-MiniLM-L6-v2: roughly > 0.5 on topic, < 0.2 unrelated);
- with EMBEDDINGS=none: the idf-weighted share of query terms present in the chunk
  (`LexicalIndex.coverage`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.chunking import chunk_document, index_text
from knowledge.config import KnowledgeConfig
from knowledge.embeddings import Embedder, embedding_name, make_embedder
from knowledge.fusion import drop_near_duplicates, reciprocal_rank_fusion
from knowledge.lexical import LexicalIndex
from knowledge.models import Chunk, Document, Hit
from knowledge.sources import Skipped, SourceError, load_file, parse_bytes, walk_folder
from knowledge.store import ChunkStore, State, connect, doc_key, new_generation

logger = logging.getLogger(__name__)

# Fusion weights: equal, the textbook RRF choice; see README for the eval that checks it.
WEIGHTS = {"dense": 1.0, "lexical": 1.0}
# Chunks per pipeline step: embedded as one call, written as one Chroma upsert.
BATCH = 256

Progress = Callable[[int, int, str], None]  # (done, total, current source)


class KnowledgeError(Exception):
    """Base for errors the knowledge base reports to people."""


class EmbeddingMismatchError(KnowledgeError):
    def __init__(self, stored: str, configured: str) -> None:
        super().__init__(
            f"the knowledge base was built with embeddings '{stored}' but EMBEDDINGS is "
            f"'{configured}'; run `avatarbot knowledge reindex` to rebuild it with "
            f"'{configured}', or set EMBEDDINGS={stored}"
        )
        self.stored = stored
        self.configured = configured


@dataclass(frozen=True)
class Upload:
    """Raw bytes with a file name, e.g. a file dropped in Slack."""

    filename: str
    data: bytes
    source: str | None = None


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0

    @property
    def ok(self) -> bool:
        """Anything indexed, or everything already up to date."""
        return bool(self.added or self.updated or self.unchanged)


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    datasource: str
    title: str
    format: str
    chunks: int
    content_hash: str
    added_at: float


@dataclass(frozen=True)
class Stats:
    documents: int
    chunks: int
    datasources: dict[str, int]
    embedding: str


@dataclass
class _Pending:
    """A document chunked and waiting for its vectors to be written."""

    key: str
    generation: str
    record: dict[str, Any]
    remaining: int
    report_as: str
    intended: bool = False


_UNSET: Any = object()


class KnowledgeBase:
    """The knowledge library's entry point. Thread-safe; async twins run off the loop."""

    # Above this many chunks the BM25 index is rebuilt in the background after a write.
    sync_rebuild_chunks = 20_000

    def __init__(self, config: KnowledgeConfig, *, embedder: Embedder | None = _UNSET) -> None:
        self.config = config
        self._configured_name = embedding_name(config.embeddings)  # fail fast on a typo
        client, self.where = connect(config)
        self._store = ChunkStore(client)
        self._embedder = embedder
        # Writers queue behind each other; searches only wait for a refresh of the derived
        # state, never for a long add (the bot keeps answering while documents load).
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._loaded: State | None = None  # the version whose manifest is loaded
        self._lexical_version: str | None = None  # the version the BM25 index reflects
        self._chunk_total = 0
        self._rebuilding: threading.Thread | None = None
        self._lexical = LexicalIndex.build([], [], [])
        self._generations: dict[str, str] = {}
        self._search_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-search")

    # --- embedding -------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder | None:
        """Built on first use: listing or removing documents never loads a model."""
        if self._embedder is _UNSET:
            self._embedder = make_embedder(self.config.embeddings, self.config.data_dir)
        return self._embedder

    @property
    def embedding_name(self) -> str:
        if self._embedder is _UNSET:
            return self._configured_name
        return self._embedder.name if self._embedder is not None else "none"

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        if self.embedder is None:
            # Chroma wants a vector per record: a 1-d placeholder spread by text so the
            # HNSW graph has no ties; never queried.
            return np.array([[(hash(t) % 1000 + 1) / 1000.0] for t in texts], dtype=np.float32)
        return self.embedder.embed_documents(texts)

    def _checked_state(self) -> State | None:
        state = self._store.state()
        if state is not None and state.embedding != self.embedding_name:
            raise EmbeddingMismatchError(state.embedding, self.embedding_name)
        return state

    # --- add ---------------------------------------------------------------------------

    def add(
        self,
        inputs: Iterable[str | Path | Document | Upload],
        *,
        datasource: str = "default",
        progress: Progress | None = None,
    ) -> AddReport:
        """Upsert documents by (datasource, source); see the module docs for the guarantees."""
        report = AddReport()
        items = list(self._expand(inputs, report))
        with self._write_lock:
            state = self._checked_state() or self._store.ensure_state(self.embedding_name)
            chunks_col = self._store.collection(state.collection, self.embedding_name)
            self._store.sweep(chunks_col)
            known = {m["source"]: m for m in self._store.manifest(datasource)}
            writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-writer")
            try:
                self._ingest(items, datasource, known, chunks_col, report, progress, writer)
            finally:
                writer.shutdown(wait=True)
        return report

    def _expand(
        self, inputs: Iterable[str | Path | Document | Upload], report: AddReport
    ) -> Iterator[Path | Document | Upload]:
        """Inputs as absolute, resolved paths (folders walked), documents and uploads.

        A folder is resolved once and its files keep that prefix; only symlinks are resolved
        again (resolving every path costs several syscalls per file on large folders).
        """
        for item in inputs:
            if isinstance(item, Document | Upload):
                yield item
                continue
            path = Path(item).expanduser().resolve()
            if not path.is_dir():
                yield path
                continue
            for found in walk_folder(path):
                if isinstance(found, Skipped):
                    report.skipped.append(found)
                else:
                    yield found.resolve() if found.is_symlink() else found

    def _ingest(
        self,
        items: list[Path | Document | Upload],
        datasource: str,
        known: dict[str, dict[str, Any]],
        chunks_col: Any,
        report: AddReport,
        progress: Progress | None,
        writer: ThreadPoolExecutor,
    ) -> None:
        chunking = f"{self.config.chunk_size}/{self.config.chunk_overlap}"
        batch: list[tuple[_Pending, Chunk]] = []
        in_flight: Future[None] | None = None
        seen: set[str] = set()

        def flush() -> None:
            nonlocal in_flight, batch
            if not batch:
                return
            # Embedding batch i+1 overlaps writing batch i (one write in flight at most).
            vectors = self._vectors([index_text(chunk) for _, chunk in batch])
            if in_flight is not None:
                in_flight.result()
            in_flight = writer.submit(self._write_batch, chunks_col, batch, vectors, report)
            batch = []

        for done, item in enumerate(items, start=1):
            source = _source_of(item)
            if progress:
                progress(done - 1, len(items), source)
            if source in seen:
                continue
            seen.add(source)
            try:
                doc = self._load_if_changed(item, known.get(source), chunking)
                if doc is None:
                    report.unchanged.append(source)
                    continue
                pieces = chunk_document(
                    doc,
                    datasource=datasource,
                    chunk_size=self.config.chunk_size,
                    chunk_overlap=self.config.chunk_overlap,
                )
            except SourceError as exc:
                report.skipped.append(Skipped(exc.source, exc.reason))
                continue
            except Exception as exc:  # a parser bug must not abort a 10,000-file add
                logger.debug("cannot index %s", source, exc_info=True)
                report.skipped.append(
                    Skipped(source, f"cannot be read ({type(exc).__name__}: {str(exc)[:120]})")
                )
                continue
            if not pieces:
                report.skipped.append(Skipped(doc.source, "no text to index"))
                continue
            key, generation = doc_key(datasource, doc.source), new_generation()
            pending = _Pending(
                key=key,
                generation=generation,
                remaining=len(pieces),
                report_as="updated" if doc.source in known else "added",
                record={
                    "kind": "doc",
                    "doc": key,
                    "gen": generation,
                    "source": doc.source,
                    "datasource": datasource,
                    "title": doc.title,
                    "format": doc.format,
                    "url": doc.url or "",
                    "content_hash": doc.content_hash,
                    "chunking": chunking,
                    "chunks": len(pieces),
                    "added_at": time.time(),
                },
            )
            for piece in pieces:
                batch.append((pending, piece))
                if len(batch) >= BATCH:
                    flush()
        flush()
        if in_flight is not None:
            in_flight.result()
        if progress:
            progress(len(items), len(items), "")

    def _load_if_changed(
        self, item: Path | Document | Upload, known: dict[str, Any] | None, chunking: str
    ) -> Document | None:
        """The parsed document, or None when its bytes hash to what is already indexed."""
        unchanged = known is not None and known.get("chunking") == chunking
        if isinstance(item, Document):
            return None if unchanged and known["content_hash"] == item.content_hash else item
        limit = self.config.max_document_bytes
        if isinstance(item, Upload):
            source = item.source or item.filename
            if unchanged and known["content_hash"] == hashlib.sha256(item.data).hexdigest():
                return None
            return parse_bytes(item.data, item.filename, source=source, max_bytes=limit)
        if unchanged and _file_sha256(item, limit) == known["content_hash"]:
            return None  # hashed only: no parsing, no chunking, no embedding
        return load_file(item, max_bytes=limit)

    def _write_batch(
        self,
        chunks_col: Any,
        batch: list[tuple[_Pending, Chunk]],
        vectors: np.ndarray,
        report: AddReport,
    ) -> None:
        docs = list({id(p): p for p, _ in batch}.values())
        starting = [p for p in docs if not p.intended]
        self._store.intend([(p.key, p.generation) for p in starting])  # before any chunk
        for p in starting:
            p.intended = True
        chunks_col.upsert(
            ids=[f"{p.key}:{p.generation}:{c.ordinal}" for p, c in batch],
            embeddings=vectors,
            documents=[c.text for _, c in batch],
            metadatas=[_chunk_metadata(p, c) for p, c in batch],
        )
        for pending, _ in batch:
            pending.remaining -= 1
        finished = [p for p in docs if p.remaining == 0]
        if not finished:
            return
        # Commit point, then clean-up of previous generations, then the intents.
        self._store.commit([p.record for p in finished])
        self._store.drop_replaced(chunks_col, {p.key: p.generation for p in finished})
        self._store.done([(p.key, p.generation) for p in finished])
        self._store.write_state(chunks_col.name, self.embedding_name)  # bump the version
        for p in finished:
            getattr(report, p.report_as).append(p.record["source"])
            report.chunks += p.record["chunks"]

    # --- remove, list, stats -------------------------------------------------------------

    def remove(self, sources: Sequence[str], *, datasource: str | None = None) -> list[str]:
        """Remove documents by source (as given, or as a resolved path); returns removed."""
        wanted = set(sources) | {_resolved(s) for s in sources}
        return self._remove(lambda m: m["source"] in wanted, datasource)

    def remove_datasource(self, datasource: str) -> list[str]:
        return self._remove(lambda m: True, datasource)

    def _remove(self, match: Callable[[dict[str, Any]], bool], datasource: str | None) -> list[str]:
        with self._write_lock:
            state = self._store.state()
            if state is None:
                return []
            chunks_col = self._store.collection(state.collection)
            doomed = [m for m in self._store.manifest(datasource) if match(m)]
            if not doomed:
                return []
            intents = [(m["doc"], "remove") for m in doomed]
            self._store.intend(intents)
            self._store.uncommit([m["doc"] for m in doomed])  # the commit point
            self._store.drop_replaced(chunks_col, {m["doc"]: None for m in doomed})
            self._store.done(intents)
            self._store.write_state(state.collection, state.embedding)
            return [m["source"] for m in doomed]

    def list_documents(self, datasource: str | None = None) -> list[DocumentInfo]:
        return sorted(
            (
                DocumentInfo(
                    source=m["source"],
                    datasource=m["datasource"],
                    title=m["title"],
                    format=m["format"],
                    chunks=int(m["chunks"]),
                    content_hash=m["content_hash"],
                    added_at=float(m["added_at"]),
                )
                for m in self._store.manifest(datasource)
            ),
            key=lambda d: (d.datasource, d.source),
        )

    def stats(self) -> Stats:
        docs = self.list_documents()
        per_source: dict[str, int] = {}
        for d in docs:
            per_source[d.datasource] = per_source.get(d.datasource, 0) + 1
        state = self._store.state()
        return Stats(
            documents=len(docs),
            chunks=sum(d.chunks for d in docs),
            datasources=per_source,
            embedding=state.embedding if state else self.embedding_name,
        )

    def is_empty(self) -> bool:
        return not self._store.manifest()

    # --- reindex ---------------------------------------------------------------------------

    def reindex(self, progress: Progress | None = None) -> int:
        """Rebuild every vector with the configured embedding; returns chunks re-embedded.

        The new vectors go to a new collection; switching the state record is the commit
        point, so a crash midway leaves the old index working.
        """
        with self._write_lock:
            state = self._store.state()
            if state is None:
                return 0
            old = self._store.collection(state.collection)
            self._store.sweep(old)
            committed = {m["doc"]: m["gen"] for m in self._store.manifest()}
            total = sum(int(m["chunks"]) for m in self._store.manifest())
            name = f"avatarbot-chunks-{new_generation()}"
            new = self._store.collection(name, self.embedding_name)
            rows: list[dict[str, Any]] = []
            done = 0

            def write() -> None:
                nonlocal rows, done
                if rows:
                    chunks = [_chunk_from_record(r) for r in rows]
                    new.upsert(
                        ids=[r["id"] for r in rows],
                        embeddings=self._vectors([index_text(c) for c in chunks]),
                        documents=[r["documents"] for r in rows],
                        metadatas=[r["metadatas"] for r in rows],
                    )
                    done += len(rows)
                    if progress:
                        progress(done, total, "")
                rows = []

            for row in self._store.iter_chunks(old):
                meta = row["metadatas"]
                if committed.get(meta["doc"]) == meta["gen"]:
                    rows.append(row)
                    if len(rows) >= BATCH:
                        write()
            write()
            self._store.write_state(name, self.embedding_name)
            self._store.drop_collection(state.collection)
            return done

    # --- search ----------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, datasources: Sequence[str] | None = None) -> list[Hit]:
        """Top-k chunks for `query`, dense and lexical fused, near-duplicates removed."""
        query = query.strip()
        if not query or k <= 0 or (datasources is not None and not datasources):
            return []
        # On the hot path the model is loaded: start embedding before the version check.
        early = (
            self._search_pool.submit(self._embedder.embed_query, query)
            if self._embedder is not _UNSET and self._embedder is not None
            else None
        )
        with self._read_lock:
            state = self._refresh()
            if state is None:
                return []
            chunks_col = self._store.collection(state.collection)
            lexical, generations = self._lexical, self._generations
        n = max(4 * k, 20)
        dense_on = self.embedder is not None
        # The query embedding (the slow part) runs beside the BM25 search and the fetch of
        # the lexical candidates, so hybrid costs little more than its slowest parts.
        embedding = early or (
            self._search_pool.submit(self.embedder.embed_query, query) if dense_on else None
        )
        lexical_hits = lexical.search(query, n, datasources)
        lexical_rows = (
            self._search_pool.submit(
                chunks_col.get,
                ids=[cid for cid, _ in lexical_hits],
                include=["documents", "metadatas", *(["embeddings"] if dense_on else [])],
            )
            if lexical_hits
            else None
        )
        rankings: dict[str, list[str]] = {"lexical": [cid for cid, _ in lexical_hits]}
        records: dict[str, tuple[str, dict[str, Any]]] = {}
        dense_scores: dict[str, float] = {}
        query_vector = None
        if embedding is not None:
            query_vector = embedding.result()
            got = chunks_col.query(
                query_embeddings=[query_vector],
                n_results=n,
                where=_datasource_filter(datasources),
                include=["documents", "metadatas", "distances"],
            )
            rankings["dense"] = []
            for cid, text, meta, dist in zip(
                got["ids"][0],
                got["documents"][0],
                got["metadatas"][0],
                got["distances"][0],
                strict=True,
            ):
                if generations.get(meta["doc"]) != meta["gen"]:
                    continue  # written by a crashed or still-running add: not committed
                rankings["dense"].append(cid)
                records[cid] = (text, meta)
                dense_scores[cid] = 1.0 - float(dist)
        if lexical_rows is not None:
            rows = lexical_rows.result()
            for i, cid in enumerate(rows["ids"]):
                records.setdefault(cid, (rows["documents"][i], rows["metadatas"][i]))
                if query_vector is not None and cid not in dense_scores:
                    vector = np.asarray(rows["embeddings"][i])
                    dense_scores[cid] = float(np.dot(vector, query_vector))
        lexical_scores = dict(lexical_hits)
        fused = [
            (cid, s) for cid, s in reciprocal_rank_fusion(rankings, WEIGHTS) if cid in records
        ][: 3 * k]
        keep = set(drop_near_duplicates(((cid, records[cid][0]) for cid, _ in fused), limit=k))
        hits = []
        for cid, score in fused:
            if cid not in keep:
                continue
            text, meta = records[cid]
            chunk = _chunk_from_record({"id": cid, "documents": text, "metadatas": meta})
            dense = dense_scores.get(cid)
            relevance = dense if dense is not None else lexical.coverage(query, index_text(chunk))
            hits.append(
                Hit(
                    chunk=chunk,
                    score=score,
                    relevance=min(1.0, max(0.0, relevance)),
                    dense_score=dense,
                    lexical_score=lexical_scores.get(cid),
                )
            )
        return hits

    def refresh(self) -> None:
        """Bring the manifest and the BM25 index up to the store's version now (blocking)."""
        with self._read_lock:
            self._refresh(wait=True)

    def _refresh(self, wait: bool = False) -> State | None:
        """Follow the store: reload the manifest and BM25 index when the stamp moved.

        The manifest (which generations are live) always reloads at once, so removed or
        replaced chunks vanish from results immediately and dense search sees new ones. The
        BM25 index is rebuilt inline for up to `sync_rebuild_chunks` chunks; above that it
        is rebuilt in the background while searches use the previous one (tens of seconds
        at 100k chunks), its stale ids being dropped when they are no longer in the store.
        """
        state = self._checked_state()
        if state is None:
            return None
        if self._loaded is None or state.version != self._loaded.version:
            manifest = self._store.manifest()
            self._generations = {m["doc"]: m["gen"] for m in manifest}
            self._chunk_total = sum(int(m["chunks"]) for m in manifest)
            self._loaded = state
        if self._lexical_version != state.version:
            small = self._chunk_total <= self.sync_rebuild_chunks
            if wait or small or self._lexical_version is None:
                self._lexical = self._lexical_for(state, self._generations)
                self._lexical_version = state.version
            else:
                self._rebuild_in_background(state, dict(self._generations))
        return state

    def _rebuild_in_background(self, state: State, generations: dict[str, str]) -> None:
        if self._rebuilding is not None and self._rebuilding.is_alive():
            return  # the next search after it finishes starts another if still behind

        def rebuild() -> None:
            lexical = self._lexical_for(state, generations)
            with self._read_lock:
                loaded = self._loaded.version if self._loaded else None
                if self._lexical_version != loaded:  # never replace a fresher index
                    self._lexical, self._lexical_version = lexical, state.version

        self._rebuilding = threading.Thread(target=rebuild, name="kb-bm25", daemon=True)
        self._rebuilding.start()

    def _lexical_for(self, state: State, generations: dict[str, str]) -> LexicalIndex:
        """The BM25 index of this version: from the on-disk cache, else rebuilt and cached.

        The cache is only a cache: any failure to read or write it falls back to the store.
        """
        folder = self.config.lexical_dir / state.version
        try:
            return LexicalIndex.load(folder)
        except (OSError, ValueError, KeyError):
            pass
        lexical = self._build_lexical(state, generations)
        try:
            lexical.save(folder)
            for other in self.config.lexical_dir.iterdir():
                if other.name != state.version and not other.name.startswith("."):
                    shutil.rmtree(other, ignore_errors=True)
        except OSError:
            pass  # e.g. another process saved or pruned it at the same moment
        return lexical

    def _build_lexical(self, state: State, generations: dict[str, str]) -> LexicalIndex:
        ids: list[str] = []
        texts: list[str] = []
        sources: list[str] = []
        for row in self._store.iter_chunks(self._store.collection(state.collection)):
            meta = row["metadatas"]
            if generations.get(meta["doc"]) == meta["gen"]:
                ids.append(row["id"])
                texts.append(index_text(_chunk_from_record(row)))
                sources.append(meta["datasource"])
        return LexicalIndex.build(ids, texts, sources)

    # --- async twins ------------------------------------------------------------------------

    async def aadd(self, inputs: Iterable[str | Path | Document | Upload], **kw: Any) -> AddReport:
        return await asyncio.to_thread(self.add, list(inputs), **kw)

    async def asearch(
        self, query: str, k: int = 5, datasources: Sequence[str] | None = None
    ) -> list[Hit]:
        return await asyncio.to_thread(self.search, query, k, datasources)

    async def aremove(self, sources: Sequence[str], **kw: Any) -> list[str]:
        return await asyncio.to_thread(self.remove, sources, **kw)

    async def alist_documents(self, datasource: str | None = None) -> list[DocumentInfo]:
        return await asyncio.to_thread(self.list_documents, datasource)

    async def astats(self) -> Stats:
        return await asyncio.to_thread(self.stats)

    async def areindex(self) -> int:
        return await asyncio.to_thread(self.reindex)


def _source_of(item: Path | Document | Upload) -> str:
    if isinstance(item, Document):
        return item.source
    if isinstance(item, Upload):
        return item.source or item.filename
    return str(item)  # already resolved by _expand


def _resolved(source: str) -> str:
    if "://" in source:
        return source
    return str(Path(source).expanduser().resolve())


def _file_sha256(path: Path, limit: int) -> str | None:
    """sha256 of a file's bytes, or None when it cannot be read or is over the limit."""
    try:
        if path.stat().st_size > limit:
            return None
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None


def _datasource_filter(datasources: Sequence[str] | None) -> dict[str, Any] | None:
    if datasources is None:
        return None
    return {"datasource": {"$in": list(datasources)}}


def _chunk_metadata(pending: _Pending, chunk: Chunk) -> dict[str, Any]:
    return {
        "doc": pending.key,
        "gen": pending.generation,
        "source": chunk.source,
        "datasource": pending.record["datasource"],
        "title": chunk.title,
        "section": chunk.section,
        "link": chunk.link or "",
        "ordinal": chunk.ordinal,
        "content_hash": chunk.content_hash,
    }


def _chunk_from_record(row: dict[str, Any]) -> Chunk:
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
