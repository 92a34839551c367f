"""The viewer API: everything the viewer page's web routes (bot/web/live_page.py) may ask of
live delivery, typed, and nothing else. `web/` never reaches into sessions, the store or the
bus directly.

    viewer = delivery.viewer                    # a ViewerApi
    link = await viewer.resolve(token)          # LinkState: known? expired?
    join = await viewer.join(link.scope, gone)  # JoinInfo: LiveKit URL + client token
    snap = await viewer.snapshot(scope)         # transcript + pending sentences
    with viewer.watching(scope) as queue: ...   # bus events for one SSE stream

Limits that protect the server from one link or one client opening thousands of streams
(issue 15) live here too: stream caps per link, per client address and per process, replay
throttling, and heartbeats batched to at most one store write per scope per beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, Field

from bot.avatar.delivery import AvatarLimitReached
from bot.avatar.live.events import EventBus
from bot.avatar.live.sessions import ScopeSessions
from bot.avatar.live.speech import Publisher, answer_sentences, item_json
from bot.config import Settings
from bot.store.base import LiveLink, ScopeAnswer, ScopeState, Store
from knowledge.answering.spoken import spoken_variant

HEARTBEAT_SECONDS = 15.0
TRANSCRIPT_ANSWERS = 50  # the newest answers a page opens with


class ViewerSource(BaseModel):
    """A numbered source of an answer: `link` is `Source.link` (empty: not openable)."""

    number: int | None = None
    title: str
    link: str = ""


class AnswerEntry(BaseModel):
    """One transcript entry: the saved answer once the chat surface saved it, else the
    sentences the avatar speaks."""

    answer_id: str
    question: str = ""
    text: str = ""
    sources: list[ViewerSource] = Field(default_factory=list)


class Snapshot(BaseModel):
    """What a page opens with: the newest answers, the unspoken sentences, the session."""

    answers: list[AnswerEntry]
    pending: list[dict[str, Any]]
    session_id: str | None = None


class JoinInfo(BaseModel):
    """What a page joins: the room and its client token (only ever in a no-store body)."""

    session_id: str
    livekit_url: str
    token: str
    publisher: Publisher


class LinkState(BaseModel):
    link: LiveLink | None = None
    expired: bool = False

    @property
    def ok(self) -> bool:
        return self.link is not None and not self.expired

    @property
    def scope(self) -> str:
        assert self.link is not None
        return self.link.scope


class StreamRefused(Exception):
    """A new event stream would pass a cap; `status` is 429 (this link or client) or 503
    (the server as a whole), the message a sentence for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def answer_entry(item: ScopeAnswer) -> AnswerEntry:
    record = item.answer
    if record is None:
        return AnswerEntry(answer_id=item.answer_id, text=" ".join(item.sentences))
    sources = []
    for s in record.sources:
        number = s.get("number")
        link = str(s.get("link") or "")
        sources.append(
            ViewerSource(
                number=number if isinstance(number, int) else None,
                title=str(s.get("title") or "Source"),
                # answers saved before links were URLs may hold a server path: never shown
                link=link if link.startswith(("https://", "http://")) else "",
            )
        )
    return AnswerEntry(
        answer_id=item.answer_id,
        question=record.question,
        text=record.spoken or spoken_variant(record.text),  # the writer's, never raw markup
        sources=sources,
    )


