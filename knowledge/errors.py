"""Errors the knowledge base reports to people.

The store's own is `knowledge.retrieval.store.StoreError`.
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
