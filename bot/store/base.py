"""The bot's persisted state: one async interface, the records it holds.

Everything the Slack app and avatar delivery must remember across restarts and replicas
lives behind `Store`. The embedded default is SQLite under `AVATARBOT_DATA_DIR`; PostgreSQL
when `DATABASE_URL` is set. Nothing correct may depend on which process received a request,
so every "claim" below is atomic in the database: exactly one caller wins, in one process or
across many (`INSERT … ON CONFLICT DO NOTHING`, conditional `UPDATE … WHERE lease expired`,
`FOR UPDATE SKIP LOCKED` on PostgreSQL).

Times are unix seconds (float, UTC). Ids we mint are opaque strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field


class StoreError(Exception):
    """The state store cannot be reached or refused an operation (message is for people)."""


class LeaseLost(StoreError):
    """The caller no longer holds the lease on a job or session (another replica took it)."""


# --- answers and feedback -----------------------------------------------------------------


class AnswerRecord(BaseModel):
    """An answer the bot gave: replayed by the avatar, turned into a video, rated."""

    id: str
    question: str
    text: str
    spoken: str
    sources: list[dict[str, Any]] = Field(default_factory=list)  # knowledge.Source dumps
    grounded: bool = True
    channel: str
    thread_ts: str | None = None
    message_ts: str | None = None  # the bot's message holding the answer, once posted
    asker: str | None = None  # Slack user id
    team: str | None = None
    datasources: list[str] = Field(default_factory=list)
    created_at: float = 0.0
    question_ts: str | None = None  # the message asking it
    stream_ts: str | None = None  # the streamed message, once chat.startStream answered
    pending: bool = False  # the intent, saved before answering: text not final yet


class KnowledgeChannel(BaseModel):
    """A channel whose resolved threads are a knowledge source (`/knowledge add #channel`)."""

    channel: str
    datasource: str
    private: bool = Field(description="A private channel's threads answer only there.")
    added_by: str
    added_at: float = 0.0


class Feedback(StrEnum):
    GOOD = "good"
    BAD = "bad"


# --- video jobs -----------------------------------------------------------------------------


class VideoJobState(StrEnum):
    """Explicit states; `finished` ones are never claimed again."""

    PENDING = "pending"  # persisted, not yet sent to HeyGen
    SUBMITTED = "submitted"  # HeyGen accepted it (heygen_video_id set)
    RENDERING = "rendering"  # HeyGen reports processing
    DOWNLOADING = "downloading"  # HeyGen finished; fetching the MP4
    DELIVERING = "delivering"  # MP4 fetched; handing it to the delivery sink
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (VideoJobState.DELIVERED, VideoJobState.FAILED)


class VideoJobRecord(BaseModel):
    id: str  # also HeyGen's callback_id and the Idempotency-Key
    dedupe_key: str  # same question in the same thread while unfinished -> same job
    state: VideoJobState = VideoJobState.PENDING
    question: str
    script: str  # what the avatar says (spoken variant, <= SPOKEN_MAX_SECONDS)
    answer_id: str | None = None
    # Where to deliver, opaque to the store and to bot.avatar (the chat surface reads it):
    # e.g. {"channel": "C1", "thread_ts": "…", "user": "U1", "progress_ts": "…"}.
    target: dict[str, Any] = Field(default_factory=dict)
    requested_by: str | None = None
    team: str | None = None
    heygen_video_id: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    error: str | None = None  # plain words for the user when FAILED
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0


# --- live sessions and links ----------------------------------------------------------------


class ScopeState(StrEnum):
    """Where a scope's live session is: a replica is starting it, it runs, or it ended."""

    STARTING = "starting"
    LIVE = "live"
    CLOSED = "closed"


class ScopeRecord(BaseModel):
    """The live-avatar session serving one reuse scope (channel, thread, asker or answer)."""

    scope: str  # e.g. "channel:T1:C1"; one row per scope
    backend: str  # "liveavatar" | "streaming"
    session_id: str | None = None  # vendor's id, None while starting
    # AvatarRoom.to_record() — holds tokens: stored ENCRYPTED at rest (STORE_SECRET_KEY),
    # decrypted only on read by the store; never logged (left out of repr and str).
    session: dict[str, Any] | None = Field(default=None, repr=False)
    state: ScopeState = ScopeState.STARTING
    owner: str | None = None  # replica id holding the lease (keep-alive, idle close)
    lease_until: float = 0.0
    started_at: float = 0.0
    last_activity_at: float = 0.0
    viewer_seen_at: float = 0.0  # last time a viewer page reported itself connected


