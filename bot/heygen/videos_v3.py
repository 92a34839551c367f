"""HeyGen v3 (current): avatar video render and the avatar/look/voice catalog.

Render: `POST /v3/videos` (type "avatar") then `GET /v3/videos/{video_id}` until the status is
completed or failed. https://developers.heygen.com/reference/create-video,
https://developers.heygen.com/reference/get-video
Catalog: `GET /v3/avatars` (groups = characters), `GET /v3/avatars/looks` (a look's `id` is the
`avatar_id` a video takes), `GET /v3/voices`; all cursor-paginated with `has_more` and
`next_token`. https://developers.heygen.com/docs/avatars, /docs/avatar-looks,
/docs/voices/search-voices

Creates carry an `Idempotency-Key` (https://developers.heygen.com/reference/create-video:
"Subsequent calls within 24 hours that share this key replay the original response"), so the
core may safely retry a create on 5xx/timeout: the server replays rather than renders twice.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from bot.heygen.envelopes import ApiModel, data_v3, parse
from bot.heygen.http import ApiClient, path_segment
from bot.heygen.video_status import VideoStatus

# --- closed vocabularies --------------------------------------------------------------------


class AspectRatio(StrEnum):
    LANDSCAPE = "16:9"
    PORTRAIT = "9:16"
    PORTRAIT_4_5 = "4:5"
    LANDSCAPE_5_4 = "5:4"
    SQUARE = "1:1"
    AUTO = "auto"  # keep the avatar source's aspect ratio


class Resolution(StrEnum):
    R720P = "720p"
    R1080P = "1080p"
    R4K = "4k"


class BackgroundType(StrEnum):
    COLOR = "color"
    IMAGE = "image"


class Ownership(StrEnum):
    PUBLIC = "public"  # HeyGen presets
    PRIVATE = "private"  # your own


# --- request / response models --------------------------------------------------------------


class Background(ApiModel):
    """Solid colour (`value` like "#FFFFFF") or an image (`url` or uploaded `asset_id`)."""

    type: BackgroundType = BackgroundType.COLOR
    value: str | None = None
    url: str | None = None
    asset_id: str | None = None


class CaptionSetting(ApiModel):
    """`caption` of POST /v3/videos (https://developers.heygen.com/reference/create-video): a
    sidecar subtitle file is always produced (`subtitle_url`); a `style` also burns the
    captions into a second render, `captioned_video_url` (the plain `video_url` stays
    caption-free)."""

    file_format: Literal["srt"] = "srt"
    style: str | None = None


class VoiceSettings(ApiModel):
    speed: float | None = Field(default=None, ge=0.5, le=1.5)
    pitch: float | None = Field(default=None, ge=-50, le=50)
    locale: str | None = None  # BCP-47, e.g. "en-US"


class CreateVideoRequest(ApiModel):
    """Body of POST /v3/videos for an avatar video spoken from a text script."""

    type: Literal["avatar"] = "avatar"
    avatar_id: str = Field(min_length=1, description="A look id from GET /v3/avatars/looks.")
    script: str = Field(min_length=1, max_length=5000)
    voice_id: str | None = Field(
        default=None, description="TTS voice; omitted means the avatar's default voice."
    )
    title: str | None = None
    resolution: Resolution | None = None
    aspect_ratio: AspectRatio | None = None
    background: Background | None = None
    caption: CaptionSetting | None = None
    voice_settings: VoiceSettings | None = None
    callback_url: str | None = Field(
        default=None, description="HeyGen POSTs here when the video is ready or failed."
    )
    callback_id: str | None = Field(
        default=None, description="Our identifier, echoed back in the webhook payload."
    )


class CreateVideoResponse(ApiModel):
    video_id: str
    status: str | None = None
    output_format: str | None = None


class VideoDetail(ApiModel):
    """GET /v3/videos/{id} (https://developers.heygen.com/reference/get-video). Media URLs
    (`video_url`, `captioned_video_url`, `thumbnail_url`…) are presigned and expire: fetch the
    video again for fresh ones. `video_page_url` is the video's page in the HeyGen app, the
    link to show people; `duration` is in seconds."""

    id: str
    status: VideoStatus
    title: str | None = None
    created_at: int | None = None
    completed_at: int | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    gif_url: str | None = None
    captioned_video_url: str | None = None
    subtitle_url: str | None = None
    duration: float | None = None  # seconds
    failure_code: str | None = None
    failure_message: str | None = None
    video_page_url: str | None = None


class AvatarGroup(ApiModel):
    """A character (e.g. "Monica"); render with one of its looks, not the group id."""

    id: str
    name: str
    gender: str | None = None
    preview_image_url: str | None = None
    preview_video_url: str | None = None
    looks_count: int | None = None
    default_voice_id: str | None = None


class AvatarLook(ApiModel):
    """An outfit/style of a character; `id` is what POST /v3/videos takes as `avatar_id`."""

    id: str
    name: str
    avatar_type: str | None = None  # studio_avatar | digital_twin/video_avatar | photo_avatar
    group_id: str | None = None
    gender: str | None = None
    preview_image_url: str | None = None
    preview_video_url: str | None = None
    default_voice_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    supported_api_engines: list[str] = Field(default_factory=list)


class Voice(ApiModel):
    voice_id: str
    name: str
    language: str | None = None
    gender: str | None = None
    type: str | None = None  # public | private
    preview_audio_url: str | None = None
    support_pause: bool | None = None
    support_locale: bool | None = None


T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)


class Page(ApiModel, Generic[T]):
    """One page of a cursor-paginated list; pass `next_token` back as `token`."""

    data: list[T]
    has_more: bool = False
    next_token: str | None = None


# --- client ---------------------------------------------------------------------------------


class VideosV3:
    """Typed calls to HeyGen's v3 video and catalog endpoints."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def create_video(
        self, request: CreateVideoRequest, *, idempotency_key: str | None = None
    ) -> CreateVideoResponse:
        """Submit a render. One key per logical job: pass the job's own id to make a resubmit
        after a crash return the same video instead of rendering (and billing) twice."""
        key = idempotency_key or uuid.uuid4().hex
        payload = await self.api.request(
            "POST",
            "/v3/videos",
            json=request.model_dump(mode="json", exclude_none=True),
            headers={"Idempotency-Key": key},
            idempotent=True,
        )
        return parse(CreateVideoResponse, data_v3(payload, "create video"), "create video")

    async def get_video(self, video_id: str) -> VideoDetail:
        payload = await self.api.request(
            "GET", f"/v3/videos/{path_segment(video_id)}", idempotent=True
        )
        return parse(VideoDetail, data_v3(payload, "get video"), "get video")

    async def list_avatars(
        self, *, ownership: Ownership | None = None, limit: int = 50, token: str | None = None
    ) -> Page[AvatarGroup]:
        return await self._page(
            "/v3/avatars",
            Page[AvatarGroup],
            {"ownership": ownership, "limit": limit, "token": token},
        )

    async def list_looks(
        self,
        *,
        group_id: str | None = None,
        avatar_type: str | None = None,
        ownership: Ownership | None = None,
        limit: int = 50,
        token: str | None = None,
    ) -> Page[AvatarLook]:
        return await self._page(
            "/v3/avatars/looks",
            Page[AvatarLook],
            {
                "group_id": group_id,
                "avatar_type": avatar_type,
                "ownership": ownership,
                "limit": limit,
                "token": token,
            },
        )

    async def list_voices(
        self,
        *,
        language: str | None = None,
        gender: str | None = None,
        type: str | None = None,
        limit: int = 100,
        token: str | None = None,
    ) -> Page[Voice]:
        return await self._page(
            "/v3/voices",
            Page[Voice],
            {"language": language, "gender": gender, "type": type, "limit": limit, "token": token},
        )

    async def _page(self, path: str, model: type[P], params: dict[str, Any]) -> P:
        payload = await self.api.request("GET", path, params=params, idempotent=True)
        if not isinstance(payload, dict):
            payload = {}
        return parse(model, payload, f"GET {path}")
