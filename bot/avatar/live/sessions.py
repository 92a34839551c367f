"""Live avatar sessions: one per reuse scope, started on demand, kept alive only while watched.

Lifecycle (all state in the shared store, so any replica can take over a scope whose lease
lapsed): a scope's row is claimed with a lease; the holder starts the vendor session, sends
keep-alives (every LIVE_KEEPALIVE_SECONDS) only while a viewer is connected or speech is
pending, closes it after LIVE_IDLE_CLOSE_SECONDS without a viewer (idle sessions bill per
minute), renews it before its maximum duration, and closes what it holds on shutdown. When
the vendor says the session is gone (idle timeout, stopped, expired, `session.stopped` seen by
the page) a new session starts behind the same link; queued speech stays queued.

How speech reaches the avatar: bot/avatar/live/speech.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bot.avatar.budgets import Budgets
from bot.avatar.delivery import AvatarError, AvatarLimitReached, LiveScope
from bot.avatar.live.events import BusEvent, EventBus
from bot.avatar.live.speech import ScopeSpeech, live_session_of
from bot.config import LiveApi, LiveReuse, Settings
from bot.heygen.errors import HeyGenError
from bot.heygen.live import (
    AvatarRoom,
    LiveAvatarUnknown,
    LiveConcurrencyLimit,
    LiveSessionGone,
    RoomApi,
)
from bot.store.base import LeaseLost, ScopeRecord, ScopeState, Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
# A keep-alive goes out at least this long before the API's idle timeout: one upkeep tick
# (10 s, bot/avatar/service.py) plus a slow or retried request still land in time.
KEEPALIVE_MARGIN_SECONDS = 30.0
AVATAR_CHECK_SECONDS = 15.0  # for the catalogue check at start, retries included
VIEWER_FRESH_SECONDS = 45.0  # a page heartbeats every 15 s; three missed = gone
RENEW_MARGIN_SECONDS = 60.0


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


def keepalive_interval(configured: float, room: AvatarRoom) -> float:
    """Seconds between keep-alives: LIVE_KEEPALIVE_SECONDS, but never so late that the
    vendor's idle timeout (streaming v1: 120 s; LiveAvatar: 5 min) could pass first."""
    if room.idle_timeout_seconds:
        return max(5.0, min(configured, room.idle_timeout_seconds - KEEPALIVE_MARGIN_SECONDS))
    return configured


def unknown_avatar_sentence(avatar_id: str, api: LiveApi) -> str:
    where = "LiveAvatar's" if api is LiveApi.LIVEAVATAR else "HeyGen's interactive"
    return (
        f"The live avatar is not set up right: LIVE_AVATAR_ID ({avatar_id!r}) is not one of "
        f"{where} avatars. Set LIVE_AVATAR_ID to an avatar from that catalogue "
        "(HEYGEN_AVATAR_ID is a video avatar and is not used for live answers)."
    )


