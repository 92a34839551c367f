"""Loopback fake of the HeyGen API: v3 videos/catalog/webhooks, v2 legacy video/templates/catalog,
v1 video status, and (mounted from `heygen_streaming.py`) the streaming v1 routes.

It behaves like the documented service where tests can notice:
- auth: `X-Api-Key` must equal the fake's key, else 401 in the family's envelope
  (v3/v2: `{"error": {"code": "unauthorized", ...}}`, v1: `{"code": 400112, ...}`);
- bodies: missing/invalid fields -> 400 (`invalid_parameter` with `param`), unknown avatar or
  voice -> 404 `avatar_not_found` / `voice_not_found` (v3 error shape:
  https://developers.heygen.com/docs/error-codes; the code names are ours where the page
  lists none), unknown video -> 404;
- idempotency: a v3 create repeated with the same `Idempotency-Key` replays the first response;
- state: a video is pending on its first status read, processing until `polls_to_complete`
  reads, then completed (or failed when `fail_renders` is set); `polls_to_complete=None`
  keeps it processing until the test calls `complete()` / `fail()`. Nothing sleeps;
- webhooks: on completion the fake POSTs `avatar_video.success|fail` to every registered v3
  endpoint, signed with that endpoint's secret (`Heygen-Signature` / `Heygen-Timestamp` /
  `Heygen-Event-Id`, https://developers.heygen.com/docs/webhooks), and to the video's own
  `callback_url` UNSIGNED (only registered endpoints are signed); each attempt lands in
  `deliveries` (an asyncio.Queue) so tests can await it. Adding an endpoint first probes its
  URL with `OPTIONS` and a 1-second timeout, and refuses the URL (400) when the probe does not
  answer 2xx (https://docs.heygen.com/reference/add-a-webhook-endpoint); probes land in
  `probes`. `validate_endpoints=False` skips the probe for tests of unreachable URLs;
- files: with `file_base` set (the fake's own base URL, once served), finished videos link to
  `GET /files/video/{id}.mp4?sig=N` on the fake (no API key, like HeyGen's presigned URLs),
  which serves `mp4_bytes`; `expire_links()` makes every link handed out so far answer 403,
  as an expired presigned URL does. A v3 render asked for captions with a `style` also gets a
  `captioned_video_url` (`captioned_mp4_bytes`; v2: `caption_mode=burn_in` ->
  `video_url_caption`); every v3 video has a `video_page_url` on app.heygen.test.
Faults (tests/fakes/faults.py) use these route names: create_video_v3, get_video_v3,
list_avatars_v3, list_looks_v3, list_voices_v3, create_endpoint, list_endpoints,
delete_endpoint, rotate_secret, generate_video_v2, video_status_v1, list_avatars_v2,
list_voices_v2, list_templates_v2, get_template_v2, generate_template_v2, plus the
streaming_* names.
"""

from __future__ import annotations

import asyncio
import json
import secrets as pysecrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.heygen.webhooks import sign
from tests.fakes.faults import Faults, install_faults

try:  # helper E's streaming v1 routes; mounted when present
    from tests.fakes.heygen_streaming import FakeStreaming
except ImportError:  # pragma: no cover - only while that module does not exist
    FakeStreaming = None  # type: ignore[assignment,misc]

