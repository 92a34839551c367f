"""One render/catalog interface above HeyGen v3 and v2, chosen by HEYGEN_VIDEO_API.

Code above `bot.heygen` (video jobs, CLI, Slack) uses `VideoRenderer` and `Catalog` only and
never learns which API version renders: statuses are normalised (`VideoStatus`), v2's
"waiting" counts as pending, and failure details land in `Render.error_*`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

from bot.config import VideoApi
from bot.heygen.errors import HeyGenTimeout
from bot.heygen.video_status import VideoStatus
from bot.heygen.videos_v2 import (
    CaptionMode,
    Character,
    ColorBackground,
    Dimension,
    GenerateVideoRequest,
    TemplateGenerateRequest,
    TextVoice,
    VideoInput,
    VideosV2,
)
from bot.heygen.videos_v3 import (
    AspectRatio,
    Background,
    CaptionSetting,
    CreateVideoRequest,
    Resolution,
    VideosV3,
)


class Orientation(StrEnum):
    LANDSCAPE = "landscape"
    PORTRAIT = "portrait"


class RenderRequest(BaseModel):
    """What to render, in our terms."""

    script: str = Field(min_length=1, max_length=5000)
    avatar_id: str = Field(min_length=1)
    voice_id: str | None = None
    title: str | None = None
    orientation: Orientation = Orientation.LANDSCAPE
    captions: bool = False
    # Burn captions into the picture in this HeyGen caption style (v3 `caption.style`; v2
    # `caption_mode=burn_in`); None with captions on = a subtitle file only.
    caption_style: str | None = None
    background_color: str | None = None  # e.g. "#FFFFFF"
    # v3 only; when set they win over `orientation` (v2 maps orientation to a dimension).
    aspect_ratio: str | None = None  # "16:9" | "9:16" | "1:1" | "4:5" | "5:4"
    resolution: str | None = None  # "720p" | "1080p" | "4k"
    callback_url: str | None = None
    # Our job id: echoed in the webhook, and used as v3's Idempotency-Key so resubmitting the
    # same job after a crash returns the same video rather than rendering twice.
    job_id: str | None = None


class Render(BaseModel):
    """A HeyGen render's state, the same whichever API version produced it (our job is
    `bot.avatar.video.job.VideoJob`)."""

    video_id: str
    status: VideoStatus
    video_url: str | None = None  # presigned: expires (ask `status` again for a fresh one)
    captioned_video_url: str | None = None  # captions burnt in, when asked for
    page_url: str | None = None  # the video's page in the HeyGen app (stays valid)
    thumbnail_url: str | None = None
    duration: float | None = None
    error_code: str | None = None
    error_message: str | None = None


class VideoRenderer(Protocol):
    api: VideoApi

    async def submit(self, request: RenderRequest) -> str:
        """Start a render; return HeyGen's video id."""
        ...

    async def status(self, video_id: str) -> Render: ...


class V3Renderer:
    api = VideoApi.V3

    def __init__(self, client: VideosV3) -> None:
        self.client = client

    async def submit(self, request: RenderRequest) -> str:
        body = CreateVideoRequest(
            avatar_id=request.avatar_id,
            script=request.script,
            voice_id=request.voice_id,
            title=request.title,
            aspect_ratio=(
                AspectRatio(request.aspect_ratio)
                if request.aspect_ratio
                else AspectRatio.PORTRAIT
                if request.orientation == Orientation.PORTRAIT
                else AspectRatio.LANDSCAPE
            ),
            resolution=Resolution(request.resolution) if request.resolution else None,
            caption=(CaptionSetting(style=request.caption_style) if request.captions else None),
            background=(
                Background(value=request.background_color) if request.background_color else None
            ),
            callback_url=request.callback_url,
            callback_id=request.job_id,
        )
        created = await self.client.create_video(body, idempotency_key=request.job_id)
        return created.video_id

    async def status(self, video_id: str) -> Render:
        d = await self.client.get_video(video_id)
        return Render(
            video_id=d.id,
            status=d.status,
            video_url=d.video_url,
            captioned_video_url=d.captioned_video_url,
            page_url=d.video_page_url,
            thumbnail_url=d.thumbnail_url,
            duration=d.duration,
            error_code=d.failure_code,
            error_message=d.failure_message,
        )


class V2Renderer:
    api = VideoApi.V2

    def __init__(self, client: VideosV2) -> None:
        self.client = client

    async def submit(self, request: RenderRequest) -> str:
        if not request.voice_id:
            # v2 has no "avatar's default voice" fallback; say so before spending a request.
            raise ValueError("the v2 API needs a voice id (set HEYGEN_VOICE_ID or --voice)")
        size = (
            Dimension(width=720, height=1280)
            if request.orientation == Orientation.PORTRAIT
            else Dimension(width=1280, height=720)
        )
        body = GenerateVideoRequest(
            video_inputs=[
                VideoInput(
                    character=Character(avatar_id=request.avatar_id),
                    voice=TextVoice(voice_id=request.voice_id, input_text=request.script),
                    background=(
                        ColorBackground(value=request.background_color)
                        if request.background_color
                        else None
                    ),
                )
            ],
            dimension=size,
            caption=request.captions,
            caption_mode=_caption_mode(request),
            title=request.title,
            callback_id=request.job_id,
            callback_url=request.callback_url,
        )
        return (await self.client.generate_video(body)).video_id

    async def status(self, video_id: str) -> Render:
        s = await self.client.video_status(video_id)
        err = s.error
        return Render(
            video_id=s.id,
            status=s.status,
            video_url=s.video_url,
            captioned_video_url=s.video_url_caption or None,
            thumbnail_url=s.thumbnail_url,
            duration=s.duration,
            error_code=str(err.code) if err and err.code is not None else None,
            error_message=(err.message or err.detail) if err else None,
        )


