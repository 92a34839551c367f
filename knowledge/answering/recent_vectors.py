"""Vectors of recently embedded texts, kept so a sentence is embedded once, not per answer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

import numpy as np

from knowledge.recent import Recent

if TYPE_CHECKING:  # the embedding providers load Chroma's model code: only when used
    from knowledge.retrieval.embeddings import Embedder


class RecentVectors:
    """`embed_documents` of an embedder, remembering the vectors of the last `size` texts.

    The answerer embeds every candidate sentence of the retrieved passages; popular pages come
    back question after question, so most of their sentences need no second model call.
    Thread-safe: answers are composed in worker threads. A text that another answer is
    embedding right now is waited for, not embedded again: a burst of questions about the
    same page costs one model call for its sentences, not one per question.
    """

    def __init__(self, embedder: Embedder, size: int = 4096) -> None:
        self.embedder = embedder
        self.size = size
        self._vectors: Recent[str, np.ndarray] = Recent(size)
        self._running: dict[str, Future[np.ndarray]] = {}
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.embedder.embed_documents(texts)
        known: dict[str, np.ndarray] = {}
        mine: dict[str, Future[np.ndarray]] = {}
        theirs: dict[str, Future[np.ndarray]] = {}
        with self._lock:
            for text in dict.fromkeys(texts):
                if (vector := self._vectors.get(text)) is not None:
                    known[text] = vector
                elif text in self._running:
                    theirs[text] = self._running[text]
                else:
                    mine[text] = self._running[text] = Future()
        if mine:
            try:
                fresh = self.embedder.embed_documents(list(mine))
            except BaseException as exc:  # the waiters hear it too, and nothing stays running
                with self._lock:
                    for text in mine:
                        del self._running[text]
                for future in mine.values():
                    future.set_exception(exc)
                raise
            with self._lock:
                for text, vector in zip(mine, fresh, strict=True):
                    known[text] = vector
                    self._vectors.put(text, vector)
                    del self._running[text]
            for text, future in mine.items():
                future.set_result(known[text])
        for text, future in theirs.items():
            known[text] = future.result()
        return np.stack([known[t] for t in texts])
