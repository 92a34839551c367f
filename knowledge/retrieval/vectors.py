"""The embedding a knowledge base uses: loaded on first use, shared by ingest and search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from knowledge.config import KnowledgeConfig
from knowledge.errors import EmbeddingMismatchError
from knowledge.retrieval.embeddings import Embedder, embedding_name, make_embedder
from knowledge.retrieval.store import ChunkStore, State

UNSET: Any = object()


class Vectors:
    """The configured embedder (None: lexical only), built lazily so listing or removing
    documents never loads a model."""

    def __init__(self, config: KnowledgeConfig, embedder: Embedder | None = UNSET) -> None:
        self.config = config
        self._configured_name = embedding_name(config.embeddings)  # fail fast on a typo
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder | None:
        if self._embedder is UNSET:
            self._embedder = make_embedder(
                self.config.embeddings,
                self.config.data_dir,
                threads=self.config.onnx_threads,
                fold_weights=self.config.onnx_fold_weights,
            )
        return self._embedder

    @property
    def loaded(self) -> Embedder | None:
        """The embedder if it is already built, else None (never loads a model)."""
        return None if self._embedder is UNSET else self._embedder

    @property
    def name(self) -> str:
        if self._embedder is UNSET:
            return self._configured_name
        return self._embedder.name if self._embedder is not None else "none"

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.embedder is None:
            # Chroma wants a vector per record: a 1-d placeholder spread by text so the
            # HNSW graph has no ties; never queried.
            return np.array([[(hash(t) % 1000 + 1) / 1000.0] for t in texts], dtype=np.float32)
        return self.embedder.embed_documents(texts)

    def checked_state(self, store: ChunkStore) -> State | None:
        """The store's state, refused when it was built with another embedding."""
        state = store.state()
        if state is not None and state.embedding != self.name:
            raise EmbeddingMismatchError(state.embedding, self.name)
        return state