class ViewerApi:
    """The viewer page's view of live delivery (`sessions` is None when live is off)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: EventBus,
        sessions: ScopeSessions | None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.sessions = sessions
        self.clock = clock
        self._monotonic = monotonic
        self._streams_by_link: Counter[str] = Counter()
        self._streams_by_client: Counter[str] = Counter()
        self._streams = 0
        self._beat_at: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.sessions is not None

    @property
    def link_ttl_hours(self) -> float:
        return self.settings.live_link_ttl_hours

    async def resolve(self, token: str) -> LinkState:
        link = await self.store.resolve_live_link(token)
        return LinkState(link=link, expired=link is not None and link.expired(self.clock()))

    # --- joining and speaking -------------------------------------------------------------

    def _live(self) -> ScopeSessions:
        if self.sessions is None:
            raise AvatarLimitReached("The live avatar is turned off.")
        return self.sessions

    async def join(self, scope: str, gone: str | None) -> JoinInfo:
        room, publisher = await self._live().viewer_session(scope, gone)
        return JoinInfo(
            session_id=room.session_id,
            livekit_url=room.livekit_url,
            token=room.access_token.get_secret_value(),
            publisher=publisher,
        )

    async def claim(self, scope: str, item_id: int, who: str) -> bool:
        """One publisher per sentence, across tabs and replicas."""
        pending = {i.id for i in await self.store.pending_speech(scope)}
        return item_id in pending and await self.store.claim_speech(item_id, who)

    async def replay(self, scope: str, answer_id: str) -> int:
        """Queue an answer again; at most one replay per scope per LIVE_REPLAY_SECONDS
        (across replicas: the store's claim), so a button held down is not a flood."""
        window = self.settings.live_replay_seconds
        slot = int(self.clock() // window)
        if not await self.store.claim_once("live-replay", f"{scope}:{slot}", window):
            raise AvatarLimitReached(
                f"Replays are limited to one every {window:g} seconds; try again in a moment."
            )
        return await self._live().replay(scope, answer_id)

    # --- the transcript -------------------------------------------------------------------

    async def snapshot(self, scope: str) -> Snapshot:
        # From the shared store, not this process: a replica that started later, or never
        # handled the question, shows the same transcript.
        record = await self.store.get_live_session(scope)
        transcript = await self.store.scope_answers(scope, TRANSCRIPT_ANSWERS)
        pending = await self.store.pending_speech(scope)
        live = record is not None and record.state is ScopeState.LIVE
        return Snapshot(
            answers=[answer_entry(a) for a in transcript],
            pending=[item_json(i) for i in pending],
            session_id=record.session_id if live else None,
        )

    async def entry(self, scope: str, answer_id: str) -> AnswerEntry:
        """The entry for an answer just announced on the bus (read from the store)."""
        sentences = await answer_sentences(self.store, scope, answer_id)
        record = await self.store.get_answer(answer_id)
        return answer_entry(ScopeAnswer(answer_id=answer_id, answer=record, sentences=sentences))

    # --- event streams ----------------------------------------------------------------------

    def check_stream(self, token: str, client: str) -> None:
        """Raise StreamRefused when one more stream for `token` from `client` would pass a
        cap (counted in this process: each replica guards itself)."""
        s = self.settings
        if self._streams >= s.live_streams_total:
            raise StreamRefused(
                503, "The live page is busy right now; reload it in a minute or two."
            )
        if self._streams_by_link[token] >= s.live_streams_per_link:
            raise StreamRefused(
                429,
                "This live link is open in too many windows; close some and reload this one.",
            )
        if self._streams_by_client[client] >= s.live_streams_per_client:
            raise StreamRefused(
                429, "Too many live pages are open from your address; close some and reload."
            )

    @contextlib.contextmanager
    def watching(self, token: str, client: str, scope: str) -> Iterator[asyncio.Queue[Any]]:
        """Count one stream (after `check_stream`) and hear the scope's bus events."""
        self.check_stream(token, client)
        self._streams += 1
        self._streams_by_link[token] += 1
        self._streams_by_client[client] += 1
        queue = self.bus.subscribe(scope)
        try:
            yield queue
        finally:
            self.bus.unsubscribe(scope, queue)
            self._streams -= 1
            for counter, key in ((self._streams_by_link, token), (self._streams_by_client, client)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]

    async def heartbeat(self, scope: str) -> None:
        """A page of `scope` is connected. However many pages watch a scope here, the store
        and the other replicas hear of it at most twice per heartbeat period (this replica
        knows its own watchers from the bus subscriptions)."""
        now = self._monotonic()
        last = self._beat_at.get(scope)
        if last is not None and now - last < HEARTBEAT_SECONDS / 2:
            return
        self._beat_at[scope] = now
        await self._live().viewer_heartbeat(scope)