API_KEY = "hg-test-key-8d41e7"
CALLBACK_SECRET = "whsec_fake_callback_secret_1234"
LOOKS = {
    "Angela-inblackskirt-20220820": {
        "name": "Angela in Black Dress",
        "gender": "female",
        "group_id": "ag_angela",
        "default_voice_id": "hg-voice-1",
    },
    "Wayne_20240711": {
        "name": "Wayne",
        "gender": "male",
        "group_id": "ag_wayne",
        "default_voice_id": "hg-voice-2",
    },
}
VOICES = {
    "hg-voice-1": {"name": "Sara", "language": "English", "gender": "female"},
    "hg-voice-2": {"name": "James", "language": "English", "gender": "male"},
}
TEMPLATES = {
    "tpl_welcome": {
        "name": "Welcome",
        "variables": {"name": {"name": "name", "type": "text", "properties": {"content": "there"}}},
    },
}
UNAUTHORIZED_V1 = 400112
# https://developers.heygen.com/reference/create-webhook-endpoint (subset)
KNOWN_EVENTS = {
    "avatar_video.success",
    "avatar_video.fail",
    "avatar_video_gif.success",
    "avatar_video_gif.fail",
    "avatar_video_caption.success",
    "avatar_video_caption.fail",
    "video_translate.success",
    "video_translate.fail",
    "personalized_video",
    "live_avatar.success",
    "live_avatar.fail",
    "video_agent.success",
    "video_agent.fail",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(status: int, code: int | str | None, message: str) -> dict[str, Any]:
    """Fault bodies readable in both dialects: v1 `{code, message}` and v2/v3 `{error}`."""
    code = code if code is not None else status
    return {
        "code": code,
        "message": message,
        "error": {"code": code, "message": message},
        "data": None,
    }


def _v3_error(status: int, code: str, message: str, param: str | None = None) -> web.Response:
    err: dict[str, Any] = {
        "code": code,
        "message": message,
        "doc_url": f"https://developers.heygen.com/docs/error-codes#{code}",
    }
    if param:
        err["param"] = param
    return web.json_response({"error": err, "data": None}, status=status)


def _v1_error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "data": None}, status=status)


@dataclass
class FakeVideo:
    video_id: str
    api: str  # "v3" | "v2"
    title: str | None
    callback_url: str | None
    callback_id: str | None
    body: dict[str, Any]
    status: str = "pending"
    reads: int = 0
    failure: tuple[str, str] | None = None  # (code, message)
    duration: float = 4.2


@dataclass
class Delivery:
    url: str
    status: int | None  # the receiver's HTTP status; None when it could not be reached
    headers: dict[str, str]
    body: bytes
    event: dict[str, Any] = field(default_factory=dict)


@dataclass
class Endpoint:
    endpoint_id: str
    url: str
    events: list[str] | None
    secret: str
    created_at: str = "2026-11-21T00:00:00Z"


