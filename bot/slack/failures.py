"""Failures in user words, for the Slack surface (one place).

Every failure a person meets gets a plain sentence and a short error id; the same id is in the
log line with the technical detail, so an operator can find it from a screenshot. Messages
name the part that failed (the language model, HeyGen, Slack, the knowledge base) and never
include secrets or raw response bodies.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from enum import StrEnum

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.avatar.delivery import AvatarError
from bot.metrics import ERRORS
from bot.store.base import StoreError
from knowledge.answering.llm import LLMError
from knowledge.index import KnowledgeError
from knowledge.retrieval.embeddings import EmbeddingError
from knowledge.retrieval.store import StoreError as ChunkStoreError
from knowledge.sources import SourceError

log = logging.getLogger("bot.slack")


class FailureKind(StrEnum):
    LLM = "llm"
    AVATAR = "avatar"
    SLACK = "slack"
    KNOWLEDGE = "knowledge"
    STORE = "store"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    sentence: str  # for the user
    error_id: str

    @property
    def text(self) -> str:
        return f"{self.sentence} (error id {self.error_id})"


def new_error_id() -> str:
    return secrets.token_hex(4)


def _describe(exc: BaseException) -> tuple[FailureKind, str]:
    if isinstance(exc, AvatarError):
        return FailureKind.AVATAR, str(exc)
    if isinstance(exc, LLMError):
        return FailureKind.LLM, f"The language model failed: {exc.reason}."
    if isinstance(exc, SlackApiError):
        code = exc.response.get("error", "unknown") if exc.response is not None else "unknown"
        return FailureKind.SLACK, f"Slack refused a request ({code}). Please try again."
    if isinstance(exc, SlackClientError):
        return FailureKind.SLACK, "Slack could not be reached. Please try again in a moment."
    if isinstance(exc, SourceError):
        return FailureKind.KNOWLEDGE, f"{exc.source} could not be read: {exc.reason}."
    if isinstance(exc, KnowledgeError | EmbeddingError | ChunkStoreError):
        return FailureKind.KNOWLEDGE, f"The knowledge base failed: {exc}"
    if isinstance(exc, StoreError):
        return FailureKind.STORE, "The bot's database is unavailable. Please try again shortly."
    return FailureKind.INTERNAL, "Something went wrong on my side while doing that."


def failure(exc: BaseException, doing: str) -> Failure:
    """Turn `exc` into user words and log it once with the same id (`doing`: what failed)."""
    kind, sentence = _describe(exc)
    error_id = new_error_id()
    ERRORS.labels(kind.value).inc()
    log.error(
        "%s failed: %s [error_id=%s kind=%s]",
        doing,
        type(exc).__name__,
        error_id,
        kind.value,
        exc_info=exc if kind is FailureKind.INTERNAL else None,
        extra={"error_id": error_id, "kind": kind.value},
    )
    return Failure(kind, sentence, error_id)
