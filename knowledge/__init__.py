"""The knowledge library: documents in, cited passages out. Knows nothing of Slack or avatars.

    from knowledge import KnowledgeBase, KnowledgeConfig
    kb = KnowledgeBase(KnowledgeConfig(data_dir="./data"))
    kb.add(["./handbook", "notes.md"], datasource="default")
    hits = kb.search("how do I rotate tokens?", k=5)       # or: await kb.asearch(...)

    from knowledge import Answerer, AnswerDone, TextDelta
    async for event in Answerer(kb).stream("how do I rotate tokens?"):
        ...                                                # TextDelta*, then one AnswerDone

Names are imported lazily so `import knowledge.sources` does not load Chroma (or LangChain).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "KnowledgeConfig": "knowledge.config",
    "AnswerConfig": "knowledge.config",
    "LLMConfig": "knowledge.config",
    "Document": "knowledge.models",
    "Chunk": "knowledge.models",
    "Hit": "knowledge.models",
    "KnowledgeBase": "knowledge.index",
    "AddReport": "knowledge.index",
    "DocumentInfo": "knowledge.index",
    "Stats": "knowledge.index",
    "Upload": "knowledge.index",
    "KnowledgeError": "knowledge.errors",
    "EmbeddingMismatchError": "knowledge.errors",
    "EmbeddingError": "knowledge.retrieval.embeddings",
    "ChunkStoreError": "knowledge.retrieval.store",
    "Answerer": "knowledge.answering.answer",
    "Answer": "knowledge.answering.answer",
    "AnswerStatus": "knowledge.answering.answer",
    "Source": "knowledge.answering.answer",
    "AnswerEvent": "knowledge.answering.answer",
    "TextDelta": "knowledge.answering.answer",
    "AnswerDone": "knowledge.answering.answer",
    "Retriever": "knowledge.answering.answer",
    "LLMError": "knowledge.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'knowledge' has no attribute {name!r}")