class TemplateRenderer(V2Renderer):
    """A v2 template (HEYGEN_VIDEO_API=v2 with VIDEO_TEMPLATE_ID): the script fills one text
    variable; avatar and voice come from the template itself.
    https://docs.heygen.com/docs/generate-video-from-template-v2-1"""

    def __init__(self, client: VideosV2, template_id: str, variable: str = "script") -> None:
        super().__init__(client)
        self.template_id = template_id
        self.variable = variable

    async def submit(self, request: RenderRequest) -> str:
        body = TemplateGenerateRequest.with_text(
            {self.variable: request.script},
            title=request.title,
            caption=request.captions,
            caption_mode=_caption_mode(request),
            callback_id=request.job_id,
            callback_url=request.callback_url,
        )
        return (await self.client.generate_from_template(self.template_id, body)).video_id


def _caption_mode(request: RenderRequest) -> CaptionMode | None:
    if not request.captions:
        return None
    return CaptionMode.BURN_IN if request.caption_style else CaptionMode.FILE_ONLY


async def wait_until_done(
    renderer: VideoRenderer,
    video_id: str,
    *,
    poll_interval: float = 5.0,
    max_wait: float = 30 * 60,
    on_update: Callable[[Render], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Render:
    """Poll `status` until the render completes or fails (polling is the webhook fallback)."""
    deadline = clock() + max_wait
    while True:
        job = await renderer.status(video_id)
        if on_update is not None:
            on_update(job)
        if job.status.done:
            return job
        if clock() >= deadline:
            raise HeyGenTimeout(f"video {video_id} still {job.status} after {max_wait:g}s")
        await sleep(poll_interval)


# --- catalog --------------------------------------------------------------------------------


class AvatarInfo(BaseModel):
    avatar_id: str  # what a render takes
    name: str
    gender: str | None = None
    default_voice_id: str | None = None
    preview_image_url: str | None = None


class VoiceInfo(BaseModel):
    voice_id: str
    name: str
    language: str | None = None
    gender: str | None = None


class TemplateInfo(BaseModel):
    template_id: str
    name: str


class Catalog(Protocol):
    async def avatars(self) -> list[AvatarInfo]: ...
    async def voices(self) -> list[VoiceInfo]: ...
    async def templates(self) -> list[TemplateInfo]: ...


MAX_PAGES = 20  # a catalog listing is for humans; stop paging after a few thousand entries


class V3Catalog:
    """Avatars are v3 *looks* (their ids are render avatar ids). v3 has no templates, so
    templates come from the legacy v2 endpoint (https://developers.heygen.com/template-api)."""

    def __init__(self, v3: VideosV3, v2: VideosV2) -> None:
        self.v3, self.v2 = v3, v2

    async def avatars(self) -> list[AvatarInfo]:
        out: list[AvatarInfo] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.v3.list_looks(token=token)
            out += [
                AvatarInfo(
                    avatar_id=lk.id,
                    name=lk.name,
                    gender=lk.gender,
                    default_voice_id=lk.default_voice_id,
                    preview_image_url=lk.preview_image_url,
                )
                for lk in page.data
            ]
            if not (page.has_more and page.next_token):
                break
            token = page.next_token
        return out

    async def voices(self) -> list[VoiceInfo]:
        out: list[VoiceInfo] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.v3.list_voices(token=token)
            out += [
                VoiceInfo(voice_id=v.voice_id, name=v.name, language=v.language, gender=v.gender)
                for v in page.data
            ]
            if not (page.has_more and page.next_token):
                break
            token = page.next_token
        return out

    async def templates(self) -> list[TemplateInfo]:
        return [
            TemplateInfo(template_id=t.template_id, name=t.name)
            for t in await self.v2.list_templates()
        ]


class V2Catalog:
    def __init__(self, v2: VideosV2) -> None:
        self.v2 = v2

    async def avatars(self) -> list[AvatarInfo]:
        return [
            AvatarInfo(
                avatar_id=a.avatar_id,
                name=a.avatar_name,
                gender=a.gender,
                default_voice_id=a.default_voice_id,
                preview_image_url=a.preview_image_url,
            )
            for a in await self.v2.list_avatars()
        ]

    async def voices(self) -> list[VoiceInfo]:
        return [
            VoiceInfo(voice_id=v.voice_id, name=v.name, language=v.language, gender=v.gender)
            for v in await self.v2.list_voices()
        ]

    async def templates(self) -> list[TemplateInfo]:
        return [
            TemplateInfo(template_id=t.template_id, name=t.name)
            for t in await self.v2.list_templates()
        ]