class FakeHeyGen:
    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        looks: dict[str, dict[str, Any]] | None = None,
        voices: dict[str, dict[str, Any]] | None = None,
        templates: dict[str, dict[str, Any]] | None = None,
        polls_to_complete: int | None = 2,
        fail_renders: bool = False,
        callback_secret: str = CALLBACK_SECRET,
        validate_endpoints: bool = True,
        faults: Faults | None = None,
        streaming: Any = None,
    ) -> None:
        self.api_key = api_key
        self.looks = dict(LOOKS if looks is None else looks)
        self.voices = dict(VOICES if voices is None else voices)
        self.templates = dict(TEMPLATES if templates is None else templates)
        self.polls_to_complete = polls_to_complete
        self.fail_renders = fail_renders
        self.callback_secret = callback_secret  # kept for tests that sign by hand
        self.validate_endpoints = validate_endpoints
        self.probes: list[tuple[str, int | None]] = []  # (url, status) of OPTIONS probes
        self.link_generation = 0  # bumped by expire_links()
        self.faults = faults or Faults()
        self.videos: dict[str, FakeVideo] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self._replays: dict[tuple[str, str], tuple[int, Any]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        if streaming is None and FakeStreaming is not None:
            streaming = FakeStreaming(api_key=api_key, faults=self.faults)
        self.streaming = streaming
        self.file_base: str | None = None  # set to the served base URL to host the MP4s
        self.mp4_bytes = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096
        self.captioned_mp4_bytes = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 4096
        self.downloads: list[str] = []

    # --- what tests drive and read ---------------------------------------------------------

    def complete(self, video_id: str) -> None:
        self._finish(self.videos[video_id], failed=False)

    def fail(
        self,
        video_id: str,
        code: str = "rendering_failed",
        message: str = "Avatar rendering timed out",
    ) -> None:
        video = self.videos[video_id]
        video.failure = (code, message)
        self._finish(video, failed=True)

    def video_url(self, video_id: str, *, captioned: bool = False) -> str:
        base = f"{self.file_base}/files" if self.file_base else "https://files.heygen.test"
        name = f"{video_id}-captioned" if captioned else video_id
        return f"{base}/video/{name}.mp4?sig={self.link_generation}"

    def page_url(self, video_id: str) -> str:
        return f"https://app.heygen.test/videos/{video_id}"

    def expire_links(self) -> None:
        """Every file link handed out so far now answers 403 (presigned URLs expire)."""
        self.link_generation += 1

    def _captioned(self, video: FakeVideo) -> bool:
        caption = video.body.get("caption")
        if video.api == "v3":
            return isinstance(caption, dict) and bool(caption.get("style"))
        return video.body.get("caption_mode") == "burn_in"

    def thumbnail_url(self, video_id: str) -> str:
        base = f"{self.file_base}/files" if self.file_base else "https://files.heygen.test"
        return f"{base}/thumb/{video_id}.jpg"

    # --- app ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[])
        install_faults(app, self.faults, error_body=error_body)
        app.middlewares.append(self._auth_middleware())
        r = app.router
        r.add_post("/v3/videos", self._create_v3, name="create_video_v3")
        r.add_get("/v3/videos/{video_id}", self._get_v3, name="get_video_v3")
        r.add_get("/v3/avatars", self._avatars_v3, name="list_avatars_v3")
        r.add_get("/v3/avatars/looks", self._looks_v3, name="list_looks_v3")
        r.add_get("/v3/voices", self._voices_v3, name="list_voices_v3")
        r.add_post("/v3/webhooks/endpoints", self._create_endpoint, name="create_endpoint")
        r.add_get("/v3/webhooks/endpoints", self._list_endpoints, name="list_endpoints")
        r.add_delete(
            "/v3/webhooks/endpoints/{endpoint_id}", self._delete_endpoint, name="delete_endpoint"
        )
        r.add_post(
            "/v3/webhooks/endpoints/{endpoint_id}/rotate-secret", self._rotate, name="rotate_secret"
        )
        r.add_post("/v2/video/generate", self._generate_v2, name="generate_video_v2")
        r.add_get("/v1/video_status.get", self._status_v1, name="video_status_v1")
        r.add_get("/v2/avatars", self._avatars_v2, name="list_avatars_v2")
        r.add_get("/v2/voices", self._voices_v2, name="list_voices_v2")
        r.add_get("/v2/templates", self._templates_v2, name="list_templates_v2")
        r.add_get("/v2/template/{template_id}", self._template_v2, name="get_template_v2")
        r.add_post(
            "/v2/template/{template_id}/generate",
            self._generate_template,
            name="generate_template_v2",
        )
        r.add_get("/files/video/{name}", self._file, name="download_video")
        if self.streaming is not None:
            self.streaming.add_routes(app)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def _auth_middleware(self) -> Any:
        @web.middleware
        async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(("/v1/streaming", "/files/")):
                return await handler(request)  # the streaming fake checks its own auth
            if request.headers.get("X-Api-Key") != self.api_key:
                if request.path.startswith("/v1/"):
                    return _v1_error(401, UNAUTHORIZED_V1, "Unauthorized")
                return _v3_error(
                    401, "unauthorized", "The API key provided is invalid, expired, or missing."
                )
            return await handler(request)

        return auth

    # --- v3 videos -----------------------------------------------------------------------

    async def _create_v3(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if key and ("create_video_v3", key) in self._replays:
            status, body = self._replays[("create_video_v3", key)]
            return web.json_response(body, status=status)
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        problem = self._v3_video_problem(body)
        if problem is not None:
            return problem
        video = self._new_video(
            "v3", body, body.get("title"), body.get("callback_url"), body.get("callback_id")
        )
        out = {
            "data": {
                "video_id": video.video_id,
                "status": "pending",
                "output_format": body.get("output_format", "mp4"),
            }
        }
        if key:
            self._replays[("create_video_v3", key)] = (200, out)
        return web.json_response(out)

    def _v3_video_problem(self, body: dict[str, Any]) -> web.Response | None:
        if body.get("type") != "avatar":
            return _v3_error(400, "invalid_parameter", "type must be 'avatar'", "type")
        avatar_id = body.get("avatar_id")
        if not isinstance(avatar_id, str) or not avatar_id:
            return _v3_error(400, "invalid_parameter", "avatar_id is required", "avatar_id")
        script = body.get("script")
        if not isinstance(script, str) or not script.strip():
            return _v3_error(400, "invalid_parameter", "script is required", "script")
        if len(script) > 5000:
            return _v3_error(400, "invalid_parameter", "script exceeds 5000 characters", "script")
        if body.get("aspect_ratio") not in (None, "16:9", "9:16", "4:5", "5:4", "1:1", "auto"):
            return _v3_error(400, "invalid_parameter", "unsupported aspect_ratio", "aspect_ratio")
        if body.get("resolution") not in (None, "720p", "1080p", "4k"):
            return _v3_error(400, "invalid_parameter", "unsupported resolution", "resolution")
        if avatar_id not in self.looks:
            return _v3_error(404, "avatar_not_found", f"Avatar {avatar_id} not found")
        voice_id = body.get("voice_id")
        if voice_id is not None and voice_id not in self.voices:
            return _v3_error(404, "voice_not_found", f"Voice {voice_id} not found")
        return None

    async def _get_v3(self, request: web.Request) -> web.Response:
        video = self.videos.get(request.match_info["video_id"])
        if video is None or video.api != "v3":
            return _v3_error(404, "not_found", "Video not found")
        self._advance(video)
        done = video.status == "completed"
        return web.json_response(
            {
                "data": {
                    "id": video.video_id,
                    "status": video.status,
                    "title": video.title,
                    "created_at": 1_763_683_200,
                    "completed_at": 1_763_683_260
                    if video.status in ("completed", "failed")
                    else None,
                    "video_url": self.video_url(video.video_id) if done else None,
                    "captioned_video_url": (
                        self.video_url(video.video_id, captioned=True)
                        if done and self._captioned(video)
                        else None
                    ),
                    "video_page_url": self.page_url(video.video_id),
                    "thumbnail_url": (self.thumbnail_url(video.video_id) if done else None),
                    "duration": video.duration if done else None,
                    "failure_code": video.failure[0] if video.failure else None,
                    "failure_message": video.failure[1] if video.failure else None,
                }
            }
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"].removesuffix(".mp4")
        video_id = name.removesuffix("-captioned")
        video = self.videos.get(video_id)
        if video is None or video.status != "completed":
            return web.Response(status=404, text="Not Found")
        if request.query.get("sig") != str(self.link_generation):
            return web.Response(status=403, text="Request has expired")  # like S3
        self.downloads.append(name)
        body = self.captioned_mp4_bytes if name != video_id else self.mp4_bytes
        return web.Response(body=body, content_type="video/mp4")

    # --- v3 catalog ----------------------------------------------------------------------

    async def _avatars_v3(self, request: web.Request) -> web.Response:
        groups: dict[str, dict[str, Any]] = {}
        for look in self.looks.values():
            g = groups.setdefault(
                look["group_id"],
                {
                    "id": look["group_id"],
                    "name": look["name"].split(" ")[0],
                    "gender": look.get("gender"),
                    "looks_count": 0,
                    "default_voice_id": look.get("default_voice_id"),
                    "preview_image_url": None,
                },
            )
            g["looks_count"] += 1
        return _paged(request, list(groups.values()), max_limit=50)

    async def _looks_v3(self, request: web.Request) -> web.Response:
        items = [
            {
                "id": look_id,
                "avatar_type": "studio_avatar",
                "tags": [],
                "supported_api_engines": ["avatar_iv"],
                **look,
            }
            for look_id, look in self.looks.items()
            if request.query.get("group_id") in (None, look["group_id"])
        ]
        return _paged(request, items, max_limit=50)

    async def _voices_v3(self, request: web.Request) -> web.Response:
        items = [
            {
                "voice_id": vid,
                "type": "public",
                "support_pause": True,
                "support_locale": False,
                "preview_audio_url": None,
                **v,
            }
            for vid, v in self.voices.items()
        ]
        return _paged(request, items, max_limit=100)

    # --- v3 webhooks ---------------------------------------------------------------------

    async def _create_endpoint(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if key and ("create_endpoint", key) in self._replays:
            status, out = self._replays[("create_endpoint", key)]
            return web.json_response(out, status=status)
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _v3_error(400, "invalid_parameter", "url must be an http(s) URL", "url")
        events = body.get("events")
        if events is not None and (not isinstance(events, list) or not set(events) <= KNOWN_EVENTS):
            return _v3_error(400, "invalid_parameter", "unknown event type", "events")
        if self.validate_endpoints and not await self._probe(url):
            return _v3_error(
                400,
                "invalid_parameter",
                "the URL did not answer the OPTIONS validation request",
                "url",
            )
        ep = Endpoint(
            endpoint_id="ep_" + uuid.uuid4().hex[:12],
            url=url,
            events=events,
            secret="whsec_" + pysecrets.token_hex(16),
        )
        self.endpoints[ep.endpoint_id] = ep
        out = {"data": _endpoint_json(ep, with_secret=True)}
        if key:
            self._replays[("create_endpoint", key)] = (200, out)
        return web.json_response(out)

    async def _probe(self, url: str) -> bool:
        """HeyGen's endpoint validation: OPTIONS with a 1-second timeout, 2xx expected."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        status: int | None
        try:
            async with self._session.options(url, timeout=aiohttp.ClientTimeout(total=1)) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.probes.append((url, status))
        return status is not None and 200 <= status < 300

    async def _list_endpoints(self, request: web.Request) -> web.Response:
        items = [_endpoint_json(ep, with_secret=False) for ep in self.endpoints.values()]
        return _paged(request, items, max_limit=100)

    async def _delete_endpoint(self, request: web.Request) -> web.Response:
        if self.endpoints.pop(request.match_info["endpoint_id"], None) is None:
            return _v3_error(404, "not_found", "Webhook endpoint not found")
        return web.json_response({"data": None})

    async def _rotate(self, request: web.Request) -> web.Response:
        ep = self.endpoints.get(request.match_info["endpoint_id"])
        if ep is None:
            return _v3_error(404, "not_found", "Webhook endpoint not found")
        ep.secret = "whsec_" + pysecrets.token_hex(16)
        return web.json_response({"data": {"endpoint_id": ep.endpoint_id, "secret": ep.secret}})

    # --- v2 / v1 legacy ------------------------------------------------------------------

    async def _generate_v2(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        inputs = body.get("video_inputs")
        if not isinstance(inputs, list) or not inputs:
            return _v3_error(400, "invalid_parameter", "video_inputs is required", "video_inputs")
        for scene in inputs:
            problem = self._v2_scene_problem(scene)
            if problem is not None:
                return problem
        dim = body.get("dimension")
        if dim is not None and not (
            isinstance(dim, dict)
            and all(isinstance(dim.get(k), int) and dim[k] > 0 for k in ("width", "height"))
        ):
            return _v3_error(
                400, "invalid_parameter", "dimension needs width and height", "dimension"
            )
        video = self._new_video(
            "v2", body, body.get("title"), body.get("callback_url"), body.get("callback_id")
        )
        return web.json_response({"error": None, "data": {"video_id": video.video_id}})

    def _v2_scene_problem(self, scene: Any) -> web.Response | None:
        if not isinstance(scene, dict):
            return _v3_error(
                400, "invalid_parameter", "each video input must be an object", "video_inputs"
            )
        character, voice = scene.get("character") or {}, scene.get("voice") or {}
        if character.get("type") != "avatar" or not character.get("avatar_id"):
            return _v3_error(
                400, "invalid_parameter", "character.avatar_id is required", "character"
            )
        if (
            voice.get("type") != "text"
            or not voice.get("voice_id")
            or not str(voice.get("input_text") or "").strip()
        ):
            return _v3_error(
                400,
                "invalid_parameter",
                "voice needs type 'text', voice_id and input_text",
                "voice",
            )
        if character["avatar_id"] not in self.looks:
            return _v3_error(
                404,
                "avatar_not_found",
                f"Avatar {character['avatar_id']} not found or no longer available",
            )
        if voice["voice_id"] not in self.voices:
            return _v3_error(404, "voice_not_found", f"Voice {voice['voice_id']} not found")
        return None

    async def _status_v1(self, request: web.Request) -> web.Response:
        video_id = request.query.get("video_id")
        if not video_id:
            return _v1_error(400, 40001, "Missing required input parameters")
        video = self.videos.get(video_id)
        if video is None:
            return _v1_error(404, 40031, "Invalid video id")
        self._advance(video)
        done = video.status == "completed"
        error = (
            {"code": 40119, "message": video.failure[1], "detail": video.failure[0]}
            if video.failure
            else None
        )
        return web.json_response(
            {
                "code": 100,
                "message": "Success",
                "data": {
                    "id": video.video_id,
                    "status": video.status,
                    "callback_id": video.callback_id,
                    "video_url": self.video_url(video.video_id) if done else None,
                    "thumbnail_url": (self.thumbnail_url(video.video_id) if done else None),
                    "video_url_caption": (
                        self.video_url(video.video_id, captioned=True)
                        if done and self._captioned(video)
                        else None
                    ),
                    "gif_url": None,
                    "caption_url": None,
                    "duration": video.duration if done else None,
                    "error": error,
                },
            }
        )

    async def _avatars_v2(self, request: web.Request) -> web.Response:
        avatars = [
            {
                "avatar_id": aid,
                "avatar_name": a["name"],
                "gender": a.get("gender"),
                "preview_image_url": None,
                "preview_video_url": None,
                "premium": False,
                "default_voice_id": a.get("default_voice_id"),
            }
            for aid, a in self.looks.items()
        ]
        return web.json_response(
            {"error": None, "data": {"avatars": avatars, "talking_photos": []}}
        )

    async def _voices_v2(self, request: web.Request) -> web.Response:
        voices = [
            {
                "voice_id": vid,
                "preview_audio": None,
                "support_pause": True,
                "emotion_support": False,
                **v,
            }
            for vid, v in self.voices.items()
        ]
        return web.json_response({"error": None, "data": {"voices": voices}})

    async def _templates_v2(self, request: web.Request) -> web.Response:
        items = [
            {
                "template_id": tid,
                "name": t["name"],
                "thumbnail_image_url": None,
                "aspect_ratio": "16:9",
            }
            for tid, t in self.templates.items()
        ]
        return web.json_response({"error": None, "data": {"templates": items}})

    async def _template_v2(self, request: web.Request) -> web.Response:
        template = self.templates.get(request.match_info["template_id"])
        if template is None:
            return _v3_error(404, "template_not_found", "Template not found")
        return web.json_response(
            {"error": None, "data": {"variables": template["variables"], "scenes": []}}
        )

    async def _generate_template(self, request: web.Request) -> web.Response:
        template = self.templates.get(request.match_info["template_id"])
        if template is None:
            return _v3_error(404, "template_not_found", "Template not found")
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        variables = body.get("variables")
        if not isinstance(variables, dict) or not variables:
            return _v3_error(400, "invalid_parameter", "variables is required", "variables")
        unknown = sorted(set(variables) - set(template["variables"]))
        if unknown:
            return _v3_error(
                400,
                "invalid_parameter",
                f"unknown template variable(s): {', '.join(unknown)}",
                "variables",
            )
        video = self._new_video(
            "v2", body, body.get("title"), body.get("callback_url"), body.get("callback_id")
        )
        return web.json_response({"error": None, "data": {"video_id": video.video_id}})

    # --- state machine and deliveries ----------------------------------------------------

    def _new_video(
        self, api: str, body: dict[str, Any], title: Any, callback_url: Any, callback_id: Any
    ) -> FakeVideo:
        video = FakeVideo(
            video_id=uuid.uuid4().hex,
            api=api,
            title=title,
            callback_url=callback_url,
            callback_id=callback_id,
            body=body,
        )
        self.videos[video.video_id] = video
        return video

    def _advance(self, video: FakeVideo) -> None:
        if video.status in ("completed", "failed"):
            return
        video.reads += 1
        if self.polls_to_complete is not None and video.reads > self.polls_to_complete:
            if self.fail_renders:
                video.failure = ("rendering_failed", "Avatar rendering timed out")
            self._finish(video, failed=self.fail_renders)
        elif video.reads > 1:
            video.status = "processing"

    def _finish(self, video: FakeVideo, *, failed: bool) -> None:
        if video.status in ("completed", "failed"):
            return
        video.status = "failed" if failed else "completed"
        event_data: dict[str, Any] = {"video_id": video.video_id, "callback_id": video.callback_id}
        if failed:
            event_data["msg"] = video.failure[1] if video.failure else "failed"
        else:
            event_data["url"] = self.video_url(video.video_id)
        event = {
            "event_type": "avatar_video.fail" if failed else "avatar_video.success",
            "event_data": event_data,
        }
        targets: list[tuple[str, str | None]] = []
        if video.callback_url:
            targets.append((video.callback_url, None))  # per-video callbacks are unsigned
        targets += [
            (ep.url, ep.secret)
            for ep in self.endpoints.values()
            if ep.events is None or event["event_type"] in ep.events
        ]
        for url, secret in targets:
            task = asyncio.get_running_loop().create_task(self._deliver(url, secret, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, secret: str | None, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:  # a registered endpoint's delivery
            headers |= {
                "Heygen-Signature": sign(body, secret),
                "Heygen-Timestamp": str(int(time.time())),
                "Heygen-Event-Id": "evt_" + uuid.uuid4().hex,
            }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        status: int | None
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        await self.deliveries.put(Delivery(url, status, headers, body, event))


def _endpoint_json(ep: Endpoint, *, with_secret: bool) -> dict[str, Any]:
    return {
        "endpoint_id": ep.endpoint_id,
        "url": ep.url,
        "events": ep.events,
        "status": "enabled",
        "created_at": ep.created_at,
        "secret": ep.secret if with_secret else None,
    }


def _paged(request: web.Request, items: list[dict[str, Any]], *, max_limit: int) -> web.Response:
    try:
        limit = int(request.query.get("limit", "20"))
        start = int(request.query.get("token") or 0)
    except ValueError:
        return _v3_error(400, "invalid_parameter", "limit and token must be valid", "limit")
    if not 1 <= limit <= max_limit:
        return _v3_error(400, "invalid_parameter", f"limit must be 1..{max_limit}", "limit")
    page = items[start : start + limit]
    more = start + limit < len(items)
    return web.json_response(
        {"data": page, "has_more": more, "next_token": str(start + limit) if more else None}
    )


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _v3_error(400, "invalid_parameter", "body must be JSON")
    if not isinstance(body, dict):
        return _v3_error(400, "invalid_parameter", "body must be a JSON object")
    return body