class LiveLink(BaseModel):
    """An unguessable viewer link for a scope: /live/<token>."""

    token: str  # >= 128 bits, URL-safe
    scope: str
    created_at: float
    expires_at: float

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


class SpeechItem(BaseModel):
    """One sentence to be spoken in a scope's session; published exactly once (then replays)."""

    id: int
    scope: str
    answer_id: str
    seq: int  # order within the answer
    text: str
    created_at: float
    published_at: float | None = None
    # Who published it (replica id or viewer connection id); DROPPED when a newer answer
    # interrupted it before it was spoken (published_at is then when it was dropped).
    publisher: str | None = None


DROPPED = "(dropped)"


class ScopeAnswer(BaseModel):
    """One entry of a live scope's transcript, read from the shared store by any replica."""

    answer_id: str
    answer: AnswerRecord | None = None  # None until the chat surface saved it (mid-answer)
    sentences: list[str] = Field(default_factory=list)  # spoken in the scope, in order, once


# --- messages between replicas --------------------------------------------------------------


class Subscription(Protocol):
    """Payloads published on one channel after the subscription started, in order.

    `async with store.listen("ch") as sub: async for payload in sub: ...` is listening when
    the block begins; a bare `async for payload in store.listen("ch")` starts on first use.
    """

    def __aiter__(self) -> Subscription: ...
    async def __anext__(self) -> dict[str, Any]: ...
    async def __aenter__(self) -> Subscription: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def aclose(self) -> None: ...


# --- the interface --------------------------------------------------------------------------


