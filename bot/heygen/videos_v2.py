"""HeyGen v2 (legacy, the seed documents): video generate, v1 status, templates, catalog.

- `POST /v2/video/generate` with `video_inputs` (character / voice / background per scene),
  `dimension`, `caption`, `title`, `callback_id`, `test`; answers `{error, data: {video_id}}`.
  https://docs.heygen.com/reference/create-an-avatar-video-v2
- `GET /v1/video_status.get?video_id=` answers the v1 envelope `{code: 100, data, message}`;
  statuses pending, waiting, processing, completed, failed (with an `error` object).
  https://docs.heygen.com/reference/video-status
- `GET /v2/templates`, `GET /v2/template/{id}`, `POST /v2/template/{id}/generate` (variables).
  https://docs.heygen.com/docs/generate-video-from-template-v2-1
- `GET /v2/avatars`, `GET /v2/voices`. https://docs.heygen.com/reference/list-avatars-v2

v2 creates have no idempotency key, so they are sent with `idempotent=False`: a 5xx or timeout
is raised, never resent (it may have started a render).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from bot.heygen.envelopes import ApiModel, data_v1, data_v3, parse
from bot.heygen.http import ApiClient, path_segment
from bot.heygen.video_status import VideoStatus

# --- closed vocabularies --------------------------------------------------------------------


class AvatarStyle(StrEnum):
    NORMAL = "normal"
    CIRCLE = "circle"
    CLOSEUP = "closeUp"


# --- models ---------------------------------------------------------------------------------


class Character(ApiModel):
    type: Literal["avatar"] = "avatar"
    avatar_id: str = Field(min_length=1)
    avatar_style: AvatarStyle = AvatarStyle.NORMAL


class TextVoice(ApiModel):
    """The avatar speaks `input_text` with TTS voice `voice_id`."""

    type: Literal["text"] = "text"
    voice_id: str = Field(min_length=1)
    input_text: str = Field(min_length=1, max_length=5000)
    speed: float | None = Field(default=None, ge=0.5, le=1.5)


class ColorBackground(ApiModel):
    type: Literal["color"] = "color"
    value: str = "#FFFFFF"


class VideoInput(ApiModel):
    """One scene."""

    character: Character
    voice: TextVoice
    background: ColorBackground | None = None


class Dimension(ApiModel):
    width: int = Field(default=1280, gt=0)
    height: int = Field(default=720, gt=0)


class CaptionMode(StrEnum):
    """`caption_mode` of POST /v2/video/generate: "file_only or burn_in. When set, takes
    precedence over caption." https://developers.heygen.com/studio-api"""

    FILE_ONLY = "file_only"
    BURN_IN = "burn_in"


class GenerateVideoRequest(ApiModel):
    video_inputs: list[VideoInput] = Field(min_length=1, max_length=50)
    dimension: Dimension | None = None
    caption: bool = False
    caption_mode: CaptionMode | None = None
    title: str | None = None
    callback_id: str | None = Field(
        default=None, description="Echoed back in the webhook and in video_status.get."
    )
    callback_url: str | None = None
    test: bool | None = Field(default=None, description="Watermarked, no credits (if allowed).")


class VideoIdResponse(ApiModel):
    video_id: str


class VideoError(ApiModel):
    """`error` of a failed v1 status, e.g. {code: 40119, message, detail}."""

    code: int | str | None = None
    message: str | None = None
    detail: str | None = None


class VideoStatusV1(ApiModel):
    id: str
    # "waiting" (queued behind a dependency) reads as pending: one status vocabulary.
    status: Annotated[VideoStatus, BeforeValidator(VideoStatus.from_wire)]
    video_url: str | None = None
    video_url_caption: str | None = None
    thumbnail_url: str | None = None
    gif_url: str | None = None
    caption_url: str | None = None
    duration: float | None = None
    callback_id: str | None = None
    created_at: int | None = None
    error: VideoError | None = None


class AvatarV2(ApiModel):
    avatar_id: str
    avatar_name: str
    gender: str | None = None
    preview_image_url: str | None = None
    preview_video_url: str | None = None
    premium: bool | None = None
    default_voice_id: str | None = None


