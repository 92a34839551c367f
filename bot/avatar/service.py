"""`AvatarDelivery`: the one avatar service the chat surface and the web routes use.

    delivery = AvatarDelivery(settings, store, clients, sink)
    await delivery.start()      # bus listener, video-job worker, live-session upkeep
    ...
    await delivery.stop()       # workers stopped, live sessions this replica holds closed

It implements both halves of `bot.avatar.delivery` (LiveAnswers, VideoDelivery) and the few
calls the web routes need (viewer page, webhook). Which vendor API runs underneath is a
setting; nothing here imports Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.avatar.budgets import Budgets
from bot.avatar.delivery import (
    AvatarUnavailable,
    DeliverySink,
    LiveScope,
    VideoRequest,
)
from bot.avatar.live.events import EventBus
from bot.avatar.live.sessions import ScopeSessions, scope_key
from bot.avatar.live.viewer import ViewerApi
from bot.avatar.video.jobs import VideoJobs
from bot.config import LiveApi, Settings
from bot.heygen.clients import HeyGenClients
from bot.heygen.live import AgentControlChannel, LiveKitAgentControl, build_room_api
from bot.heygen.webhooks import WebhookEvent
from bot.store.base import Store

log = logging.getLogger(__name__)

TICK_SECONDS = 10.0
WEBHOOK_DEDUPE_SECONDS = 7 * 24 * 3600.0
BUS_VIDEO = "avatar-video"


def _has_key(settings: Settings, name: str) -> bool:
    value = getattr(settings, name)
    return value is not None and bool(value.get_secret_value().strip())


class AvatarDelivery:
    """Live links and speech, video jobs; background workers started and stopped together."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clients: HeyGenClients,
        sink: DeliverySink,
        *,
        agent_control: AgentControlChannel | None = None,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clients = clients
        self.sink = sink
        self.clock = clock
        # Replica id: leases and speech claims name it (never a secret).
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.budgets = Budgets(
            store,
            live_daily_minutes=settings.live_daily_minutes,
            videos_per_workspace=settings.video_daily_per_workspace,
            videos_per_user=settings.video_daily_per_user,
            clock=clock,
        )
        self.bus = EventBus(store, self.owner)
        self.live_reason = self._live_off_reason()
        self.video_reason = (
            None
            if _has_key(settings, "heygen_api_key")
            and (settings.heygen_avatar_id or settings.video_template_id)
            else "set HEYGEN_API_KEY and HEYGEN_AVATAR_ID to turn on avatar videos"
        )
        self.live: ScopeSessions | None = None
        if self.live_reason is None:
            server_publishing = agent_control is not None or (
                importlib.util.find_spec("livekit") is not None
            )
            channel = agent_control or LiveKitAgentControl()
            backend = build_room_api(settings, clients, channel=channel)
            self.live = ScopeSessions(
                settings,
                store,
                backend,
                self.budgets,
                self.bus,
                owner=self.owner,
                server_publishing=server_publishing,
                clock=clock,
            )
        self.viewer = ViewerApi(settings, store, self.bus, self.live, clock=clock)
        self.videos = VideoJobs(
            settings,
            store,
            lambda: clients.video,
            lambda: clients.session,
            sink,
            self.budgets,
            owner=self.owner,
            clock=clock,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _live_off_reason(self) -> str | None:
        s = self.settings
        key = "liveavatar_api_key" if s.heygen_live_api is LiveApi.LIVEAVATAR else "heygen_api_key"
        if not _has_key(s, key):
            return f"set {key.upper()} to turn on the live avatar"
        if not s.live_avatar_id:  # never HEYGEN_AVATAR_ID: live APIs have their own avatars
            return (
                "set LIVE_AVATAR_ID to an avatar of the live API's own catalogue to turn on "
                "the live avatar (HEYGEN_AVATAR_ID is not used for live)"
            )
        if not s.public_base_url:
            return "set PUBLIC_BASE_URL (this server's public address) to offer live links"
        return None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self.live_reason:
            log.info("live avatar off: %s", self.live_reason)
        if self.video_reason:
            log.info("avatar videos off: %s", self.video_reason)
        if self.live is not None and (reason := await self.live.check_avatar()):
            log.warning("live avatar off: %s", reason)
            self.live_reason, self.live, self.viewer.sessions = reason, None, None
        self.bus.start()
        if self.live is not None:
            self._tasks.append(asyncio.create_task(self._upkeep(), name="live-upkeep"))
        if self.video_reason is None:
            self.videos.start()
            self._tasks.append(asyncio.create_task(self._video_hints(), name="video-hints"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.videos.stop()
        if self.live is not None:
            try:
                await self.live.close_all()
            except Exception:
                log.exception("closing live sessions at shutdown failed")
        await self.bus.stop()

    async def _upkeep(self) -> None:
        assert self.live is not None
        while True:
            try:
                await self.live.tick()
            except Exception:
                log.exception("live session upkeep failed; retrying")
            await asyncio.sleep(TICK_SECONDS)

    # --- LiveAnswers -------------------------------------------------------------------

    @property
    def live_enabled(self) -> bool:
        return self.live is not None

    def scope_key(self, scope: LiveScope) -> str:
        return scope_key(scope, self.settings.live_reuse)

    async def live_link(self, scope: LiveScope) -> str | None:
        if self.live is None:
            return None
        ttl = self.settings.live_link_ttl_hours * 3600
        link = await self.store.live_link(self.scope_key(scope), ttl)
        return f"{self.settings.public_base_url}/live/{link.token}"

    async def speak(self, scope: LiveScope, answer_id: str, sentences: AsyncIterator[str]) -> None:
        if self.live is None:
            variable = re.search(r"\b[A-Z][A-Z_]+\b", self.live_reason or "")
            raise AvatarUnavailable(
                f"The live avatar is off: {self.live_reason}.",
                variable=variable.group(0) if variable else None,
            )
        await self.live.speak(self.scope_key(scope), answer_id, sentences)

    # --- VideoDelivery ------------------------------------------------------------------

    @property
    def video_enabled(self) -> bool:
        return self.video_reason is None

    async def request_video(self, request: VideoRequest, target: dict[str, Any]) -> str:
        if self.video_reason is not None:
            raise AvatarUnavailable(
                f"Avatar videos are off: {self.video_reason}.", variable="HEYGEN_API_KEY"
            )
        return await self.videos.request(request, target)

    # --- webhook ------------------------------------------------------------------------

    async def video_webhook(self, event: WebhookEvent) -> str:
        """A verified delivery: a hint for the job holding the video. Returns what was done
        (for the access log): "hint", "duplicate" or "unknown"."""
        data = event.event_data
        if not data.video_id:
            return "unknown"
        if not await self.store.claim_once(
            "heygen-webhook", f"{data.video_id}:{event.event_type}", WEBHOOK_DEDUPE_SECONDS
        ):
            return "duplicate"
        job = await self.store.get_video_job(data.callback_id) if data.callback_id else None
        if job is None:
            job = await self.store.find_video_job(data.video_id)
        if job is None:
            return "unknown"
        self.videos.hint(job.id)
        await self.store.notify(BUS_VIDEO, {"job_id": job.id, "origin": self.owner})
        return "hint"

    async def _video_hints(self) -> None:
        """Hints that arrived at another replica, for the jobs this one is working on."""
        while True:
            try:
                async for message in self.store.listen(BUS_VIDEO):
                    if message.get("origin") != self.owner and message.get("job_id"):
                        self.videos.hint(message["job_id"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("video hint listener restarting: %s", exc)
                await asyncio.sleep(1.0)