class Store(Protocol):
    """Async, safe for many coroutines, many processes and many replicas at once."""

    # lifecycle
    async def start(self) -> None:
        """Connect and apply Alembic migrations (idempotent, safe when replicas race)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreError when the database is unreachable (for /readyz)."""

    # one-shot claims: Slack event ids, webhook deliveries, anything "first writer wins"
    async def claim_once(self, namespace: str, key: str, ttl_seconds: float) -> bool:
        """True for exactly one caller per (namespace, key) until ttl passes."""

    # answers, feedback
    async def save_answer(self, answer: AnswerRecord) -> None: ...
    async def get_answer(self, answer_id: str) -> AnswerRecord | None: ...
    async def set_answer_message(self, answer_id: str, message_ts: str) -> None: ...
    async def set_answer_stream(self, answer_id: str, stream_ts: str) -> None:
        """The streamed message's ts, recorded as soon as chat.startStream answers."""

    async def drop_answer(self, answer_id: str) -> None:
        """Forget an intent whose answer failed (the failure was told in the thread)."""

    async def thread_answers(self, channel: str, thread_ts: str) -> list[AnswerRecord]:
        """Answers given in a thread, oldest first (follow-up detection, history)."""

    async def unposted_answers(self, since: float) -> list[AnswerRecord]:
        """Answers saved since `since` whose message was never recorded (a crash between the
        post and its record, or before the post): resumed at start, oldest first."""

    async def record_feedback(
        self, answer_id: str, user: str, value: Feedback, comment: str | None = None
    ) -> None:
        """One vote per (answer, user); a second vote replaces the first."""

    async def feedback_counts(self, answer_id: str) -> dict[Feedback, int]: ...
    async def rated_answers(self, limit: int = 500) -> list[tuple[AnswerRecord, int, int]]:
        """The most recently rated answers with their (good, bad) vote counts, newest first
        (the App Home's feedback by datasource and worst-rated answers)."""

    # channel -> datasource bindings
    async def bind(self, channel: str, datasource: str, by: str) -> None: ...
    async def unbind(self, channel: str, datasource: str | None = None) -> int:
        """Remove one binding, or all of the channel's when datasource is None; returns count."""

    async def bindings(self, channel: str) -> list[str]: ...
    async def all_bindings(self) -> dict[str, list[str]]:
        """Every binding: datasource -> the channels bound to it."""

    # per-channel settings
    async def set_private_answers(self, channel: str, on: bool, by: str) -> None:
        """Answer the channel's questions only to their askers (ephemeral) when `on`."""

    async def private_answers(self, channel: str) -> bool: ...

    # channels whose threads are knowledge
    async def follow_channel(self, channel: KnowledgeChannel) -> None:
        """Add or replace a channel whose Slack threads are indexed."""

    async def unfollow_channel(self, channel: str) -> bool: ...
    async def followed_channels(self) -> list[KnowledgeChannel]: ...

    # video jobs
    async def create_video_job(self, job: VideoJobRecord) -> tuple[VideoJobRecord, bool]:
        """Insert, unless an unfinished job has the same dedupe_key: then return that one.
        Returns (job, created)."""

    async def get_video_job(self, job_id: str) -> VideoJobRecord | None: ...
    async def find_video_job(self, heygen_video_id: str) -> VideoJobRecord | None: ...
    async def claim_video_job(
        self, owner: str, lease_seconds: float, job_id: str | None = None
    ) -> VideoJobRecord | None:
        """Atomically take an unfinished job whose lease is free or expired (a given one, or
        any, oldest first); sets lease_owner/lease_until, attempts += 1."""

    async def update_video_job(self, job_id: str, owner: str, **changes: Any) -> VideoJobRecord:
        """Apply changes (state, heygen_video_id, error, target, …) and renew nothing;
        raise LeaseLost unless `owner` holds an unexpired lease."""

    async def renew_video_job(self, job_id: str, owner: str, lease_seconds: float) -> bool: ...
    async def release_video_job(self, job_id: str, owner: str) -> None: ...
    async def unfinished_video_jobs(self) -> list[VideoJobRecord]: ...

    # live sessions
    async def claim_live_scope(
        self, scope: str, backend: str, owner: str, lease_seconds: float
    ) -> tuple[ScopeRecord, bool]:
        """Return the scope's record; `True` when the caller now holds its lease (it was free,
        expired or already the caller's: then the lease is extended). Creates the row (state
        starting) when missing; a `closed` row the caller wins starts afresh (starting, no
        session)."""

    async def get_live_session(self, scope: str) -> ScopeRecord | None: ...
    async def update_live_session(self, scope: str, owner: str, **changes: Any) -> ScopeRecord:
        """Raise LeaseLost unless `owner` holds the scope's unexpired lease. Changeable:
        backend, session_id, session, state, lease_until (0 releases), started_at,
        last_activity_at, viewer_seen_at."""

    async def mark_viewer_seen(self, scope: str) -> None:
        """A viewer page reported itself connected (any replica may record it; no lease)."""

    async def live_sessions(
        self, states: Sequence[str] = (ScopeState.STARTING, ScopeState.LIVE)
    ) -> list[ScopeRecord]: ...

    # viewer links
    async def live_link(self, scope: str, ttl_seconds: float) -> LiveLink:
        """The scope's unexpired link, or a new one (one winner when replicas race)."""

    async def resolve_live_link(self, token: str) -> LiveLink | None:
        """The link for a token, expired or not (the page tells expired from unknown)."""

    # speech queue (queued until a viewer is connected; exactly one publisher per sentence)
    async def enqueue_speech(
        self, scope: str, answer_id: str, sentences: Sequence[str]
    ) -> list[SpeechItem]: ...
    async def pending_speech(self, scope: str) -> list[SpeechItem]:
        """Unpublished items of the scope, oldest first."""

    async def claim_speech(self, item_id: int, publisher: str) -> bool:
        """Mark published by `publisher`; True for exactly one caller."""

    async def drop_pending_speech(self, scope: str, except_answer: str | None = None) -> int:
        """A new question interrupts the previous answer: its unpublished sentences leave the
        queue (kept, marked DROPPED, for the transcript and replays); returns how many."""

    async def answer_speech(self, answer_id: str) -> list[SpeechItem]:
        """All of an answer's sentences (replay)."""

    async def scope_answers(self, scope: str, limit: int = 20) -> list[ScopeAnswer]:
        """The scope's transcript: the `limit` answers with speech in the scope most recently
        queued (a replay counts), oldest first, each with its saved record when there is one
        (interrupted answers included)."""

    # messages between replicas (PostgreSQL LISTEN/NOTIFY; polling on SQLite)
    async def notify(self, channel: str, payload: dict[str, Any]) -> None: ...
    def listen(self, channel: str) -> Subscription:
        """Payloads sent to `channel` (by any replica) after the subscription starts."""

    # usage counters for budgets (e.g. kind "live_minutes"/"videos", key "team:T1"/"user:U1")
    async def add_usage(self, kind: str, key: str, day: str, amount: float) -> float:
        """Add and return the new total for (kind, key, day) — atomic."""

    async def usage(self, kind: str, key: str, day: str) -> float: ...

    # audit log of knowledge changes
    async def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None: ...
    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]: ...

    # retention
    async def purge(self, older_than: float) -> int:
        """Delete answers, feedback, speech, expired claims/links, finished jobs, closed live
        sessions and replica messages older than `older_than`; returns rows removed. Usage
        counters and the audit log are kept. `retention_cutoff(settings)` gives the time."""
