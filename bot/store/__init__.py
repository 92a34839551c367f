"""Persisted state shared by every process and replica (see `bot.store.base`).

store = open_store(settings)      # SQLite, or PostgreSQL when DATABASE_URL is set
await store.start()               # connects, applies migrations
...
await store.purge(retention_cutoff(settings))   # RETENTION_DAYS
"""

from bot.store.base import (
    AnswerRecord,
    Feedback,
    KnowledgeChannel,
    LeaseLost,
    LiveLink,
    ScopeAnswer,
    ScopeRecord,
    SpeechItem,
    Store,
    StoreError,
    Subscription,
    VideoJobRecord,
    VideoJobState,
)
from bot.store.factory import open_store, retention_cutoff
from bot.store.sql import SqlStore

__all__ = [
    "AnswerRecord",
    "Feedback",
    "KnowledgeChannel",
    "LeaseLost",
    "LiveLink",
    "ScopeAnswer",
    "ScopeRecord",
    "SpeechItem",
    "SqlStore",
    "Store",
    "StoreError",
    "Subscription",
    "VideoJobRecord",
    "VideoJobState",
    "open_store",
    "retention_cutoff",
]
