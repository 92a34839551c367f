"""Live speech: the queue of sentences per scope, who publishes each, and replays.

How speech reaches the avatar, and why:
- HeyGen streaming v1 has a REST speak call (`streaming.task`, task_type `repeat`), so the
  server speaks every sentence itself.
- LiveAvatar has no REST speak call: the avatar obeys `avatar.speak_text` published on the
  LiveKit data topic `agent-control` by a participant of the room. The viewer page is such a
  participant (it joins with the session's client token, exactly as LiveAvatar's own web SDK
  does), so by default the *page* publishes each sentence. The server publishes instead only
  when it can join the room itself: the start response granted an agent token and the
  `livekit` Python SDK is installed (`bot.heygen.live.LiveKitAgentControl`).
- Either way, every sentence is a row in the store's speech queue and `claim_speech` picks
  exactly one publisher for it, however many tabs, pages or replicas race for it. Sentences
  wait in the queue while nobody watches and are spoken when a viewer connects; a replay
  queues an answer's sentences again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.avatar.live.events import BusEvent
from bot.config import LiveApi
from bot.heygen.errors import HeyGenError
from bot.heygen.live import AgentControlError, AvatarRoom, LiveSessionGone
from bot.store.base import ScopeRecord, ScopeState, SpeechItem, Store

if TYPE_CHECKING:
    from bot.avatar.live.events import EventBus
    from bot.heygen.live import RoomApi


class Publisher(StrEnum):
    """Who publishes a scope's sentences into the avatar's room."""

    SERVER = "server"  # this bot (streaming v1's REST call, or LiveKit with an agent token)
    VIEWER = "viewer"  # the viewer page, with the room's client token


async def answer_sentences(store: Store, scope: str, answer_id: str) -> list[str]:
    """An answer's sentences queued in `scope`, each text once, in order (a replay appends
    the same sentences again)."""
    items = await store.answer_speech(answer_id)
    return list(dict.fromkeys(i.text for i in items if i.scope == scope))


def item_json(item: SpeechItem) -> dict[str, Any]:
    return {"id": item.id, "answer_id": item.answer_id, "seq": item.seq, "text": item.text}


def live_session_of(record: ScopeRecord | None) -> AvatarRoom | None:
    """The vendor session a scope's record holds while it is live, else None."""
    if record is None or record.state is not ScopeState.LIVE or not record.session:
        return None
    return AvatarRoom.from_record(record.session)


class ScopeSpeech:
    """The speech half of `ScopeSessions` (bot/avatar/live/sessions.py), which provides the
    session methods used here (`check_limits`, `viewer_active`, `replace`)."""

    store: Store
    backend: RoomApi
    bus: EventBus
    owner: str
    server_publishing: bool
    _known: dict[str, AvatarRoom]
    _pump_locks: dict[str, asyncio.Lock]
    _activity: dict[str, float]

    # --- who publishes ------------------------------------------------------------------

    def publisher_for(self, session: AvatarRoom) -> Publisher:
        if session.backend is LiveApi.STREAMING:
            return Publisher.SERVER
        if self.server_publishing and session.agent_token is not None:
            return Publisher.SERVER
        return Publisher.VIEWER

    # --- speech ---------------------------------------------------------------------------

    async def speak(self, scope: str, answer_id: str, sentences: AsyncIterator[str]) -> None:
        await self.check_limits(scope)
        await self.interrupt(scope, keep_answer=answer_id)
        await self.bus.publish(scope, BusEvent.ANSWER, answer_id=answer_id)
        async for sentence in sentences:
            if not sentence.strip():
                continue
            items = await self.store.enqueue_speech(scope, answer_id, [sentence])
            known = self._known.get(scope)
            if known is not None and self.publisher_for(known) is Publisher.SERVER:
                await self.pump(scope)  # the server speaks: first speak, then tell pages
                await self.bus.publish(scope, BusEvent.SPEECH, items=[item_json(i) for i in items])
            else:
                await self.bus.publish(scope, BusEvent.SPEECH, items=[item_json(i) for i in items])
                await self.pump(scope)

    async def replay(self, scope: str, answer_id: str) -> int:
        """Queue an answer's sentences again (the page's replay button)."""
        # Each text once, or the next replay would say everything twice.
        texts = await answer_sentences(self.store, scope, answer_id)
        if not texts:
            return 0

        async def again() -> AsyncIterator[str]:
            for text in texts:
                yield text

        await self.speak(scope, answer_id, again())
        return len(texts)

    async def interrupt(self, scope: str, keep_answer: str | None = None) -> None:
        """A new answer in the scope: the previous one's unspoken sentences go, and the
        avatar stops talking."""
        await self.store.drop_pending_speech(scope, except_answer=keep_answer)
        await self.bus.publish(scope, BusEvent.INTERRUPT, keep_answer=keep_answer)
        session = live_session_of(await self.store.get_live_session(scope))
        if session is not None and self.publisher_for(session) is Publisher.SERVER:
            with contextlib.suppress(HeyGenError):  # a gone session has nothing to interrupt
                await self.backend.interrupt(session)

    async def pump(self, scope: str) -> None:
        """Publish the scope's queued speech from this server, when it is the publisher and
        someone watches. Safe to call from every replica: claim_speech picks one."""
        if not self.viewer_active(scope):
            return
        async with self._pump_locks[scope]:
            session = self._known.get(scope)
            if session is None:
                session = live_session_of(await self.store.get_live_session(scope))
                if session is None:
                    return  # the page's session request starts one, then pumps again
                self._known[scope] = session
            if self.publisher_for(session) is not Publisher.SERVER:
                return
            for item in await self.store.pending_speech(scope):
                if not await self.store.claim_speech(item.id, self.owner):
                    continue
                session = await self._say(scope, session, item.text)

    async def _say(self, scope: str, session: AvatarRoom, text: str) -> AvatarRoom:
        try:
            await self.backend.speak(session, text)
        except (LiveSessionGone, AgentControlError):
            # The claim is ours: say it on the session that replaces the lost one.
            session = await self.replace(scope, session.session_id)
            await self.backend.speak(session, text)
        self._activity[scope] = self.clock()
        return session
