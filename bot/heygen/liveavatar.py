"""LiveAvatar API (the current live-avatar backend): session token, start, keep-alive, stop,
and the LiveKit `agent-control` command events.

A FULL-mode session is two HTTP calls and then events:

1. `POST /v1/sessions/token` with `X-API-KEY` mints a session id and a short-lived session
   token (JWT) carrying the whole configuration (avatar, voice, language, quality).
   https://docs.liveavatar.com/api-reference/full-mode/sessions/create-session-token
2. `POST /v1/sessions/start` with `Authorization: Bearer <session token>` starts the LiveKit
   room and returns its URL plus a client token for the viewer (and, when LiveAvatar grants
   one, an agent token a backend participant can join with).
   https://docs.liveavatar.com/api-reference/sessions/start-session
3. Speech is not an HTTP call: the avatar is driven by JSON events published on the LiveKit
   data topic `agent-control` (`avatar.speak_text`, `avatar.interrupt`, ...).
   https://docs.liveavatar.com/docs/full-mode/events
4. `POST /v1/sessions/keep-alive` resets the idle timer (5 minutes idle ends a session);
   `POST /v1/sessions/stop` ends it. Both accept the session token (`HTTPBearer`) or the API
   key (`APIKeyHeader`) plus `session_id` in the body
   (https://docs.liveavatar.com/api-reference/sessions/keep-session-alive). We use the API
   key: the session token is documented as a *short-lived* access token for a frontend
   (https://docs.liveavatar.com/docs/quick-start-guide), and a session the bot keeps for up
   to LIVE_MAX_SESSION_SECONDS must not depend on it still being valid.
5. `GET /v1/avatars` (the account's avatars) and `GET /v1/avatars/public` list LiveAvatar's
   own catalogue (UUIDs; HeyGen avatar ids are not valid here, docs.liveavatar.com FAQ
   "heygen-comparison"): the bot checks LIVE_AVATAR_ID against them at start.
   https://docs.liveavatar.com/api-reference/avatar/list-user-avatars

Responses use the envelope `{code, data, message}`; the web SDK treats code 1000 as success
and the OpenAPI schema defaults it to 100, so both are accepted. LiveAvatar documents no error
code for a missing session or the concurrency limit; bot/heygen/live.py recognises them by
status and message as well as by HeyGen streaming's codes (10006 / 10007).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr

from bot.heygen.envelopes import ApiModel, parse, unwrap
from bot.heygen.http import ApiClient

SERVICE = "LiveAvatar"
SUCCESS_CODES = frozenset({100, 1000})
AGENT_CONTROL_TOPIC = "agent-control"  # commands we send into the room
AGENT_RESPONSE_TOPIC = "agent-response"  # events LiveAvatar sends back
IDLE_TIMEOUT_SECONDS = 300  # "5-minute timeout"; keep-alive every 2-3 minutes

M = TypeVar("M", bound=BaseModel)


# --- closed vocabularies --------------------------------------------------------------------


class SessionMode(StrEnum):
    """FULL: LiveAvatar hosts ASR, LLM, TTS and the room; LITE: bring your own audio."""

    FULL = "FULL"
    LITE = "LITE"


class VideoQuality(StrEnum):
    VERY_HIGH = "very_high"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class VideoEncoding(StrEnum):
    H264 = "H264"
    VP8 = "VP8"


class InteractivityType(StrEnum):
    """CONVERSATIONAL listens continuously; PUSH_TO_TALK only between user PTT events."""

    CONVERSATIONAL = "CONVERSATIONAL"
    PUSH_TO_TALK = "PUSH_TO_TALK"


class SessionEndReason(StrEnum):
    """`reason` of `POST /v1/sessions/stop` (https://docs.liveavatar.com/api-reference/sessions/stop-session)."""

    UNKNOWN = "UNKNOWN"
    USER_DISCONNECTED = "USER_DISCONNECTED"
    SERVER_ERROR = "SERVER_ERROR"
    IDLE_TIMEOUT = "IDLE_TIMEOUT"
    NO_CREDITS = "NO_CREDITS"
    USER_CLOSED = "USER_CLOSED"
    AVATAR_DELETED = "AVATAR_DELETED"
    MAX_DURATION_REACHED = "MAX_DURATION_REACHED"
    ZOMBIE_SESSION_REAP = "ZOMBIE_SESSION_REAP"
    AGENT_HANG_UP = "AGENT_HANG_UP"


# --- request / response models --------------------------------------------------------------


class AvatarPersona(ApiModel):
    """Who the FULL-mode avatar is: its voice, its context (prompt) and its language.

    Without a `context_id` the avatar does not answer users on its own, which is what we
    want: the bot decides what is said and sends it as `avatar.speak_text`.
    """

    voice_id: str | None = None
    context_id: str | None = None
    language: str = "en"


class VideoSettings(ApiModel):
    quality: VideoQuality = VideoQuality.HIGH
    encoding: VideoEncoding = VideoEncoding.VP8


class SessionTokenRequest(ApiModel):
    """Body of `POST /v1/sessions/token` for a FULL-mode session."""

    mode: Literal[SessionMode.FULL] = SessionMode.FULL
    avatar_id: str
    avatar_persona: AvatarPersona = Field(default_factory=AvatarPersona)
    video_settings: VideoSettings | None = None
    is_sandbox: bool = False  # sandbox: ~1 minute sessions with one preset avatar, no credits
    # Seconds; must not exceed the subscription tier's limit.
    max_session_duration: int | None = Field(default=None, gt=0)
    interactivity_type: InteractivityType | None = None
    llm_configuration_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class SessionToken(ApiModel):
    """`data` of `POST /v1/sessions/token`: the session id and its bearer token."""

    session_id: str
    session_token: SecretStr


class StartedSession(ApiModel):
    """`data` of `POST /v1/sessions/start`: how to join the LiveKit room."""

    session_id: str
    livekit_url: str
    livekit_client_token: SecretStr  # for the end user's browser (the viewer page)
    # For a backend participant (our agent) in the same room; not granted in every mode.
    livekit_agent_token: SecretStr | None = None
    max_session_duration: int | None = None  # seconds
    ws_url: str | None = None  # LITE mode's websocket; unused in FULL mode


class SessionListType(StrEnum):
    ACTIVE = "active"
    HISTORIC = "historic"


class SessionEntry(ApiModel):
    """One entry of `GET /v1/sessions`
    (https://docs.liveavatar.com/api-reference/sessions/list-sessions)."""

    id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    duration: float | None = None  # seconds
    mode: str | None = None
    is_sandbox: bool | None = None
    credits_consumed: float | None = None


class SessionPage(ApiModel):
    count: int = 0
    results: list[SessionEntry] = Field(default_factory=list)
    next: str | None = None
    previous: str | None = None


class AvatarEntry(ApiModel):
    """One entry of `GET /v1/avatars` or `/v1/avatars/public`."""

    id: str
    name: str | None = None
    status: str | None = None  # e.g. INIT, ACTIVE
    is_expired: bool | None = None


class AvatarPage(ApiModel):
    count: int = 0
    results: list[AvatarEntry] = Field(default_factory=list)
    next: str | None = None


class KeepAliveRequest(ApiModel):
    session_id: str | None = None  # needed only when authenticating with the API key


class StopSessionRequest(ApiModel):
    session_id: str | None = None
    reason: SessionEndReason = SessionEndReason.USER_CLOSED


# --- agent-control events -------------------------------------------------------------------


class AgentControlEvent(ApiModel):
    """A command published on the LiveKit data topic `agent-control`.

    Wire shape (https://docs.liveavatar.com/docs/full-mode/events):
    `{"event_type": str, "session_id": str, "event_id": str, ...event data}` as UTF-8 JSON.
    """

    event_type: ClassVar[str]
    session_id: str
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        return {"event_type": self.event_type, **self.model_dump(mode="json", exclude_none=True)}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode()


class SpeakText(AgentControlEvent):
    """`avatar.speak_text`: the avatar says `text` verbatim (HeyGen v1's `repeat`)."""

    event_type: ClassVar[str] = "avatar.speak_text"
    text: str = Field(min_length=1)


class SpeakResponse(AgentControlEvent):
    """`avatar.speak_response`: LiveAvatar's LLM answers `text`, then the avatar speaks."""

    event_type: ClassVar[str] = "avatar.speak_response"
    text: str = Field(min_length=1)


class Interrupt(AgentControlEvent):
    """`avatar.interrupt`: stop speaking now and drop everything queued."""

    event_type: ClassVar[str] = "avatar.interrupt"


class StartListening(AgentControlEvent):
    """`avatar.start_listening`: switch from idle to the listening pose."""

    event_type: ClassVar[str] = "avatar.start_listening"


class StopListening(AgentControlEvent):
    """`avatar.stop_listening`: return from listening to idle."""

    event_type: ClassVar[str] = "avatar.stop_listening"


AGENT_CONTROL_EVENTS: dict[str, type[AgentControlEvent]] = {
    cls.event_type: cls
    for cls in (SpeakText, SpeakResponse, Interrupt, StartListening, StopListening)
}


def parse_agent_control(payload: bytes | str) -> AgentControlEvent:
    """Parse one `agent-control` message (what the fake room does with what it receives)."""
    data = json.loads(payload)
    if not isinstance(data, dict) or data.get("event_type") not in AGENT_CONTROL_EVENTS:
        raise ValueError(f"not an agent-control command: {str(payload)[:200]}")
    cls = AGENT_CONTROL_EVENTS[data.pop("event_type")]
    return cls.model_validate(data)


# --- the client -----------------------------------------------------------------------------


def _data(payload: Any, *, method: str, path: str) -> Any:
    return unwrap(
        payload,
        f"{method} {path}",
        success=SUCCESS_CODES,
        service=SERVICE,
        method=method,
        path=path,
    )


def _parse(model: type[M], data: Any, *, method: str, path: str) -> M:
    return parse(model, data, f"{method} {path}", service=SERVICE, method=method, path=path)


def _bearer(token: SecretStr | str) -> dict[str, str]:
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    return {"Authorization": f"Bearer {value}"}


class LiveAvatarClient:
    """Typed calls to the LiveAvatar session API over the shared HTTP core.

    `api` must carry the `X-API-KEY` header (token minting only works with the API key).
    Retries: minting a token and starting a session are creates (never silently repeated);
    keep-alive and stop are safe to repeat.
    """

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    async def _call(
        self,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool,
    ) -> Any:
        payload = await self.api.request(
            "POST",
            path,
            json=json,
            headers=headers,
            idempotent=idempotent,
        )
        return _data(payload, method="POST", path=path)

    async def create_session_token(self, request: SessionTokenRequest) -> SessionToken:
        """Mint a session (id + bearer token) with the full session configuration."""
        path = "/v1/sessions/token"
        data = await self._call(path, json=request.to_json(), idempotent=False)
        return _parse(SessionToken, data, method="POST", path=path)

    async def start_session(self, session_token: SecretStr | str) -> StartedSession:
        """Start the room for a minted session; returns the LiveKit URL and tokens."""
        path = "/v1/sessions/start"
        data = await self._call(path, headers=_bearer(session_token), idempotent=False)
        return _parse(StartedSession, data, method="POST", path=path)

    async def keep_alive(
        self,
        session_id: str,
        session_token: SecretStr | str | None = None,
    ) -> None:
        """Reset the session's idle timer.

        Without a session token (what the bot does) the API key authenticates and the body
        names the session; with one, the call is scoped to that session.
        """
        body = KeepAliveRequest(session_id=session_id).model_dump(mode="json")
        headers = _bearer(session_token) if session_token is not None else None
        await self._call("/v1/sessions/keep-alive", json=body, headers=headers, idempotent=True)

    async def stop_session(
        self,
        session_id: str,
        session_token: SecretStr | str | None = None,
        *,
        reason: SessionEndReason = SessionEndReason.USER_CLOSED,
    ) -> None:
        """End the session (frees the concurrency slot and stops billing)."""
        body = StopSessionRequest(session_id=session_id, reason=reason).model_dump(mode="json")
        headers = _bearer(session_token) if session_token is not None else None
        await self._call("/v1/sessions/stop", json=body, headers=headers, idempotent=True)

    async def list_sessions(
        self,
        kind: SessionListType = SessionListType.ACTIVE,
        *,
        page: int = 1,
        page_size: int = 100,
    ) -> SessionPage:
        """`GET /v1/sessions?type=active|historic`: the account's sessions, one page."""
        path = "/v1/sessions"
        payload = await self.api.request(
            "GET",
            path,
            params={"type": kind.value, "page": page, "page_size": page_size},
            idempotent=True,
        )
        return _parse(SessionPage, _data(payload, method="GET", path=path), method="GET", path=path)

    async def list_avatars(self, *, public: bool = False, page: int = 1) -> AvatarPage:
        """`GET /v1/avatars` (this account's) or `/v1/avatars/public`: one page of 100."""
        path = "/v1/avatars/public" if public else "/v1/avatars"
        payload = await self.api.request(
            "GET", path, params={"page": page, "page_size": 100}, idempotent=True
        )
        return _parse(AvatarPage, _data(payload, method="GET", path=path), method="GET", path=path)
