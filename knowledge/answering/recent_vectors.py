"""Vectors of recently embedded texts, kept so a sentence is embedded once, not per answer."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the embedding providers load Chroma's model code: only when used
    from knowledge.retrieval.embeddings import Embedder


class RecentVectors:
    """`embed_documents` of an embedder, remembering the vectors of the last `size` texts.

    The answerer embeds every candidate sentence of the retrieved passages; popular pages come
    back question after question, so most of their sentences need no second model call.
    Thread-safe: answers are composed in worker threads.
    """

    def __init__(self, embedder: Embedder, size: int = 4096) -> None:
        self.embedder = embedder
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.embedder.embed_documents(texts)
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in known:
                self._vectors.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = self.embedder.embed_documents(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    known[text] = vector
                    self._vectors[text] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.stack([known[t] for t in texts])
