"""A stand-in for the embedding model on the store side, so 100k-chunk runs stay short.

Document vectors are REAL all-MiniLM-L6-v2 vectors, drawn from a pool embedded once per run
and picked by a hash of the text; query vectors come from the real model. Stores see the
distribution they would see in production; the model's own cost is measured separately
(the dense-ingest figure) instead of dominating every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from knowledge.retrieval.embeddings import OnnxMiniLM


def build_pool(texts: Sequence[str], data_dir: Path, out: Path) -> float:
    """Embed `texts` with the real model into `out` (.npy); returns texts per second."""
    import time

    model = OnnxMiniLM(data_dir)
    model.embed_documents(list(texts[:4]))  # load and warm up
    start = time.perf_counter()
    vectors = model.embed_documents(list(texts))
    rate = len(texts) / (time.perf_counter() - start)
    np.save(out, vectors)
    return rate


class PoolEmbedder:
    """Implements knowledge.retrieval.embeddings.Embedder."""

    name = "onnx-minilm"  # same vectors space, so the knowledge base treats it as the model

    def __init__(self, pool_file: Path, data_dir: Path) -> None:
        self.pool = np.load(pool_file)
        self._model = OnnxMiniLM(data_dir)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        picks = [
            int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest()) % len(self.pool)
            for t in texts
        ]
        return self.pool[picks]

    def embed_query(self, text: str) -> np.ndarray:
        return self._model.embed_query(text)


class PoolLangChainEmbeddings(Embeddings):
    """The same function behind LangChain's interface, for the baseline."""

    def __init__(self, embedder: PoolEmbedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text).tolist()
