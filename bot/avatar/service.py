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
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from bot.avatar.budgets import Budgets
from bot.avatar.delivery import DeliverySink, LiveScope, VideoRequest
from bot.avatar.errors import FeatureOff, vendor_failure
from bot.avatar.live.events import EventBus
from bot.avatar.live.sessions import ScopeSessions, scope_key
from bot.avatar.live.viewer import ViewerApi
from bot.avatar.video.worker import VideoWorker
from bot.config import LiveApi, Settings, VideoApi, is_set
from bot.heygen.clients import HeyGenClients
from bot.heygen.errors import HeyGenError
from bot.heygen.live import AgentControlChannel, LiveKitAgentControl, build_room_api
from bot.heygen.webhooks import WebhookEvent
from bot.store.base import Store

log = logging.getLogger(__name__)

TICK_SECONDS = 10.0
WEBHOOK_DEDUPE_SECONDS = 7 * 24 * 3600.0
BUS_VIDEO = "avatar-video"
LIVE = "the live avatar"
VIDEOS = "avatar videos"


def video_off(settings: Settings) -> FeatureOff | None:
    """Why avatar videos are off (the first missing setting), or None when they are on."""
    s = settings
    if not is_set(s.heygen_api_key):
        return FeatureOff(VIDEOS, "HEYGEN_API_KEY", "your HeyGen API key")
    if s.heygen_video_api is VideoApi.V2 and s.video_template_id:
        return None  # a v2 template brings its own avatar and voice
    if not s.heygen_avatar_id:
        return FeatureOff(
            VIDEOS,
            "HEYGEN_AVATAR_ID",
            "an avatar from `avatarbot heygen avatars`, or VIDEO_TEMPLATE_ID with "
            "HEYGEN_VIDEO_API=v2",
        )
    if s.heygen_video_api is VideoApi.V2 and not s.heygen_voice_id:
        return FeatureOff(VIDEOS, "HEYGEN_VOICE_ID", "the v2 API has no default voice")
    return None


def live_off(settings: Settings) -> FeatureOff | None:
    """Why the live avatar is off (the first missing setting), or None when it is on."""
    s = settings
    liveavatar = s.heygen_live_api is LiveApi.LIVEAVATAR
    key = "LIVEAVATAR_API_KEY" if liveavatar else "HEYGEN_API_KEY"
    if not is_set(s.liveavatar_api_key if liveavatar else s.heygen_api_key):
        return FeatureOff(LIVE, key)
    # Live APIs have their own avatars (LiveAvatar: UUIDs from its catalogue; streaming v1:
    # HeyGen's interactive avatars): a HEYGEN_AVATAR_ID (a video avatar) is never used live.
    if not s.live_avatar_id:
        return FeatureOff(LIVE, "LIVE_AVATAR_ID", "an avatar from your LiveAvatar account")
    if not s.public_base_url:
        return FeatureOff(LIVE, "PUBLIC_BASE_URL", "this server's public address")
    return None


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
        self.live_off = live_off(settings)
        self.video_off = video_off(settings)
        self.live: ScopeSessions | None = None
        if self.live_off is None:
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
        self.videos = VideoWorker(
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

    @property
    def live_reason(self) -> str | None:
        """What turns the live avatar on, as one clause (None when it is on)."""
        return self.live_off.hint if self.live_off else None

    @property
    def video_reason(self) -> str | None:
        """What turns avatar videos on, as one clause (None when they are on)."""
        return self.video_off.hint if self.video_off else None

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self.live_reason:
            log.info("live avatar off: %s", self.live_reason)
        if self.video_reason:
            log.info("avatar videos off: %s", self.video_reason)
        if self.live is not None and (reason := await self.live.check_avatar()):
            log.warning("live avatar off: %s", reason)
            # the catalogue lacks the id: live is off, the reason names the variable and the id
            self.live_off = FeatureOff(LIVE, "LIVE_AVATAR_ID", reason.rstrip("."))
            self.live, self.viewer.sessions = None, None
        self.bus.start()
        if self.live is not None:
            self._tasks.append(asyncio.create_task(self._upkeep(), name="live-upkeep"))
        if self.video_off is None:
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
            raise (self.live_off or FeatureOff(LIVE, "LIVE_AVATAR_ID")).error()
        try:
            await self.live.speak(self.scope_key(scope), answer_id, sentences)
        except (HeyGenError, aiohttp.ClientError, TimeoutError) as exc:
            # One error contract: nothing from the vendor leaves the façade unconverted.
            raise vendor_failure(exc, "speaking the answer live") from exc

    # --- VideoDelivery ------------------------------------------------------------------

    @property
    def video_enabled(self) -> bool:
        return self.video_off is None

    async def request_video(self, request: VideoRequest, target: dict[str, Any]) -> str:
        if self.video_off is not None:
            raise self.video_off.error()
        return await self.videos.request(request, target)

    # --- webhook ------------------------------------------------------------------------

    async def video_webhook(self, event: WebhookEvent) -> str:
        """A delivery (signed webhook or unsigned per-video callback): only a hint for the job
        holding the video, which confirms it with GET. Returns what was done
        (for the access log): "hint", "duplicate" or "unknown"."""
        data = event.event_data
        if not data.video_id:
            return "unknown"
        job = await self.store.get_video_job(data.callback_id) if data.callback_id else None
        if job is None:
            job = await self.store.find_video_job(data.video_id)
        # An unsigned delivery names both ids; they must agree with what we stored, so a
        # stranger who knows one id cannot wake (or, below, de-duplicate away) another job.
        if job is None or (job.heygen_video_id and job.heygen_video_id != data.video_id):
            return "unknown"
        if not await self.store.claim_once(
            "heygen-webhook", f"{data.video_id}:{event.event_type}", WEBHOOK_DEDUPE_SECONDS
        ):
            return "duplicate"
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
