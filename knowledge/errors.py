"""The knowledge library's error base: every failure it reports to people is a `KnowledgeError`.

One family, defined where each failure is known and all sharing this base, so a surface can
catch `KnowledgeError` once and still tell the kinds apart:

    SourceError             knowledge.sources.errors        a document or URL cannot be read
    EmbeddingError          knowledge.retrieval.embeddings  an embedding provider cannot run
    ChunkStoreError         knowledge.retrieval.store       the vector store cannot be used
    RerankerError           knowledge.retrieval.rerank      the re-ranker cannot be loaded
    EvalSetError            knowledge.evaluation            an evaluation set is malformed
    EmbeddingMismatchError  here                            index built with other embeddings
    LLMError                here (knowledge.answering.llm)  the model failed or refused

`str(error)` is one line fit to show to people: it names what failed and never holds a key.
"""

from __future__ import annotations


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


class LLMError(KnowledgeError):
    """The language model failed or refused; `reason` is fit to show to people."""

    def __init__(self, reason: str, *, status: int | None = None, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.refused = refused
