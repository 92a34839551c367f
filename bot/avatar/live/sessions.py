"""Live avatar sessions: one per reuse scope, started on demand, kept alive only while watched.

Lifecycle (all state in the shared store, so any replica can take over a scope whose lease
lapsed): a scope's row is claimed with a lease; the holder starts the vendor session, sends
keep-alives (every LIVE_KEEPALIVE_SECONDS) only while a viewer is connected or speech is
pending, closes it after LIVE_IDLE_CLOSE_SECONDS without a viewer (idle sessions bill per
minute), renews it before its maximum duration, and closes what it holds on shutdown. When
the vendor says the session is gone (idle timeout, stopped, expired, `session.stopped` seen by
the page) a new session starts behind the same link; queued speech stays queued.

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
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.avatar.budgets import Budgets
from bot.avatar.delivery import AvatarError, AvatarLimitReached, LiveScope
from bot.avatar.live.events import LiveBus
from bot.config import LiveApi, LiveReuse, Settings
from bot.heygen.errors import HeyGenError
from bot.heygen.live import (
    AgentControlError,
    LiveBackend,
    LiveConcurrencyLimit,
    LiveSession,
    LiveSessionGone,
)
from bot.store.base import LeaseLost, LiveSessionRecord, SpeechItem, Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
VIEWER_FRESH_SECONDS = 45.0  # a page heartbeats every 15 s; three missed = gone
RENEW_MARGIN_SECONDS = 60.0
SERVER = "server"
VIEWER = "viewer"


def scope_key(scope: LiveScope, reuse: LiveReuse) -> str:
    """The session (and link) key a question belongs to under the reuse setting."""
    team = scope.team or "-"
    if reuse is LiveReuse.THREAD and scope.thread_ts:
        return f"thread:{team}:{scope.channel}:{scope.thread_ts}"
    if reuse is LiveReuse.USER and scope.user:
        return f"user:{team}:{scope.user}"
    if reuse is LiveReuse.OFF and scope.answer_id:
        return f"answer:{team}:{scope.answer_id}"
    return f"channel:{team}:{scope.channel}"


async def answer_sentences(store: Store, scope: str, answer_id: str) -> list[str]:
    """An answer's sentences queued in `scope`, each text once, in order (a replay appends
    the same sentences again)."""
    items = await store.answer_speech(answer_id)
    return list(dict.fromkeys(i.text for i in items if i.scope == scope))


def live_session_of(record: LiveSessionRecord | None) -> LiveSession | None:
    """The vendor session a scope's record holds while it is live, else None."""
    if record is None or record.state != "live" or not record.session:
        return None
    return LiveSession.from_record(record.session)


def item_json(item: SpeechItem) -> dict[str, Any]:
    return {"id": item.id, "answer_id": item.answer_id, "seq": item.seq, "text": item.text}


