"""Writes to the knowledge base: add (load, chunk, embed, write), remove, reindex.

Every write follows the multi-writer protocol (`knowledge.ingest.protocol`): leased intents
first, chunks under a fresh generation, then under the commit lock the manifest record (the
commit point), the version stamp bump that tells every reader to refresh, and the clean-up.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.config import KnowledgeConfig
from knowledge.ingest.chunking import chunk_document, index_text
from knowledge.ingest.protocol import Lease, sweep
from knowledge.models import Chunk, Document, Origin, OriginKind
from knowledge.retrieval.store import (
    ChunkStore,
    ChunkStoreError,
    chunk_from_record,
    doc_key,
    new_generation,
)
from knowledge.retrieval.vectors import Vectors
from knowledge.sources import Skipped, SourceError, load_file, parse_bytes, walk_folder

logger = logging.getLogger(__name__)

# Chunks per pipeline step: embedded as one call, written as one Chroma upsert.
BATCH = 256

Progress = Callable[[int, int, str], None]  # (done, total, current source)


@dataclass(frozen=True)
class Upload:
    """Raw bytes with a file name, e.g. a file dropped in Slack."""

    filename: str
    data: bytes
    source: str | None = None
    url: str | None = None  # where a person opens it (e.g. its Slack permalink)
    place: str = ""  # the private conversation it was shared in (knowledge.visibility)


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


REINDEXED = "the knowledge base was reindexed while this add ran; run the add again to index it"
LEASE_LOST = (
    "its write lease ran out (the process was paused longer than the lease) and another "
    "writer cleared it; run the add again"
)


@dataclass
class _Run:
    """One add: its lease, the collection it writes to, its report."""

    lease: Lease
    collection: str
    report: AddReport
    refused: str = ""  # set when the rest of the add cannot commit (reason for the report)


@dataclass
class _Pending:
    """A document chunked and waiting for its vectors to be written."""

    key: str
    generation: str
    record: dict[str, Any]
    remaining: int
    report_as: str
    intended: bool = False


class Writer:
    """Add, remove and reindex; writers in one process queue behind each other."""

    def __init__(self, config: KnowledgeConfig, store: ChunkStore, vectors: Vectors) -> None:
        self.config = config
        self._store = store
        self._vectors = vectors
        self._write_lock = threading.Lock()

    # --- add ---------------------------------------------------------------------------

    def add(
        self,
        inputs: Iterable[str | Path | Document | Upload],
        *,
        datasource: str = "default",
        progress: Progress | None = None,
    ) -> AddReport:
        """Upsert documents by (datasource, source)."""
        report = AddReport()
        items = list(self._expand(inputs, report))
        with self._write_lock, Lease(self._store, self.config.write_lease_seconds) as lease:
            name = self._vectors.name
            state = self._vectors.checked_state(self._store) or self._store.ensure_state(name)
            self._store.create_collection(state.collection, name)
            with lease.locked("add"):
                sweep(self._store, state.collection)
            known = {m["source"]: m for m in self._store.manifest(datasource)}
            run = _Run(lease, state.collection, report)
            writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-writer")
            try:
                self._ingest(items, datasource, known, run, progress, writer)
            finally:
                writer.shutdown(wait=True)
        return report

    def _expand(
        self, inputs: Iterable[str | Path | Document | Upload], report: AddReport
    ) -> Iterator[tuple[Path | Document | Upload, Origin]]:
        """Inputs as absolute, resolved paths (folders walked), documents and uploads, each
        with how it came in (what `knowledge sync` checks again).

        A folder is resolved once and its files keep that prefix; only symlinks are resolved
        again (resolving every path costs several syscalls per file on large folders).
        """
        for item in inputs:
            if isinstance(item, Document):
                yield item, item.origin or _url_or_upload(item.source)
                continue
            if isinstance(item, Upload):
                yield item, Origin(kind=OriginKind.UPLOAD, root=_source_of(item))
                continue
            path = Path(item).expanduser().resolve()
            if not path.is_dir():
                yield path, Origin(kind=OriginKind.FILE, root=str(path))
                continue
            folder = Origin(kind=OriginKind.FOLDER, root=str(path))
            for found in walk_folder(path):
                if isinstance(found, Skipped):
                    report.skipped.append(found)
                else:
                    yield (found.resolve() if found.is_symlink() else found), folder

    def _ingest(
        self,
        items: list[tuple[Path | Document | Upload, Origin]],
        datasource: str,
        known: dict[str, dict[str, Any]],
        run: _Run,
        progress: Progress | None,
        writer: ThreadPoolExecutor,
    ) -> None:
        report = run.report
        chunking = f"{self.config.chunk_size}/{self.config.chunk_overlap}"
        batch: list[tuple[_Pending, Chunk]] = []
        in_flight: Future[None] | None = None
        seen: set[str] = set()

        def flush() -> None:
            nonlocal in_flight, batch
            if not batch:
                return
            # Embedding batch i+1 overlaps writing batch i (one write in flight at most).
            vectors = self._vectors.embed_documents([index_text(chunk) for _, chunk in batch])
            if in_flight is not None:
                in_flight.result()
            in_flight = writer.submit(self._write_batch, run, batch, vectors)
            batch = []

        for done, (item, origin) in enumerate(items, start=1):
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
                    "place": doc.place,
                    "content_hash": doc.content_hash,
                    **freshness_record(origin, doc),
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
            if unchanged and known["content_hash"] == hashlib.sha256(item.data).hexdigest():
                return None
            doc = parse_bytes(
                item.data, item.filename, source=_source_of(item), url=item.url, max_bytes=limit
            )
            return doc.model_copy(update={"place": item.place}) if item.place else doc
        if unchanged and _file_sha256(item, limit) == known["content_hash"]:
            return None  # hashed only: no parsing, no chunking, no embedding
        return load_file(item, max_bytes=limit)

    def _write_batch(
        self, run: _Run, batch: list[tuple[_Pending, Chunk]], vectors: np.ndarray
    ) -> None:
        docs = list({id(p): p for p, _ in batch}.values())
        if run.refused:
            ended = []
            for p in docs:
                p.remaining -= sum(1 for q, _ in batch if q is p)
                if p.remaining == 0:
                    run.report.skipped.append(Skipped(p.record["source"], run.refused))
                    ended += [(p.key, p.generation)] if p.intended else []
            run.lease.release(ended)  # their chunks went with the old collection
            return
        starting = [p for p in docs if not p.intended]
        run.lease.intend([(p.key, p.generation) for p in starting])  # before any chunk
        for p in starting:
            p.intended = True
        try:
            self._store.upsert_chunks(
                run.collection,
                ids=[f"{p.key}:{p.generation}:{c.ordinal}" for p, c in batch],
                embeddings=vectors,
                documents=[c.text for _, c in batch],
                metadatas=[_chunk_metadata(p, c) for p, c in batch],
            )
        except ChunkStoreError:
            state = self._store.state()
            if state is None or state.collection == run.collection:
                raise
            run.refused = REINDEXED  # the collection went away under us
            return self._write_batch(run, batch, vectors)
        for pending, _ in batch:
            pending.remaining -= 1
        finished = [p for p in docs if p.remaining == 0]
        if finished:
            self._commit(run, finished)

    def _commit(self, run: _Run, finished: list[_Pending]) -> None:
        """The commit point of finished documents, under the commit lock."""
        pairs = [(p.key, p.generation) for p in finished]
        with run.lease.locked("add"):
            state = self._store.state()
            if state is None or state.collection != run.collection:
                run.refused = REINDEXED
                lost = set(pairs)
            else:
                lost = set(pairs) - run.lease.still_mine(pairs)
            keep = [p for p in finished if (p.key, p.generation) not in lost]
            previous = self._store.committed([p.key for p in keep])
            for p in keep:
                p.record["replaced"] = previous.get(p.key, {}).get("gen", "")
            self._store.commit([p.record for p in keep])
            if keep:
                self._store.write_state(run.collection, self._vectors.name)  # bump the version
            # Clean-up after the bump, so readers of the old version keep their chunks until
            # they have been told to move on; a crash here is finished by the next sweep.
            replaced = [str(p.record["replaced"]) for p in keep if p.record["replaced"]]
            if state is not None and state.collection == run.collection:
                gone = [p.generation for p in finished if (p.key, p.generation) in lost]
                self._store.delete_generations(run.collection, replaced + gone)
            run.lease.release(pairs)
        for p in finished:
            if (p.key, p.generation) in lost:
                reason = run.refused or LEASE_LOST
                run.report.skipped.append(Skipped(p.record["source"], reason))
                continue
            getattr(run.report, p.report_as).append(p.record["source"])
            run.report.chunks += p.record["chunks"]

    # --- remove ------------------------------------------------------------------------

    def remove(self, sources: Sequence[str], *, datasource: str | None = None) -> list[str]:
        """Remove documents by source (as given, or as a resolved path); returns removed."""
        wanted = set(sources) | {_resolved(s) for s in sources}
        return self._remove(lambda m: m["source"] in wanted, datasource)

    def remove_datasource(self, datasource: str) -> list[str]:
        return self._remove(lambda m: True, datasource)

    def _remove(self, match: Callable[[dict[str, Any]], bool], datasource: str | None) -> list[str]:
        with self._write_lock:
            lease = Lease(self._store, self.config.write_lease_seconds)
            with lease.locked("remove"):
                state = self._store.state()
                if state is None:
                    return []
                doomed = [m for m in self._store.manifest(datasource) if match(m)]
                if not doomed:
                    return []
                pairs = [(str(m["doc"]), str(m["gen"])) for m in doomed]
                lease.intend(pairs)
                self._store.uncommit([m["doc"] for m in doomed])  # the commit point
                self._store.write_state(state.collection, state.embedding)
                self._store.delete_generations(state.collection, [g for _, g in pairs])
                lease.release(pairs)
                return [m["source"] for m in doomed]

    # --- reindex -----------------------------------------------------------------------

    def reindex(self, progress: Progress | None = None) -> int:
        """Rebuild every vector with the configured embedding; returns chunks re-embedded.

        The new vectors go to a new collection; switching the state record is the commit
        point, so a crash midway leaves the old index working.
        """
        # The commit lock is held throughout: adds commit after the switch (and are told to
        # add again if their chunks went to the old collection); removals wait.
        lease = Lease(self._store, self.config.write_lease_seconds)
        with self._write_lock, lease, lease.locked("reindex"):
            return self._reindex(progress)

    def _reindex(self, progress: Progress | None) -> int:
        state = self._store.state()
        if state is None:
            return 0
        sweep(self._store, state.collection)
        manifest = self._store.manifest()
        committed = {m["doc"]: m["gen"] for m in manifest}
        total = sum(int(m["chunks"]) for m in manifest)
        name = f"avatarbot-chunks-{new_generation()}"
        self._store.create_collection(name, self._vectors.name)
        rows: list[dict[str, Any]] = []
        done = 0

        def write() -> None:
            nonlocal rows, done
            if rows:
                chunks = [chunk_from_record(r) for r in rows]
                self._store.upsert_chunks(
                    name,
                    ids=[r["id"] for r in rows],
                    embeddings=self._vectors.embed_documents([index_text(c) for c in chunks]),
                    documents=[r["documents"] for r in rows],
                    metadatas=[r["metadatas"] for r in rows],
                )
                done += len(rows)
                if progress:
                    progress(done, total, "")
            rows = []

        for row in self._store.iter_chunks(state.collection):
            meta = row["metadatas"]
            if committed.get(meta["doc"]) == meta["gen"]:
                rows.append(row)
                if len(rows) >= BATCH:
                    write()
        write()
        self._store.write_state(name, self._vectors.name)
        self._store.drop_collection(state.collection)
        return done


def freshness_record(origin: Origin, doc: Document) -> dict[str, str]:
    """How a document came in and what makes its next fetch conditional, as manifest fields
    (Chroma metadata holds scalars only, so the links are one newline-separated string)."""
    return {
        "origin_kind": origin.kind.value,
        "origin_root": origin.root,
        "etag": doc.etag,
        "last_modified": doc.last_modified,
        "links": "\n".join(doc.links),
    }


def _url_or_upload(source: str) -> Origin:
    kind = OriginKind.URL if source.startswith(("http://", "https://")) else OriginKind.UPLOAD
    return Origin(kind=kind, root=source)


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


def _chunk_metadata(pending: _Pending, chunk: Chunk) -> dict[str, Any]:
    return {
        "doc": pending.key,
        "gen": pending.generation,
        "source": chunk.source,
        "datasource": pending.record["datasource"],
        "place": pending.record.get("place", ""),
        "title": chunk.title,
        "section": chunk.section,
        "link": chunk.link or "",
        "ordinal": chunk.ordinal,
        "content_hash": chunk.content_hash,
    }
