"""Hybrid search: dense (Chroma) and lexical (BM25) rankings fused, following the store.

The BM25 index is derived from the store and rebuilt whenever its version stamp moves, so
every process and every replica on a shared Chroma server searches the same documents
without a restart.

Relevance (`Hit.relevance`, in [0, 1], for the "nothing relevant" threshold):
- with embeddings: the cosine similarity of the query and chunk vectors, clamped to [0, 1]
  (all-MiniLM-L6-v2: roughly > 0.5 on topic, < 0.2 unrelated);
- with EMBEDDINGS=none: the idf-weighted share of query terms present in the chunk
  (`LexicalIndex.coverage`).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from knowledge.config import KnowledgeConfig
from knowledge.ingest.chunking import index_text
from knowledge.models import Hit
from knowledge.retrieval.fusion import drop_near_duplicates, reciprocal_rank_fusion
from knowledge.retrieval.lexical import LexicalIndex
from knowledge.retrieval.query import lexical_query
from knowledge.retrieval.rerank import POOL, make_reranker, rerank
from knowledge.retrieval.store import ChunkStore, ChunkStoreError, State, chunk_from_record
from knowledge.retrieval.vectors import Vectors

# Fusion weights: equal, the textbook RRF choice; see README for the eval that checks it.
WEIGHTS = {"dense": 1.0, "lexical": 1.0}


class Searcher:
    """Top-k chunks for a query; thread-safe, never waits for a long add."""

    # Above this many chunks the BM25 index is rebuilt in the background after a write.
    sync_rebuild_chunks = 20_000

    def __init__(self, config: KnowledgeConfig, store: ChunkStore, vectors: Vectors) -> None:
        self.config = config
        self._store = store
        self._vectors = vectors
        # Searches only wait for a refresh of the derived state, never for a long add
        # (the bot keeps answering while documents load).
        self._read_lock = threading.Lock()
        self.loaded: State | None = None  # the version whose manifest is loaded
        self._lexical_version: str | None = None  # the version the BM25 index reflects
        self._chunk_total = 0
        self._rebuilding: threading.Thread | None = None
        self.lexical = LexicalIndex.build([], [], [])
        self._generations: dict[str, str] = {}
        self._contents: dict[str, str] = {}  # doc -> hash of its bytes: copies share one
        self._reranker = make_reranker(config.reranker)  # a bad RERANKER fails here
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-search")

    def search(self, query: str, k: int = 5, datasources: Sequence[str] | None = None) -> list[Hit]:
        """Top-k chunks for `query`, dense and lexical fused, near-duplicates removed."""
        try:
            return self._search(query, k, datasources)
        except ChunkStoreError:
            # A reindex in another process may have dropped the collection this search had
            # just looked up: follow the switch once rather than fail the question.
            used = self.loaded.collection if self.loaded else None
            state = self._store.state()
            if state is None or state.collection == used:
                raise
            return self._search(query, k, datasources)

    def _search(self, query: str, k: int, datasources: Sequence[str] | None) -> list[Hit]:
        query = query.strip()
        if not query or k <= 0 or (datasources is not None and not datasources):
            return []
        # On the hot path the model is loaded: start embedding before the version check.
        loaded = self._vectors.loaded
        early = self._pool.submit(loaded.embed_query, query) if loaded is not None else None
        with self._read_lock:
            state = self._refresh()
            if state is None:
                return []
            collection = state.collection
            lexical, generations, contents = self.lexical, self._generations, self._contents
        n = max(4 * k, 20)
        embedder = self._vectors.embedder
        # The query embedding (the slow part) runs beside the BM25 search and the fetch of
        # the lexical candidates, so hybrid costs little more than its slowest parts.
        embedding = early or (
            self._pool.submit(embedder.embed_query, query) if embedder is not None else None
        )
        words = lexical_query(query)  # conversational filler is no evidence for BM25
        lexical_hits = lexical.search(words, n, datasources)
        lexical_ids = [cid for cid, _ in lexical_hits]
        lexical_rows = self._pool.submit(self._store.rows, collection, lexical_ids)
        rankings: dict[str, list[str]] = {"lexical": lexical_ids}
        records: dict[str, tuple[str, dict[str, Any]]] = {}
        dense_scores: dict[str, float] = {}
        query_vector = None
        rows = lexical_rows.result()
        if embedding is not None:
            query_vector = embedding.result()
            ids, distances = self._store.nearest(
                collection, query_vector, n, _datasource_filter(datasources)
            )
            rows = rows | self._store.rows(collection, [cid for cid in ids if cid not in rows])
            rankings["dense"] = []
            for cid, dist in zip(ids, distances, strict=True):
                text, meta, _ = rows.get(cid, ("", {}, None))
                if not meta or generations.get(meta.get("doc")) != meta.get("gen"):
                    continue  # written by a crashed or still-running add: not committed
                rankings["dense"].append(cid)
                records[cid] = (text, meta)
                dense_scores[cid] = 1.0 - dist
        for cid in lexical_ids:
            if cid not in rows:
                continue
            text, meta, vector = rows[cid]
            if generations.get(meta.get("doc")) != meta.get("gen"):
                continue  # a BM25 index a version behind may name replaced chunks
            records.setdefault(cid, (text, meta))
            if query_vector is not None and cid not in dense_scores and vector is not None:
                dense_scores[cid] = float(np.dot(np.asarray(vector), query_vector))
        lexical_scores = dict(lexical_hits)
        # With a re-ranker, a deeper pool goes on, for it to promote from.
        depth = k if self._reranker is None else max(k, POOL)
        fused = [
            (cid, s) for cid, s in reciprocal_rank_fusion(rankings, WEIGHTS) if cid in records
        ][: 3 * depth]
        keep = set(
            drop_near_duplicates(
                (
                    # A page is its content: a document saved twice is one page, two pages
                    # that share a footer are two.
                    (cid, records[cid][0], contents.get(records[cid][1]["doc"], cid))
                    for cid, _ in fused
                ),
                limit=depth,
            )
        )
        hits = []
        for cid, score in fused:
            if cid not in keep:
                continue
            text, meta = records[cid]
            chunk = chunk_from_record({"id": cid, "documents": text, "metadatas": meta})
            dense = dense_scores.get(cid)
            relevance = dense if dense is not None else lexical.coverage(words, index_text(chunk))
            hits.append(
                Hit(
                    chunk=chunk,
                    score=score,
                    relevance=min(1.0, max(0.0, relevance)),
                    dense_score=dense,
                    lexical_score=lexical_scores.get(cid),
                )
            )
        if self._reranker is not None:
            hits = rerank(query, hits, self._reranker, k)
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
        state = self._vectors.checked_state(self._store)
        if state is None:
            return None
        if self.loaded is None or state.version != self.loaded.version:
            manifest = self._store.manifest()
            self._generations = {m["doc"]: m["gen"] for m in manifest}
            # A private copy (knowledge.visibility) is not the same page as the public one:
            # deduplicating them would hide the public page from everyone else.
            self._contents = {
                m["doc"]: f"{m['content_hash']}:{m.get('place') or ''}" for m in manifest
            }
            self._chunk_total = sum(int(m["chunks"]) for m in manifest)
            self.loaded = state
        if self._lexical_version != state.version:
            small = self._chunk_total <= self.sync_rebuild_chunks
            if wait or small or self._lexical_version is None:
                self.lexical = self._lexical_for(state, self._generations)
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
                loaded = self.loaded.version if self.loaded else None
                if self._lexical_version != loaded:  # never replace a fresher index
                    self.lexical, self._lexical_version = lexical, state.version

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
        for row in self._store.iter_chunks(state.collection):
            meta = row["metadatas"]
            if meta and generations.get(meta.get("doc")) == meta.get("gen"):
                ids.append(row["id"])
                texts.append(index_text(chunk_from_record(row)))
                sources.append(meta["datasource"])
        return LexicalIndex.build(ids, texts, sources)


def _datasource_filter(datasources: Sequence[str] | None) -> dict[str, Any] | None:
    if datasources is None:
        return None
    return {"datasource": {"$in": list(datasources)}}
