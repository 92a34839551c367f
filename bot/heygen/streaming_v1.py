"""HeyGen Streaming API v1 (legacy "Interactive Avatar"; the seed documents' live backend).

Flow with `version: "v2"` (LiveKit transport):
`streaming.create_token` (optional: a per-session token a browser SDK may use instead of the
API key) -> `streaming.new` (LiveKit URL + access token for the viewer) -> `streaming.start`
-> `streaming.task` (task_type `repeat` says the text verbatim) ... -> `streaming.stop`.
`streaming.keep_alive` resets the idle timer (`activity_idle_timeout`, default 120 s).
Reference: https://docs.heygen.com/reference/new-session and its siblings
(start-session, send-task, interrupt-task, keep-alive, close-session, list-sessions,
create-session-token, streaming-avatar-list). HeyGen points new work to LiveAvatar
(bot/heygen/liveavatar.py); this module stays for accounts on the old API.

Envelopes: most calls answer `{code: 100, data, message}`; `streaming.create_token` answers
`{error: null, data: {token}}`. Errors carry `{code, message}` (e.g. 10006 session not
found, 10007 concurrent limit, 400112 unauthorized).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr

from bot.heygen.envelopes import ApiModel, parse, unwrap
from bot.heygen.errors import HeyGenProtocolError
from bot.heygen.http import ApiClient

SERVICE = "HeyGen"
# activity_idle_timeout: default 120 s, 30..3600 s
# (https://docs.heygen.com/docs/session-management-best-practices)
DEFAULT_IDLE_TIMEOUT_SECONDS = 120

M = TypeVar("M", bound=BaseModel)


# --- closed vocabularies --------------------------------------------------------------------


class AvatarQuality(StrEnum):
    """Stream quality: high 2000 kbps 720p, medium 1000 kbps 480p, low 500 kbps 360p."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class VideoEncoding(StrEnum):
    """H264 plays on more devices; VP8 is the API's default."""

    H264 = "H264"
    VP8 = "VP8"


class VoiceEmotion(StrEnum):
    EXCITED = "excited"
    SERIOUS = "serious"
    FRIENDLY = "friendly"
    SOOTHING = "soothing"
    BROADCASTER = "broadcaster"


class TaskType(StrEnum):
    """`repeat` says the text verbatim; `talk` sends it to the avatar's LLM as a user turn.

    The reference page names the second one `chat`; HeyGen's own SDK sends `talk`.
    """

    REPEAT = "repeat"
    TALK = "talk"


class TaskMode(StrEnum):
    """`sync` answers after the avatar finished speaking; `async` answers at once."""

    SYNC = "sync"
    ASYNC = "async"