class ScopeSessions(ScopeSpeech):
    """Every live scope's vendor session: started on demand, kept alive while watched,
    closed when idle, replaced when gone; speech (`ScopeSpeech`) rides on it."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: RoomApi,
        budgets: Budgets,
        bus: EventBus,
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
        # Never HEYGEN_AVATAR_ID: the live APIs have their own avatar catalogues.
        self.avatar_id = settings.live_avatar_id or ""
        self.sessions_started = 0  # read by the bench
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pump_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._viewer_seen: dict[str, float] = {}
        self._activity: dict[str, float] = {}
        self._keepalive_at: dict[str, float] = {}
        self._billed_at: dict[str, float] = {}
        # Scope -> its live session as last seen here: saves a store read per sentence.
        # Dropped when this replica closes or replaces it, or hears another replica did.
        self._known: dict[str, AvatarRoom] = {}
        bus.on_event(self._on_event)

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
        await self.bus.publish(scope, BusEvent.VIEWER, at=now)

    async def _on_event(self, event: dict[str, Any]) -> None:
        scope = event.get("scope", "")
        kind = event.get("kind")
        if kind == BusEvent.VIEWER:
            self._viewer_seen[scope] = max(self._viewer_seen.get(scope, 0.0), event["at"])
            await self.pump(scope)
        elif kind == BusEvent.SPEECH and event.get("origin") != self.owner:
            await self.pump(scope)
        elif kind in (BusEvent.SESSION, BusEvent.ENDED) and event.get("origin") != self.owner:
            self._known.pop(scope, None)

    async def check_avatar(self) -> str | None:
        """At start: why live is off when the API's catalogue lacks LIVE_AVATAR_ID, else
        None. When the catalogue cannot be read, None: the first token call will tell."""
        try:
            async with asyncio.timeout(AVATAR_CHECK_SECONDS):  # never hold up the start
                if await self.backend.has_avatar(self.avatar_id):
                    return None
        except (HeyGenError, TimeoutError) as exc:
            log.warning("could not list the live avatars to check LIVE_AVATAR_ID: %s", exc)
            return None
        return unknown_avatar_sentence(self.avatar_id, self.backend.name)

    # --- sessions -------------------------------------------------------------------------

    async def _count_open(self, except_scope: str) -> int:
        return sum(
            1
            for r in await self.store.live_sessions()
            if r.scope != except_scope
            and (r.state is ScopeState.LIVE or r.lease_until > self.clock())
        )

    async def check_limits(self, scope: str) -> None:
        """Raise AvatarLimitReached before anything is queued or started."""
        await self.budgets.check_live()
        record = await self.store.get_live_session(scope)
        if record is not None and record.state is ScopeState.LIVE:
            return
        cap = self.settings.live_max_sessions
        if await self._count_open(scope) >= cap:
            raise AvatarLimitReached(
                f"All {cap} live avatar sessions are in use right now; try again in a few "
                "minutes (the text answer is above)."
            )

    async def ensure(self, scope: str) -> AvatarRoom:
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

    async def _start(self, scope: str) -> AvatarRoom:
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
        except LiveAvatarUnknown:
            await self._mark_closed(scope)
            raise AvatarError(unknown_avatar_sentence(self.avatar_id, self.backend.name)) from None
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
            state=ScopeState.LIVE,
            started_at=now,
            last_activity_at=now,
        )
        self.sessions_started += 1
        self._known[scope] = session
        self._keepalive_at[scope] = self._billed_at[scope] = self._activity[scope] = now
        log.info("live session started for %s (%s)", scope, self.backend.name.value)
        await self.bus.publish(scope, BusEvent.SESSION, session_id=session.session_id)
        return session

    async def _mark_closed(self, scope: str) -> None:
        self._known.pop(scope, None)
        with contextlib.suppress(LeaseLost):
            await self.store.update_live_session(
                scope, self.owner, state=ScopeState.CLOSED, session=None, session_id=None
            )

    async def replace(self, scope: str, gone_session_id: str | None) -> AvatarRoom:
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

    async def viewer_session(self, scope: str, gone: str | None) -> tuple[AvatarRoom, str]:
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
        if record.state is not ScopeState.LIVE or not record.session:
            if record.state is ScopeState.STARTING:
                await self._mark_closed(scope)  # a start that died with its replica
            return
        session = AvatarRoom.from_record(record.session)
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
            keepalive_interval(self.settings.live_keepalive_seconds, session)
        ):
            try:
                await self.backend.keep_alive(session)
                self._keepalive_at[scope] = now
            except LiveSessionGone:
                await self._mark_closed(scope)
                if viewer:
                    await self._start(scope)
                else:
                    await self.bus.publish(scope, BusEvent.ENDED, reason="expired")
                return
        await self.store.update_live_session(scope, self.owner, last_activity_at=last)

    async def _renew(self, scope: str, old: AvatarRoom) -> None:
        async with self._locks[scope]:
            await self._mark_closed(scope)
            await self._start(scope)
        await self._stop_quietly(old)

    async def _close(self, scope: str, session: AvatarRoom, reason: str) -> None:
        await self._stop_quietly(session)
        await self._mark_closed(scope)
        billed = self._billed_at.pop(scope, None)
        if billed is not None:  # the minutes since the last upkeep tick count too
            await self.budgets.add_live_seconds(self.clock() - billed)
        log.info("live session for %s closed (%s)", scope, reason)
        await self.bus.publish(scope, BusEvent.ENDED, reason=reason)

    async def _stop_quietly(self, session: AvatarRoom) -> None:
        try:
            await self.backend.stop(session)
        except HeyGenError as exc:
            log.warning("could not stop live session %s: %s", session.session_id, exc)

    async def close_all(self) -> None:
        """Shutdown: close every session this replica holds (or nobody holds)."""
        now = self.clock()
        records: list[ScopeRecord] = await self.store.live_sessions()
        for record in records:
            if record.owner not in (None, self.owner) and record.lease_until > now:
                continue
            _, mine = await self.store.claim_live_scope(
                record.scope, self.backend.name.value, self.owner, LEASE_SECONDS
            )
            if not mine:
                continue
            if record.session:
                await self._close(record.scope, AvatarRoom.from_record(record.session), "shutdown")
            else:
                await self._mark_closed(record.scope)
