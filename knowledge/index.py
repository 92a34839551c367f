"""KnowledgeBase: the façade over ingest and retrieval (datasources; add, remove, list, search).

Chroma holds everything (see `knowledge.retrieval.store`). Writes go through
`knowledge.ingest.writer.Writer` (the crash-safe write protocol); searches through
`knowledge.retrieval.search.Searcher` (dense + BM25, fused, following the store's version
stamp so every process sees every write without a restart).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge.config import KnowledgeConfig
from knowledge.errors import EmbeddingMismatchError, KnowledgeError
from knowledge.ingest.writer import BATCH, AddReport, Progress, Upload, Writer
from knowledge.links import checked_base_url, common_root, is_web_link, person_link
from knowledge.models import Document, Hit, Origin, OriginKind
from knowledge.retrieval.embeddings import Embedder
from knowledge.retrieval.search import WEIGHTS, Searcher
from knowledge.retrieval.store import ChunkStore, connect
from knowledge.retrieval.vectors import UNSET, Vectors

SETTINGS_TTL = 5.0  # seconds a process keeps datasource settings (base URLs) before rereading

__all__ = [
    "BATCH",
    "WEIGHTS",
    "AddReport",
    "DocumentInfo",
    "EmbeddingMismatchError",
    "KnowledgeBase",
    "KnowledgeError",
    "Progress",
    "Stats",
    "Upload",
]


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    datasource: str
    title: str
    format: str
    chunks: int
    content_hash: str
    added_at: float
    origin: Origin | None = None  # None: added before origins were recorded
    etag: str = ""
    last_modified: str = ""
    links: tuple[str, ...] = ()
    place: str = ""  # the private conversation it was shared in (knowledge.visibility)
    url: str = ""  # its own link (web page, Slack permalink), when it has one

    def as_json(self) -> dict[str, Any]:
        origin = self.origin.model_dump(mode="json") if self.origin else None
        return {**self.__dict__, "origin": origin, "links": list(self.links)}


@dataclass(frozen=True)
class Stats:
    documents: int
    chunks: int
    datasources: dict[str, int]
    embedding: str


class KnowledgeBase:
    """The knowledge library's entry point. Thread-safe; async twins run off the loop."""

    def __init__(self, config: KnowledgeConfig, *, embedder: Embedder | None = UNSET) -> None:
        self.config = config
        self._vectors = Vectors(config, embedder)
        access, self.where = connect(config)
        self._store = ChunkStore(access, self.where)
        self._writer = Writer(config, self._store, self._vectors)
        self._searcher = Searcher(config, self._store, self._vectors)
        self._settings_cache: tuple[float, dict[str, dict[str, Any]]] | None = None

    @property
    def embedder(self) -> Embedder | None:
        """Built on first use: listing or removing documents never loads a model."""
        return self._vectors.embedder

    @property
    def embedding_name(self) -> str:
        return self._vectors.name

    @property
    def sync_rebuild_chunks(self) -> int:
        """Above this many chunks the BM25 index is rebuilt in the background after a write."""
        return self._searcher.sync_rebuild_chunks

    @sync_rebuild_chunks.setter
    def sync_rebuild_chunks(self, value: int) -> None:
        self._searcher.sync_rebuild_chunks = value

    # --- writes ------------------------------------------------------------------------

    def add(
        self,
        inputs: Iterable[str | Path | Document | Upload],
        *,
        datasource: str = "default",
        progress: Progress | None = None,
    ) -> AddReport:
        """Upsert documents by (datasource, source); unchanged ones cost a hash only."""
        return self._writer.add(inputs, datasource=datasource, progress=progress)

    def remove(self, sources: Sequence[str], *, datasource: str | None = None) -> list[str]:
        """Remove documents by source (as given, or as a resolved path); returns removed."""
        return self._writer.remove(sources, datasource=datasource)

    def remove_datasource(self, datasource: str) -> list[str]:
        return self._writer.remove_datasource(datasource)

    def reindex(self, progress: Progress | None = None) -> int:
        """Rebuild every vector with the configured embedding; returns chunks re-embedded."""
        return self._writer.reindex(progress)

    # --- reads -------------------------------------------------------------------------

    def search(self, query: str, k: int = 5, datasources: Sequence[str] | None = None) -> list[Hit]:
        """Top-k chunks for `query`, dense and lexical fused, near-duplicates removed; each
        chunk's `link` is one a person can open, or None (`knowledge.links`)."""
        return self._with_links(self._searcher.search(query, k, datasources))

    def _with_links(self, hits: list[Hit]) -> list[Hit]:
        if all(is_web_link(h.chunk.link) for h in hits):
            return hits
        settings = self._datasource_settings()
        out = []
        for h in hits:
            link = person_link(h.chunk, settings.get(h.chunk.datasource)) or None
            if link != h.chunk.link:
                h = h.model_copy(update={"chunk": h.chunk.model_copy(update={"link": link})})
            out.append(h)
        return out

    # --- datasource settings ------------------------------------------------------------

    def datasource_settings(self) -> dict[str, dict[str, Any]]:
        return self._store.datasource_settings()

    def _datasource_settings(self) -> dict[str, dict[str, Any]]:
        """The settings, read from the store at most every SETTINGS_TTL seconds: a search
        should not pay a store read for them (another process's change shows within it)."""
        now = time.monotonic()
        cached = self._settings_cache
        if cached is None or now - cached[0] > SETTINGS_TTL:
            cached = (now, self._store.datasource_settings())
            self._settings_cache = cached
        return cached[1]

    def set_base_url(self, datasource: str, base_url: str, *, root: str | None = None) -> str:
        """Link the datasource's files from disk to `base_url` (e.g. where the handbook is
        published): a file's link is `base_url` + its path under `root` (by default the
        folder its files share) + the section anchor. `''` removes it. Returns the root."""
        base = checked_base_url(base_url) if base_url else ""
        if root is None:
            root = common_root([d.source for d in self.list_documents(datasource)])
        else:
            root = str(Path(root).expanduser().resolve())
        settings = dict(self._store.datasource_settings().get(datasource) or {})
        settings.update(base_url=base, root=root)
        self._store.set_datasource_settings(datasource, settings)
        self._settings_cache = None
        return root

    def refresh(self) -> None:
        """Bring the manifest and the BM25 index up to the store's version now (blocking)."""
        self._searcher.refresh()

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
                    origin=_origin_of(m),
                    etag=str(m.get("etag") or ""),
                    last_modified=str(m.get("last_modified") or ""),
                    links=tuple(str(m.get("links") or "").split()),
                    place=str(m.get("place") or ""),
                    url=str(m.get("url") or ""),
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

    async def aset_base_url(self, datasource: str, base_url: str, **kw: Any) -> str:
        return await asyncio.to_thread(self.set_base_url, datasource, base_url, **kw)

    async def astats(self) -> Stats:
        return await asyncio.to_thread(self.stats)

    async def areindex(self) -> int:
        return await asyncio.to_thread(self.reindex)


def _origin_of(record: dict[str, Any]) -> Origin | None:
    kind = record.get("origin_kind")
    if not kind:
        return None
    return Origin(kind=OriginKind(kind), root=str(record.get("origin_root") or record["source"]))
