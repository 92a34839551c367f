"""Failures in plain words: the one vocabulary every surface (Slack, CLI, web pages) uses.

Each layer raises its own base error, and only those:

    KnowledgeError  knowledge.errors   documents, embeddings, vector store, language model
    AvatarError     bot.avatar.errors  live avatar, speech, videos (a `sentence` for people)
    HeyGenError     bot.heygen.errors  the HeyGen / LiveAvatar wire (status, code, message)
    StoreError      bot.store.base     the bot's state database

`describe(exc)` turns any exception into a `Failure`: its kind, one sentence a person can read
(no secret, no response body), a hint for whoever runs the bot (the variable or command to
check), and a short error id. `report()` also logs it once with that id and the technical
detail, so an operator finds a user's screenshot in the log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import traceback
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.avatar.errors import AvatarError
from bot.heygen.errors import (
    HeyGenAuthError,
    HeyGenConnectionError,
    HeyGenError,
    HeyGenTimeout,
    MissingApiKeyError,
)
from bot.metrics import ERRORS
from bot.store.base import StoreError
from knowledge.errors import KnowledgeError, LLMError
from knowledge.sources.errors import SourceError


class FailureKind(StrEnum):
    LLM = "llm"
    AVATAR = "avatar"
    HEYGEN = "heygen"
    SLACK = "slack"
    NETWORK = "network"
    KNOWLEDGE = "knowledge"
    STORE = "store"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    sentence: str  # for the person who asked
    error_id: str
    hint: str = ""  # for whoever runs the bot: what to check (a variable, a command)

    @property
    def text(self) -> str:
        """What a chat user is shown: the sentence and the id that is also in the log."""
        return f"{self.sentence} (error id {self.error_id})"

    @property
    def line(self) -> str:
        """What an operator is shown at a terminal: the sentence and the hint."""
        return f"{self.sentence} {self.hint}".strip()


def new_error_id() -> str:
    return secrets.token_hex(4)


def describe(exc: BaseException) -> Failure:
    """The kind, sentence and hint for `exc`, with a new error id. Never raises."""
    kind, sentence, hint = _words(exc)
    return Failure(kind, sentence, new_error_id(), hint)


def report(exc: BaseException, doing: str, log: logging.Logger) -> Failure:
    """`describe(exc)`, counted and logged once with the same id (`doing`: what failed)."""
    f = describe(exc)
    ERRORS.labels(f.kind.value).inc()
    log.error(
        "%s failed: %s [error_id=%s kind=%s]",
        doing,
        type(exc).__name__,
        f.error_id,
        f.kind.value,
        exc_info=exc if f.kind is FailureKind.INTERNAL else None,
        extra={"error_id": f.error_id, "kind": f.kind.value},
    )
    return f


def _words(exc: BaseException) -> tuple[FailureKind, str, str]:
    if isinstance(exc, AvatarError):
        return FailureKind.AVATAR, _sentence(getattr(exc, "sentence", None) or str(exc)), ""
    if isinstance(exc, HeyGenError):
        return _heygen_words(exc)
    if isinstance(exc, LLMError):
        return (
            FailureKind.LLM,
            f"The language model failed: {exc.reason}.",
            "Check LLM_MODEL, LLM_BASE_URL and LLM_API_KEY.",
        )
    if isinstance(exc, SourceError):
        return FailureKind.KNOWLEDGE, f"{exc.source} could not be read: {exc.reason}.", ""
    if isinstance(exc, KnowledgeError):
        return FailureKind.KNOWLEDGE, f"The knowledge base failed: {_sentence(str(exc))}", ""
    if isinstance(exc, StoreError):
        sentence = "The bot's database is unavailable. Please try again shortly."
        return FailureKind.STORE, sentence, "Check DATABASE_URL and the database server."
    if isinstance(exc, SlackApiError):
        code = exc.response.get("error", "unknown") if exc.response is not None else "unknown"
        return FailureKind.SLACK, f"Slack refused a request ({code}). Please try again.", ""
    if isinstance(exc, SlackClientError):
        return FailureKind.SLACK, _unreachable("Slack"), ""
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError):
        # A bare network error does not say whom it was talking to; the stack does.
        peer = _peer(exc)
        if peer == "Slack":
            return FailureKind.SLACK, _unreachable("Slack"), ""
        if peer:
            return FailureKind.HEYGEN, _unreachable(peer), ""
        return FailureKind.NETWORK, "A service the bot needs could not be reached.", ""
    return FailureKind.INTERNAL, "Something went wrong on my side while doing that.", ""


def _heygen_words(exc: HeyGenError) -> tuple[FailureKind, str, str]:
    service = exc.service or "HeyGen"
    prefix = "LIVEAVATAR" if service == "LiveAvatar" else "HEYGEN"
    kind = FailureKind.HEYGEN
    if isinstance(exc, MissingApiKeyError):
        return kind, f"{service} is not set up: {exc}.", ""
    if isinstance(exc, HeyGenAuthError):
        sentence = f"{service} rejected the API key (HTTP {exc.status}): {_sentence(exc.message)}"
        return kind, sentence, f"Check {prefix}_API_KEY."
    if exc.code in ("avatar_not_found", "voice_not_found"):
        catalog = "avatars" if exc.code == "avatar_not_found" else "voices"
        hint = f"See `avatarbot heygen {catalog}` for the ids you can use."
        return kind, _sentence(exc.message), hint
    if isinstance(exc, HeyGenConnectionError | HeyGenTimeout):
        what = (
            "did not answer in time" if isinstance(exc, HeyGenTimeout) else "could not be reached"
        )
        hint = f"({exc.message}) Check {prefix}_API_BASE and the network."
        return kind, f"{service} {what}. Please try again in a moment.", hint
    if exc.is_server_error or exc.is_rate_limited:
        sentence = f"{service} is unavailable right now ({exc}). Please try again later."
        return kind, sentence, ""
    return kind, f"{service} refused the request: {_sentence(str(exc))}", ""


def _unreachable(service: str) -> str:
    return f"{service} could not be reached. Please try again in a moment."


def _peer(exc: BaseException) -> str | None:
    """Which vendor's client raised `exc`: the innermost vendor module on its traceback."""
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for frame in reversed(frames):  # innermost first: where it was raised
        module = frame.f_globals.get("__name__", "")
        if module.startswith(("slack_sdk", "slack_bolt")):
            return "Slack"
        if module.startswith("bot.heygen"):
            return "LiveAvatar" if module == "bot.heygen.liveavatar" else "HeyGen"
    return None


def _sentence(text: str) -> str:
    """One sentence: trimmed, ending with a full stop."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."