class VoiceV2(ApiModel):
    voice_id: str
    name: str
    language: str | None = None
    gender: str | None = None
    preview_audio: str | None = None
    support_pause: bool | None = None
    emotion_support: bool | None = None


class TemplateSummary(ApiModel):
    template_id: str
    name: str
    thumbnail_image_url: str | None = None
    aspect_ratio: str | None = None


class TemplateVariable(ApiModel):
    """A `{{placeholder}}` in a template; text variables take `properties.content`."""

    name: str
    type: str  # text | image | video | audio | voice | avatar | character
    properties: dict[str, Any] = Field(default_factory=dict)


class TemplateDetail(ApiModel):
    variables: dict[str, TemplateVariable] = Field(default_factory=dict)
    scenes: list[dict[str, Any]] | None = None


class TemplateGenerateRequest(ApiModel):
    variables: dict[str, TemplateVariable]
    title: str | None = None
    caption: bool = False
    caption_mode: CaptionMode | None = None
    dimension: Dimension | None = None
    callback_id: str | None = None
    callback_url: str | None = None
    test: bool | None = None

    @classmethod
    def with_text(cls, texts: dict[str, str], **kwargs: Any) -> TemplateGenerateRequest:
        """Replace text placeholders by name: {"name": "Ada"}."""
        variables = {
            name: TemplateVariable(name=name, type="text", properties={"content": text})
            for name, text in texts.items()
        }
        return cls(variables=variables, **kwargs)


# --- client ---------------------------------------------------------------------------------


class VideosV2:
    """Typed calls to HeyGen's legacy v2 video, template and catalog endpoints."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def generate_video(self, request: GenerateVideoRequest) -> VideoIdResponse:
        payload = await self.api.request(
            "POST",
            "/v2/video/generate",
            json=request.model_dump(mode="json", exclude_none=True),
            idempotent=False,
        )
        return parse(VideoIdResponse, data_v3(payload, "generate video"), "generate video")

    async def video_status(self, video_id: str) -> VideoStatusV1:
        payload = await self.api.request(
            "GET", "/v1/video_status.get", params={"video_id": video_id}, idempotent=True
        )
        return parse(VideoStatusV1, data_v1(payload, "video status"), "video status")

    async def list_avatars(self) -> list[AvatarV2]:
        data = await self._get("/v2/avatars")
        return [parse(AvatarV2, a, "list avatars") for a in (data or {}).get("avatars", [])]

    async def list_voices(self) -> list[VoiceV2]:
        data = await self._get("/v2/voices")
        return [parse(VoiceV2, v, "list voices") for v in (data or {}).get("voices", [])]

    async def list_templates(self) -> list[TemplateSummary]:
        data = await self._get("/v2/templates")
        return [
            parse(TemplateSummary, t, "list templates") for t in (data or {}).get("templates", [])
        ]

    async def get_template(self, template_id: str) -> TemplateDetail:
        data = await self._get(f"/v2/template/{path_segment(template_id)}")
        return parse(TemplateDetail, data, "get template")

    async def generate_from_template(
        self, template_id: str, request: TemplateGenerateRequest
    ) -> VideoIdResponse:
        payload = await self.api.request(
            "POST",
            f"/v2/template/{path_segment(template_id)}/generate",
            json=request.model_dump(mode="json", exclude_none=True),
            idempotent=False,
        )
        return parse(VideoIdResponse, data_v3(payload, "template generate"), "template generate")

    async def _get(self, path: str) -> Any:
        return data_v3(await self.api.request("GET", path, idempotent=True), f"GET {path}")


__all__ = [
    "AvatarStyle",
    "AvatarV2",
    "CaptionMode",
    "Character",
    "ColorBackground",
    "Dimension",
    "GenerateVideoRequest",
    "TemplateDetail",
    "TemplateGenerateRequest",
    "TemplateSummary",
    "TemplateVariable",
    "TextVoice",
    "VideoError",
    "VideoIdResponse",
    "VideoInput",
    "VideoStatusV1",
    "VideosV2",
    "VoiceV2",
]
