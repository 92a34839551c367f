"""An optional cross-encoder re-ranker: reads the question and each passage together and
re-orders the fused candidates (`RERANKER=cross-encoder:<name-or-path>`).

Off by default. sentence-transformers is an optional install (it brings torch); a model is
a local folder or a Hugging Face hub name (downloaded on first use, with its progress bar).
Both failures — the package missing, the model not loadable — are a `RerankerError` naming
the setting, raised when the knowledge base is opened (a missing folder) or at the first search
(loading), never a silent fall-back to the fused order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from knowledge.errors import KnowledgeError
from knowledge.ingest.chunking import index_text
from knowledge.models import Hit

Score = Callable[[list[tuple[str, str]]], Sequence[float]]  # (query, passage) pairs -> scores
POOL = 20  # fused candidates the cross-encoder reads (beyond k: what it can promote)
_KIND = "cross-encoder"


class RerankerError(KnowledgeError):
    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"RERANKER '{spec}': {reason}; or unset RERANKER")
        self.spec = spec
        self.reason = reason


def check_spec(spec: str) -> str | None:
    """The model name or path of a RERANKER value; None when off. Checks the syntax only."""
    spec = spec.strip()
    if spec.lower() in ("", "none"):
        return None
    kind, _, model = spec.partition(":")
    if kind != _KIND or not model.strip():
        raise RerankerError(spec, "unknown re-ranker; use cross-encoder:<name-or-path>")
    return model.strip()


def rerank(query: str, hits: Sequence[Hit], score: Score, k: int) -> list[Hit]:
    """The best `k` of `hits` by the cross-encoder's score; ties keep the fused order."""
    if not hits:
        return []
    scores = score([(query, index_text(h.chunk)) for h in hits])
    order = sorted(range(len(hits)), key=lambda i: (-float(scores[i]), i))
    return [hits[i] for i in order[:k]]


class CrossEncoderReranker:
    """sentence-transformers' CrossEncoder, loaded on first use (once, thread-safe)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        model = check_spec(spec)
        if model is None:
            raise RerankerError(spec, "no model given")
        self.model = model
        # A path that is not a folder is a typo, not a hub name to download: said at once.
        self.local = model.startswith((".", "/", "~")) or Path(model).exists()
        if self.local and not Path(model).expanduser().is_dir():
            raise RerankerError(spec, f"no model folder at {model}")
        self._score: Score | None = None
        self._lock = threading.Lock()

    def __call__(self, pairs: list[tuple[str, str]]) -> Sequence[float]:
        return self._loaded()(pairs)

    def _loaded(self) -> Score:
        with self._lock:
            if self._score is None:
                self._score = self._load()
            return self._score

    def _load(self) -> Score:
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:
            raise RerankerError(
                self.spec,
                "sentence-transformers is not installed (pip install sentence-transformers)",
            ) from exc
        try:
            encoder = CrossEncoder(
                str(Path(self.model).expanduser()) if self.local else self.model, device="cpu"
            )
        except Exception as exc:
            raise RerankerError(
                self.spec, f"cannot load model ({type(exc).__name__}: {str(exc)[:200]})"
            ) from exc
        return lambda pairs: encoder.predict(pairs, show_progress_bar=False).tolist()


def make_reranker(spec: str) -> CrossEncoderReranker | None:
    """The re-ranker a RERANKER value names, not yet loaded; None when off."""
    return CrossEncoderReranker(spec) if check_spec(spec) is not None else None