class LiveSessions:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: LiveBackend,
        budgets: Budgets,
        bus: LiveBus,
        *,
        owner: str,
        server_publishing: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.budgets = budgets
        self.bus = bus
        self.owner = owner
        self.server_publishing = server_publishing
        self.clock = clock
        self.avatar_id = settings.live_avatar_id or settings.heygen_avatar_id or ""
        self.sessions_started = 0  # read by the bench
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pump_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._viewer_seen: dict[str, float] = {}
        self._activity: dict[str, float] = {}
        self._keepalive_at: dict[str, float] = {}
        self._billed_at: dict[str, float] = {}
        # Scope -> its live session as last seen here: saves a store read per sentence.
        # Dropped when this replica closes or replaces it, or hears another replica did.
        self._known: dict[str, LiveSession] = {}
        bus.on_event(self._on_event)

    # --- who publishes ------------------------------------------------------------------

    def publisher_for(self, session: LiveSession) -> str:
        if session.backend is LiveApi.STREAMING:
            return SERVER
        if self.server_publishing and session.agent_token is not None:
            return SERVER
        return VIEWER

    # --- viewers --------------------------------------------------------------------------

    def viewer_active(self, scope: str) -> bool:
        if self.bus.local_subscribers(scope):
            return True
        return self.clock() - self._viewer_seen.get(scope, 0.0) < VIEWER_FRESH_SECONDS

    async def viewer_heartbeat(self, scope: str) -> None:
        """A viewer page of `scope` is connected (to this or another replica)."""
        now = self.clock()
        self._viewer_seen[scope] = now
        await self.store.mark_viewer_seen(scope)  # durable: a replica taking over sees it
        await self.bus.publish(scope, "viewer", at=now)

    async def _on_event(self, event: dict[str, Any]) -> None:
        scope = event.get("scope", "")
        kind = event.get("kind")
        if kind == "viewer":
            self._viewer_seen[scope] = max(self._viewer_seen.get(scope, 0.0), event["at"])
            await self.pump(scope)
        elif kind == "speech" and event.get("origin") != self.owner:
            await self.pump(scope)
        elif kind in ("session", "ended") and event.get("origin") != self.owner:
            self._known.pop(scope, None)

    # --- sessions -------------------------------------------------------------------------

    async def _count_open(self, except_scope: str) -> int:
        return sum(
            1
            for r in await self.store.live_sessions()
            if r.scope != except_scope and (r.state == "live" or r.lease_until > self.clock())
        )

    async def check_limits(self, scope: str) -> None:
        """Raise AvatarLimitReached before anything is queued or started."""
        await self.budgets.check_live()
        record = await self.store.get_live_session(scope)
        if record is not None and record.state == "live":
            return
        cap = self.settings.live_max_sessions
        if await self._count_open(scope) >= cap:
            raise AvatarLimitReached(
                f"All {cap} live avatar sessions are in use right now; try again in a few "
                "minutes (the text answer is above)."
            )

    async def ensure(self, scope: str) -> LiveSession:
        """The scope's live session, started when there is none."""
        async with self._locks[scope]:
            for _ in range(40):
                record, mine = await self.store.claim_live_scope(
                    scope, self.backend.name.value, self.owner, LEASE_SECONDS
                )
                session = live_session_of(record)
                if session is not None:
                    self._known[scope] = session
                    return session
                if mine:
                    return await self._start(scope)
                await asyncio.sleep(0.5)  # another replica is starting it
        raise AvatarError("The live avatar is still starting; try again in a moment.")

    async def _start(self, scope: str) -> LiveSession:
        """Start a vendor session for a scope whose lease we hold."""
        try:
            await self.check_limits(scope)
            if not self.avatar_id:
                raise AvatarError("No live avatar is configured (set LIVE_AVATAR_ID).")
            session = await self.backend.create_session(
                self.avatar_id,
                self.settings.live_voice_id,
                language=self.settings.live_language,
                quality=self.settings.live_quality,  # type: ignore[arg-type]
            )
        except LiveConcurrencyLimit:
            await self._mark_closed(scope)
            raise AvatarLimitReached(
                "The avatar service is running as many live sessions as the account allows; "
                "try again in a few minutes."
            ) from None
        except HeyGenError as exc:
            await self._mark_closed(scope)
            raise AvatarError(f"The live avatar could not start: {exc.message}") from exc
        except AvatarError:
            await self._mark_closed(scope)
            raise
        now = self.clock()
        await self.store.update_live_session(
            scope,
            self.owner,
            session_id=session.session_id,
            session=session.to_record(),
            state="live",
            started_at=now,
            last_activity_at=now,
        )
        self.sessions_started += 1
        self._known[scope] = session
        self._keepalive_at[scope] = self._billed_at[scope] = self._activity[scope] = now
        log.info("live session started for %s (%s)", scope, self.backend.name.value)
        await self.bus.publish(scope, "session", session_id=session.session_id)
        return session

    async def _mark_closed(self, scope: str) -> None:
        self._known.pop(scope, None)
        with contextlib.suppress(LeaseLost):
            await self.store.update_live_session(
                scope, self.owner, state="closed", session=None, session_id=None
            )

    async def replace(self, scope: str, gone_session_id: str | None) -> LiveSession:
        """The vendor says `gone_session_id` ended: a new session behind the same link."""
        async with self._locks[scope]:
            record, mine = await self.store.claim_live_scope(
                scope, self.backend.name.value, self.owner, LEASE_SECONDS
            )
            session = live_session_of(record)
            if session is not None and record.session_id != gone_session_id:
                self._known[scope] = session  # replaced already
                return session
            if not mine:
                raise AvatarError("The live avatar is restarting; try again in a moment.")
            await self._mark_closed(scope)
            log.info("live session for %s is gone; starting a new one", scope)
            return await self._start(scope)

    async def viewer_session(self, scope: str, gone: str | None) -> tuple[LiveSession, str]:
        """What a viewer page joins. `gone`: the session id the page lost, if it lost one."""
        await self.viewer_heartbeat(scope)
        if gone:
            record = await self.store.get_live_session(scope)
            current = live_session_of(record) if record and record.session_id == gone else None
            if current is not None:
                try:
                    await self.backend.keep_alive(current)
                except LiveSessionGone:
                    session = await self.replace(scope, gone)
                    return session, self.publisher_for(session)
                except HeyGenError as exc:
                    log.warning("could not check live session for %s: %s", scope, exc)
        session = await self.ensure(scope)
        self._activity[scope] = self.clock()
        await self.pump(scope)
        return session, self.publisher_for(session)

    # --- speech ---------------------------------------------------------------------------

    async def speak(self, scope: str, answer_id: str, sentences: AsyncIterator[str]) -> None:
        await self.check_limits(scope)
        await self.interrupt(scope, keep_answer=answer_id)
        await self.bus.publish(scope, "answer", answer_id=answer_id)
        async for sentence in sentences:
            if not sentence.strip():
                continue
            items = await self.store.enqueue_speech(scope, answer_id, [sentence])
            known = self._known.get(scope)
            if known is not None and self.publisher_for(known) == SERVER:
                await self.pump(scope)  # the server speaks: first speak, then tell pages
                await self.bus.publish(scope, "speech", items=[item_json(i) for i in items])
            else:
                await self.bus.publish(scope, "speech", items=[item_json(i) for i in items])
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
        await self.bus.publish(scope, "interrupt", keep_answer=keep_answer)
        session = live_session_of(await self.store.get_live_session(scope))
        if session is not None and self.publisher_for(session) == SERVER:
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
            if self.publisher_for(session) != SERVER:
                return
            for item in await self.store.pending_speech(scope):
                if not await self.store.claim_speech(item.id, self.owner):
                    continue
                session = await self._say(scope, session, item.text)

    async def _say(self, scope: str, session: LiveSession, text: str) -> LiveSession:
        try:
            await self.backend.speak(session, text)
        except (LiveSessionGone, AgentControlError):
            # The claim is ours: say it on the session that replaces the lost one.
            session = await self.replace(scope, session.session_id)
            await self.backend.speak(session, text)
        self._activity[scope] = self.clock()
        return session

    # --- the worker: keep-alive, idle close, renew, billing ------------------------------

    async def tick(self) -> None:
        now = self.clock()
        for record in await self.store.live_sessions():
            if record.owner not in (None, self.owner) and record.lease_until > now:
                continue
            if self._locks[record.scope].locked():
                continue  # being started or replaced right now
            try:
                await self._tend(record.scope, now)
            except AvatarError as exc:
                log.warning("live session for %s: %s", record.scope, exc)
            except (HeyGenError, LeaseLost) as exc:
                log.warning("live session upkeep for %s failed: %s", record.scope, exc)

    async def _tend(self, scope: str, now: float) -> None:
        record, mine = await self.store.claim_live_scope(
            scope, self.backend.name.value, self.owner, LEASE_SECONDS
        )
        if not mine:
            return
        if record.state != "live" or not record.session:
            if record.state == "starting":
                await self._mark_closed(scope)  # a start that died with its replica
            return
        session = LiveSession.from_record(record.session)
        billed = self._billed_at.get(scope, max(record.started_at, now - LEASE_SECONDS))
        await self.budgets.add_live_seconds(now - billed)
        self._billed_at[scope] = now
        self._viewer_seen[scope] = max(self._viewer_seen.get(scope, 0.0), record.viewer_seen_at)
        viewer = self.viewer_active(scope)
        last = max(
            record.last_activity_at,
            self._activity.get(scope, 0.0),
            self._viewer_seen.get(scope, 0.0),
        )
        if viewer:
            last = now
        if now - last >= self.settings.live_idle_close_seconds:
            await self._close(scope, session, "idle")
            return
        limit = self.settings.live_max_session_seconds
        if session.max_duration_seconds:
            limit = min(limit, float(session.max_duration_seconds))
        if now - record.started_at >= limit - RENEW_MARGIN_SECONDS:
            await self._renew(scope, session)
            return
        pending = bool(await self.store.pending_speech(scope))
        if (viewer or pending) and now - self._keepalive_at.get(scope, 0.0) >= (
            self.settings.live_keepalive_seconds
        ):
            try:
                await self.backend.keep_alive(session)
                self._keepalive_at[scope] = now
            except LiveSessionGone:
                await self._mark_closed(scope)
                if viewer:
                    await self._start(scope)
                else:
                    await self.bus.publish(scope, "ended", reason="expired")
                return
        await self.store.update_live_session(scope, self.owner, last_activity_at=last)

    async def _renew(self, scope: str, old: LiveSession) -> None:
        async with self._locks[scope]:
            await self._mark_closed(scope)
            await self._start(scope)
        await self._stop_quietly(old)

    async def _close(self, scope: str, session: LiveSession, reason: str) -> None:
        await self._stop_quietly(session)
        await self._mark_closed(scope)
        billed = self._billed_at.pop(scope, None)
        if billed is not None:  # the minutes since the last upkeep tick count too
            await self.budgets.add_live_seconds(self.clock() - billed)
        log.info("live session for %s closed (%s)", scope, reason)
        await self.bus.publish(scope, "ended", reason=reason)

    async def _stop_quietly(self, session: LiveSession) -> None:
        try:
            await self.backend.stop(session)
        except HeyGenError as exc:
            log.warning("could not stop live session %s: %s", session.session_id, exc)

    async def close_all(self) -> None:
        """Shutdown: close every session this replica holds (or nobody holds)."""
        now = self.clock()
        records: list[LiveSessionRecord] = await self.store.live_sessions()
        for record in records:
            if record.owner not in (None, self.owner) and record.lease_until > now:
                continue
            _, mine = await self.store.claim_live_scope(
                record.scope, self.backend.name.value, self.owner, LEASE_SECONDS
            )
            if not mine:
                continue
            if record.session:
                await self._close(record.scope, LiveSession.from_record(record.session), "shutdown")
            else:
                await self._mark_closed(record.scope)
