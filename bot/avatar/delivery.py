"""How avatar delivery talks to a chat surface, and what the surface can ask of it.

`bot.avatar` never imports `bot.slack`: video progress and results go out through a
`DeliverySink` that the chat surface implements (Slack today; a second platform would be one
more sink). The surface calls the `AvatarDelivery` service for live links, speech and videos.

    delivery = AvatarDelivery(settings, store, clients, sink)   # bot/avatar/service.py
    await delivery.start()                                      # workers: jobs, keep-alive
    link = await delivery.live_link(scope)                      # None when live is off
    await delivery.speak(scope, answer_id, spoken_sentences)    # queued until a viewer watches
    job = await delivery.request_video(VideoRequest(...), target)
    await delivery.stop()                                       # persist work, close sessions

`target` is an opaque dict the surface owns (e.g. channel, thread_ts, user, the progress
message ts); it is persisted with the job so a restarted replica can still deliver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from bot.avatar.errors import AvatarError, AvatarLimitReached, AvatarUnavailable
from bot.store.base import VideoJobState

__all__ = [
    "AvatarError",
    "AvatarLimitReached",
    "AvatarUnavailable",
    "DeliverySink",
    "LiveAnswers",
    "LiveScope",
    "RenderedVideo",
    "SaveTarget",
    "VideoDelivery",
    "VideoJobState",
    "VideoProgress",
    "VideoRequest",
]


class LiveScope(BaseModel):
    """Who a live answer is for; the reuse setting turns it into a session key."""

    team: str | None = None
    channel: str
    thread_ts: str | None = None
    user: str | None = None
    answer_id: str | None = None  # used when reuse is off (fresh session per answer)


class VideoRequest(BaseModel):
    question: str
    script: str = Field(min_length=1)  # spoken text (no markup, citations or URLs)
    answer_id: str | None = None
    requested_by: str | None = None
    team: str | None = None
    # same (thread, question) while a job is unfinished -> the same job
    dedupe_key: str


class VideoProgress(BaseModel):
    job_id: str
    state: VideoJobState  # the job's state (one vocabulary: bot.store.base.VideoJobState)
    message: str = ""  # plain words ("1 min 20 s so far", HeyGen's failure reason)


class RenderedVideo(BaseModel):
    job_id: str
    path: Path  # the downloaded MP4 (size-capped); the sink uploads it, then it is removed
    filename: str = "answer.mp4"
    title: str = ""
    # The video's page in the HeyGen app (`video_page_url`): the link to show people; the
    # download URL is presigned and expires (https://developers.heygen.com/reference/get-video).
    page_url: str | None = None
    thumbnail_url: str | None = None
    duration_seconds: float | None = None


SaveTarget = Callable[[dict[str, Any]], Awaitable[None]]  # persists the job's target now


class DeliverySink(Protocol):
    """Implemented by the chat surface. Each call may be retried after a crash, so make it
    idempotent where it can be (e.g. update the same progress message)."""

    async def video_progress(
        self, target: dict[str, Any], progress: VideoProgress
    ) -> dict[str, Any] | None:
        """Show progress. Return an updated target to persist (e.g. with the progress
        message's ts), or None to keep it."""

    async def video_ready(
        self, target: dict[str, Any], video: RenderedVideo, save: SaveTarget
    ) -> None:
        """Post the video exactly once, across crashes: persist the intent with `save(target)`
        before the call that shows it, and on a retry (the same target comes back) look for
        that earlier effect before repeating it."""

    async def video_failed(self, target: dict[str, Any], progress: VideoProgress) -> None: ...


class LiveAnswers(Protocol):
    """The live half of `AvatarDelivery`, as the chat surface sees it."""

    @property
    def live_enabled(self) -> bool: ...

    async def live_link(self, scope: LiveScope) -> str | None:
        """Absolute viewer URL for the scope (creating the link, not the session), or None
        when live delivery is off (no backend key or no PUBLIC_BASE_URL)."""

    async def speak(self, scope: LiveScope, answer_id: str, sentences: AsyncIterator[str]) -> None:
        """Queue an answer's spoken sentences as they complete; a new answer in the scope
        interrupts the previous one. Raises AvatarLimitReached / AvatarUnavailable."""


class VideoDelivery(Protocol):
    """The video half of `AvatarDelivery`."""

    @property
    def video_enabled(self) -> bool: ...

    async def request_video(self, request: VideoRequest, target: dict[str, Any]) -> str:
        """Persist (or reuse) a job and return its id at once; rendering, progress and
        delivery happen in the background through the sink. Raises AvatarLimitReached /
        AvatarUnavailable before anything is submitted."""