class SessionStatus(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"


# --- request / response models --------------------------------------------------------------


class ElevenLabsSettings(ApiModel):
    """Fine-tuning for ElevenLabs voices (0..1 unless noted)."""

    stability: float | None = Field(default=None, ge=0, le=1)
    similarity_boost: float | None = Field(default=None, ge=0, le=1)
    style: float | None = Field(default=None, ge=0, le=1)
    use_speaker_boost: bool | None = None
    model_id: str | None = None


class VoiceSetting(ApiModel):
    voice_id: str | None = None
    rate: float | None = Field(default=None, ge=0.5, le=1.5)  # speaking speed multiplier
    emotion: VoiceEmotion | None = None
    elevenlabs_settings: ElevenLabsSettings | None = None


class NewSessionRequest(ApiModel):
    """Body of `POST /v1/streaming.new`."""

    version: Literal["v2"] = "v2"  # v2 = LiveKit; the raw-WebRTC v1 transport is gone
    avatar_id: str | None = None  # the avatar's id ...
    avatar_name: str | None = None  # ... or its name, as HeyGen's SDK sends it
    quality: AvatarQuality | None = None
    voice: VoiceSetting | None = None
    video_encoding: VideoEncoding | None = None
    language: str | None = None
    knowledge_base: str | None = None  # an inline prompt, used by `talk` tasks
    knowledge_base_id: str | None = None  # a knowledge base made in HeyGen's app
    disable_idle_timeout: bool | None = None
    activity_idle_timeout: int | None = Field(default=None, ge=30, le=3600)  # seconds

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class NewSession(ApiModel):
    """`data` of `streaming.new`: the LiveKit room to show the viewer."""

    session_id: str
    url: str  # LiveKit server URL
    access_token: SecretStr  # LiveKit token for the viewer
    livekit_agent_token: SecretStr | None = None
    realtime_endpoint: str | None = None
    is_paid: bool | None = None
    session_duration_limit: int | None = None  # seconds


class SessionIdRequest(ApiModel):
    """Body of start, interrupt, keep_alive and stop: just the session id."""

    session_id: str


class TaskRequest(ApiModel):
    """Body of `POST /v1/streaming.task`."""

    session_id: str
    text: str = Field(min_length=1)
    task_type: TaskType = TaskType.REPEAT
    task_mode: TaskMode = TaskMode.ASYNC  # async: don't hold a request open while it speaks


class TaskResult(ApiModel):
    task_id: str
    duration_ms: float | None = None  # how long the avatar speaks the text


class SessionInfo(ApiModel):
    """One entry of `GET /v1/streaming.list` (active sessions)."""

    session_id: str
    status: str  # new / connecting / connected; kept open in case of new states
    created_at: float | None = None  # unix seconds
    api_key_type: str | None = None


class SessionList(ApiModel):
    sessions: list[SessionInfo] = Field(default_factory=list)


class StreamingAvatar(ApiModel):
    """One entry of `GET /v1/streaming/avatar.list` (interactive avatars)."""

    avatar_id: str
    created_at: float | None = None
    is_public: bool | None = None
    status: str | None = None  # ACTIVE / INACTIVE


class CreatedToken(ApiModel):
    token: SecretStr


# --- envelope -------------------------------------------------------------------------------


def _data(payload: Any, *, method: str, path: str) -> Any:
    return unwrap(payload, f"{method} {path}", service=SERVICE, method=method, path=path)


def _parse(model: type[M], data: Any, *, method: str, path: str) -> M:
    return parse(model, data, f"{method} {path}", service=SERVICE, method=method, path=path)


# --- the client -----------------------------------------------------------------------------


class StreamingClient:
    """Typed calls to HeyGen's `streaming.*` endpoints over the shared HTTP core.

    `api` carries `X-Api-Key`. Creates (`create_token`, `new`, `start`, `task`) are never
    silently repeated; interrupt, keep_alive, stop and the lists are safe to repeat.
    """

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool,
    ) -> Any:
        payload = await self.api.request(
            method, path, json=json, params=params, idempotent=idempotent
        )
        return _data(payload, method=method, path=path)

    async def create_token(self) -> SecretStr:
        """`POST /v1/streaming.create_token`: a one-session token for a browser SDK."""
        path = "/v1/streaming.create_token"
        data = await self._call("POST", path, json={}, idempotent=False)
        return _parse(CreatedToken, data, method="POST", path=path).token

    async def new_session(self, request: NewSessionRequest) -> NewSession:
        """`POST /v1/streaming.new`: allocate a session (counts toward the concurrency limit)."""
        path = "/v1/streaming.new"
        data = await self._call("POST", path, json=request.to_json(), idempotent=False)
        return _parse(NewSession, data, method="POST", path=path)

    async def start_session(self, session_id: str) -> None:
        """`POST /v1/streaming.start`: the avatar joins the room and starts streaming."""
        await self._call(
            "POST",
            "/v1/streaming.start",
            json=SessionIdRequest(session_id=session_id).model_dump(),
            idempotent=False,
        )

    async def send_task(self, request: TaskRequest) -> TaskResult:
        """`POST /v1/streaming.task`: make the avatar speak (`repeat`) or answer (`talk`)."""
        path = "/v1/streaming.task"
        data = await self._call(
            "POST", path, json=request.model_dump(mode="json"), idempotent=False
        )
        return _parse(TaskResult, data, method="POST", path=path)

    async def repeat(
        self, session_id: str, text: str, mode: TaskMode = TaskMode.ASYNC
    ) -> TaskResult:
        """Say `text` verbatim."""
        return await self.send_task(
            TaskRequest(session_id=session_id, text=text, task_type=TaskType.REPEAT, task_mode=mode)
        )

    async def interrupt(self, session_id: str) -> None:
        """`POST /v1/streaming.interrupt`: stop the current speech (and queued tasks)."""
        await self._call(
            "POST",
            "/v1/streaming.interrupt",
            json=SessionIdRequest(session_id=session_id).model_dump(),
            idempotent=True,
        )

    async def keep_alive(self, session_id: str) -> None:
        """`POST /v1/streaming.keep_alive`: reset the idle timeout."""
        await self._call(
            "POST",
            "/v1/streaming.keep_alive",
            json=SessionIdRequest(session_id=session_id).model_dump(),
            idempotent=True,
        )

    async def stop_session(self, session_id: str) -> None:
        """`POST /v1/streaming.stop`: close the session and free its concurrency slot."""
        await self._call(
            "POST",
            "/v1/streaming.stop",
            json=SessionIdRequest(session_id=session_id).model_dump(),
            idempotent=True,
        )

    async def list_sessions(self) -> list[SessionInfo]:
        """`GET /v1/streaming.list`: the account's currently open sessions."""
        path = "/v1/streaming.list"
        data = await self._call("GET", path, idempotent=True)
        return _parse(SessionList, data, method="GET", path=path).sessions

    async def list_avatars(self) -> list[StreamingAvatar]:
        """`GET /v1/streaming/avatar.list`: public and custom interactive avatars."""
        path = "/v1/streaming/avatar.list"
        data = await self._call("GET", path, idempotent=True)
        if not isinstance(data, list):
            raise HeyGenProtocolError(
                f"GET {path} returned no avatar list",
                status=200,
                service=SERVICE,
                method="GET",
                path=path,
            )
        return [_parse(StreamingAvatar, item, method="GET", path=path) for item in data]
