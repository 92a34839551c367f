"""A loopback fake of the LiveAvatar session API and of the LiveKit room it starts.

HTTP side (what `bot/heygen/liveavatar.py` calls), checked like the real service, and where
the docs are vague the harsher reading:
- `POST /v1/sessions/token` needs `X-API-KEY`; the body must be a FULL-mode config whose
  `avatar_id` is a UUID (LiveAvatar's ids are; a HeyGen avatar id is refused with 422) of a
  known avatar (404 otherwise), and a known voice when one is given.
- `POST /v1/sessions/start` needs `Authorization: Bearer <session token>` of a minted,
  not yet started session; past the concurrency limit it answers `concurrency_reply`
  (LiveAvatar documents no code for it: tests try several readings).
- `POST /v1/sessions/keep-alive` and `/v1/sessions/stop` take the session token, or the
  API key plus `session_id`. The session token is short-lived (`session_token_ttl`, then
  401). An expired or unknown session answers `gone_reply` (default 404, code 10006).
- `GET /v1/avatars` (the account's) and `/v1/avatars/public` list the catalogue.
Sessions end after `idle_timeout` seconds without activity on the fake's `clock`; tests move
the clock (`fake.clock.advance(...)`), nothing sleeps. Faults come from tests/fakes/faults.py
with route names `session_token`, `session_start`, `session_keep_alive`, `session_stop`,
`session_list`.

LiveKit side: the real service hands out a room URL and tokens; the avatar (LiveKit identity
"heygen") joins the room some time after a participant connects, and only then does the
agent act on `agent-control` events: anything published earlier is silently lost (the
FULL-mode lifecycle page). `deliver()` checks the room, the token and the documented event
JSON, records what the avatar was told (`fake.spoken(session_id)`), and answers with the
`agent-response` events LiveAvatar would send (`avatar.speak_started` / `speak_ended`
carrying the command's id in `source_event_id`). `lose_next_speech` drops speech the way a
lossy data channel would. `LoopbackAgentControl` is the server-side test transport.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.heygen.errors import CODE_CONCURRENT_LIMIT, CODE_SESSION_NOT_FOUND
from bot.heygen.live import AgentControlError, AvatarRoom
from bot.heygen.liveavatar import AGENT_CONTROL_TOPIC, AgentControlEvent
from tests.fakes.clock import FakeClock
from tests.fakes.faults import Faults, install_faults

API_KEY = "la-test-key-5f2c9a"
AVATAR_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"  # LiveAvatar ids are UUIDs
PUBLIC_AVATAR_ID = "0930fd59-c8ad-434d-ad53-b391a1768720"
VOICE_ID = "la-voice-1"
AVATAR_IDENTITY = "heygen"  # the avatar's LiveKit participant identity (vendor web SDK)
SUCCESS = 1000
_COMMANDS = {
    "avatar.speak_text",
    "avatar.speak_response",
    "avatar.interrupt",
    "avatar.start_listening",
    "avatar.stop_listening",
    "user.start_push_to_talk",
    "user.stop_push_to_talk",
}
_WITH_TEXT = {"avatar.speak_text", "avatar.speak_response"}
_REPLIES = ("avatar.speak_started", "avatar.speak_ended")  # on agent-response, per speak_text


def envelope(data: Any = None, *, code: int = SUCCESS, message: str = "success") -> dict:
    return {"code": code, "data": data, "message": message}


def error_body(status: int, code: int | str | None, message: str) -> dict:
    return envelope(None, code=code if code is not None else status, message=message)


@dataclass
class FakeSession:
    session_id: str
    token: str
    config: dict[str, Any]
    created_at: float
    last_activity: float
    state: str = "minted"  # minted -> started -> stopped
    end_reason: str | None = None
    client_token: str = ""
    agent_token: str = ""
    avatar_joined: bool = False
    commands: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)  # sent before the avatar

    @property
    def room_url(self) -> str:
        return f"wss://fake-livekit.invalid/rooms/{self.session_id}"


class FakeLiveAvatar:
    """State and routes of the fake; `app()` builds the aiohttp application."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        avatars: set[str] | None = None,
        voices: set[str] | None = None,
        idle_timeout: float = 300.0,
        max_concurrent: int = 2,
        grant_agent_token: bool = True,
        session_token_ttl: float = 300.0,
        concurrency_reply: tuple[int, int | str, str] = (
            400,
            CODE_CONCURRENT_LIMIT,
            "Concurrent limit reached, please close other sessions",
        ),
        gone_reply: tuple[int, int | str, str] = (404, CODE_SESSION_NOT_FOUND, "Session not found"),
        public_avatars: set[str] | None = None,
        clock: FakeClock | None = None,
    ) -> None:
        self.api_key = api_key
        self.avatars = avatars if avatars is not None else {AVATAR_ID}
        self.voices = voices if voices is not None else {VOICE_ID}
        self.idle_timeout = idle_timeout
        self.max_concurrent = max_concurrent
        self.grant_agent_token = grant_agent_token
        self.session_token_ttl = session_token_ttl
        self.concurrency_reply = concurrency_reply
        self.gone_reply = gone_reply
        self.public_avatars = public_avatars if public_avatars is not None else {PUBLIC_AVATAR_ID}
        self.lose_next_speech = 0
        self.reply_source_ids = True  # False: replies carry `source_event_id: null` (nullable)
        self.clock = clock or FakeClock()
        self.faults = Faults()
        self.sessions: dict[str, FakeSession] = {}

    # --- what tests read ---------------------------------------------------------------

    def spoken(self, session_id: str) -> list[str]:
        """Texts the avatar was told to say verbatim, in order."""
        return [
            c["text"]
            for c in self.sessions[session_id].commands
            if c["event_type"] == "avatar.speak_text"
        ]

    def commands(self, session_id: str) -> list[str]:
        return [c["event_type"] for c in self.sessions[session_id].commands]

    def active(self) -> list[FakeSession]:
        self._expire()
        return [s for s in self.sessions.values() if s.state == "started"]

    # --- the LiveKit room ----------------------------------------------------------------

    def _room(self, room_url: str, token: str) -> FakeSession:
        self._expire()
        session = next((s for s in self.sessions.values() if s.room_url == room_url), None)
        if session is None or session.state == "minted":
            raise AgentControlError(f"no LiveKit room at {room_url}")
        if token not in (session.agent_token, session.client_token) or not token:
            raise AgentControlError("LiveKit rejected the token for this room")
        if session.state != "started":
            raise AgentControlError(f"the room closed ({session.end_reason})")
        return session

    def connect(self, room_url: str, token: str) -> list[str]:
        """A participant joins the room; returns who was already there."""
        session = self._room(room_url, token)
        return [AVATAR_IDENTITY] if session.avatar_joined else []

    def avatar_joins(self, room_url: str) -> None:
        """The avatar (and the agent) arrive in the room: from now on events are acted on."""
        session = next(s for s in self.sessions.values() if s.room_url == room_url)
        session.avatar_joined = True

    def deliver(self, room_url: str, token: str, topic: str, payload: bytes) -> list[dict]:
        """A participant published `payload` on `topic` in the room at `room_url`; returns
        the `agent-response` events the agent sends back.

        Raises AgentControlError the way a LiveKit connection would fail: unknown room,
        a token that does not admit to it, or a room that has closed.
        """
        session = self._room(room_url, token)
        if topic != AGENT_CONTROL_TOPIC:
            return []  # other topics reach participants but the agent ignores them
        event = json.loads(payload.decode("utf-8"))
        problems = _event_problems(event, session.session_id)
        if problems:
            raise AssertionError(f"malformed agent-control event {event!r}: {problems}")
        if not session.avatar_joined:
            session.ignored.append(event)  # the room is not ready: lost without a word
            return []
        if event["event_type"] == "avatar.speak_text" and self.lose_next_speech:
            self.lose_next_speech -= 1
            return []
        session.commands.append(event)
        session.last_activity = self.clock()
        if event["event_type"] != "avatar.speak_text":
            return []
        return [
            {
                "event_type": kind,
                "event_id": uuid.uuid4().hex,
                "session_id": session.session_id,
                "source_event_id": event.get("event_id") if self.reply_source_ids else None,
            }
            for kind in _REPLIES
        ]

    # --- HTTP ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        install_faults(app, self.faults, error_body=error_body)
        app.router.add_post("/v1/sessions/token", self._token, name="session_token")
        app.router.add_post("/v1/sessions/start", self._start, name="session_start")
        app.router.add_post("/v1/sessions/keep-alive", self._keep_alive, name="session_keep_alive")
        app.router.add_post("/v1/sessions/stop", self._stop, name="session_stop")
        app.router.add_get("/v1/sessions", self._list, name="session_list")
        app.router.add_get("/v1/avatars", self._avatars, name="avatar_list")
        app.router.add_get("/v1/avatars/public", self._avatars, name="avatar_list_public")
        return app

    def _expire(self) -> None:
        now = self.clock()
        for s in self.sessions.values():
            if s.state == "started" and now - s.last_activity >= self.idle_timeout:
                s.state, s.end_reason = "stopped", "IDLE_TIMEOUT"

    def _has_api_key(self, request: web.Request) -> bool:
        return bool(self.api_key) and request.headers.get("X-API-KEY") == self.api_key

    def _bearer_session(self, request: web.Request) -> FakeSession | bool | None:
        """The session a Bearer token names; None without a Bearer header; False if bad."""
        auth = request.headers.get("Authorization", "")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return next((s for s in self.sessions.values() if s.token == token), False)

    async def _json(self, request: web.Request) -> dict[str, Any] | None:
        raw = await request.read()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _token(self, request: web.Request) -> web.Response:
        self._expire()
        if not self._has_api_key(request):
            return _error(401, 401, "Invalid API key")
        body = await self._json(request)
        if body is None:
            return _validation("body", "Input should be a valid JSON object")
        if body.get("mode", "FULL") != "FULL":
            return _validation("mode", "Input should be 'FULL'")
        avatar_id = body.get("avatar_id")
        if not isinstance(avatar_id, str) or not avatar_id:
            return _validation("avatar_id", "Field required")
        try:
            uuid.UUID(avatar_id)
        except ValueError:
            return _validation("avatar_id", "Input should be a valid UUID")
        persona = body.get("avatar_persona") or {}
        if not isinstance(persona, dict):
            return _validation("avatar_persona", "Input should be a valid object")
        video = body.get("video_settings") or {}
        if video.get("quality", "high") not in {"very_high", "high", "medium", "low"}:
            return _validation("video_settings.quality", "Input should be a known quality")
        if video.get("encoding", "VP8") not in {"H264", "VP8"}:
            return _validation("video_settings.encoding", "Input should be 'H264' or 'VP8'")
        if avatar_id not in self.avatars:
            return _error(404, 404, f"Avatar {avatar_id} not found")
        voice_id = persona.get("voice_id")
        if voice_id is not None and voice_id not in self.voices:
            return _error(404, 404, f"Voice {voice_id} not found")
        now = self.clock()
        session = FakeSession(
            session_id=str(uuid.uuid4()),
            token="la-session-" + pysecrets.token_urlsafe(16),
            config=body,
            created_at=now,
            last_activity=now,
        )
        self.sessions[session.session_id] = session
        return web.json_response(
            envelope({"session_id": session.session_id, "session_token": session.token})
        )

    async def _start(self, request: web.Request) -> web.Response:
        self._expire()
        session = self._bearer_session(request)
        if not session:
            return _error(401, 401, "Missing or invalid session token")
        assert isinstance(session, FakeSession)
        if session.state != "minted":
            return _error(400, 400, f"Session {session.session_id} was already started")
        if len(self.active()) >= self.max_concurrent:
            return _error(*self.concurrency_reply)
        session.state = "started"
        session.last_activity = self.clock()
        session.client_token = "lk-client-" + pysecrets.token_urlsafe(12)
        session.agent_token = (
            "lk-agent-" + pysecrets.token_urlsafe(12) if self.grant_agent_token else ""
        )
        data: dict[str, Any] = {
            "session_id": session.session_id,
            "livekit_url": session.room_url,
            "livekit_client_token": session.client_token,
            "max_session_duration": session.config.get("max_session_duration", 1200),
            "ws_url": None,
        }
        if session.agent_token:
            data["livekit_agent_token"] = session.agent_token
        return web.json_response(envelope(data), status=201)

    async def _session_for(self, request: web.Request) -> FakeSession | web.Response:
        """Authenticate a session-scoped call: Bearer token, or API key + session_id."""
        self._expire()
        body = await self._json(request)
        if body is None:
            return _validation("body", "Input should be a valid JSON object")
        bearer = self._bearer_session(request)
        if bearer is False:
            return _error(401, 401, "Missing or invalid session token")
        if isinstance(bearer, FakeSession):
            if self.clock() - bearer.created_at >= self.session_token_ttl:
                return _error(401, 401, "Session token expired")
            if body.get("session_id") not in (None, bearer.session_id):
                return _error(403, 403, "The session token belongs to another session")
            session: FakeSession | None = bearer
        elif self._has_api_key(request):
            session_id = body.get("session_id")
            if not isinstance(session_id, str):
                return _validation("session_id", "Field required with an API key")
            session = self.sessions.get(session_id)
        else:
            return _error(401, 401, "Invalid API key")
        if session is None:
            return _error(*self.gone_reply)
        return session

    async def _keep_alive(self, request: web.Request) -> web.Response:
        session = await self._session_for(request)
        if isinstance(session, web.Response):
            return session
        if session.state != "started":
            return _error(*self.gone_reply)
        session.last_activity = self.clock()
        return web.json_response(envelope(None))

    async def _stop(self, request: web.Request) -> web.Response:
        session = await self._session_for(request)
        if isinstance(session, web.Response):
            return session
        body = await self._json(request) or {}
        if session.state != "stopped":
            session.state, session.end_reason = "stopped", body.get("reason", "UNKNOWN")
        # Stopping a stopped session is answered like the first stop: safe to repeat.
        return web.json_response(envelope(None))

    async def _list(self, request: web.Request) -> web.Response:
        self._expire()
        if not self._has_api_key(request):
            return _error(401, 401, "Invalid API key")
        kind = request.query.get("type")
        if kind not in ("active", "historic"):
            return _validation("type", "Input should be 'active' or 'historic'")
        paging = _paging(request)
        if isinstance(paging, web.Response):
            return paging
        page, size = paging
        wanted = "started" if kind == "active" else "stopped"
        rows = [s for s in self.sessions.values() if s.state == wanted]
        chunk = rows[(page - 1) * size : page * size]
        iso = "%Y-%m-%dT%H:%M:%SZ"
        return web.json_response(
            envelope(
                {
                    "count": len(rows),
                    "results": [
                        {
                            "id": s.session_id,
                            "created_at": time.strftime(iso, time.gmtime(s.created_at)),
                            "updated_at": time.strftime(iso, time.gmtime(s.last_activity)),
                            "duration": round(self.clock() - s.created_at),
                            "mode": "FULL",
                            "is_sandbox": bool(s.config.get("is_sandbox")),
                            "credits_consumed": 0,
                        }
                        for s in chunk
                    ],
                    "next": None if page * size >= len(rows) else f"?page={page + 1}",
                    "previous": None if page == 1 else f"?page={page - 1}",
                }
            )
        )

    async def _avatars(self, request: web.Request) -> web.Response:
        if not self._has_api_key(request):
            return _error(401, 401, "Invalid API key")
        ids = self.public_avatars if request.path.endswith("/public") else self.avatars
        paging = _paging(request)
        if isinstance(paging, web.Response):
            return paging
        page, size = paging
        rows = sorted(ids)
        chunk = rows[(page - 1) * size : page * size]
        results = [{"id": a, "name": f"Avatar {a[:4]}", "status": "ACTIVE"} for a in chunk]
        more = page * size < len(rows)
        return web.json_response(
            envelope(
                {
                    "count": len(rows),
                    "results": results,
                    "next": f"?page={page + 1}" if more else None,
                    "previous": None,
                }
            )
        )


def _paging(request: web.Request) -> tuple[int, int] | web.Response:
    """`page` and `page_size` as the list endpoints take them (1.., 1..100)."""
    try:
        page = int(request.query.get("page", "1"))
        size = int(request.query.get("page_size", "20"))
    except ValueError:
        return _validation("page", "Input should be a valid integer")
    if page < 1 or not 1 <= size <= 100:
        return _validation("page_size", "Input should be between 1 and 100")
    return page, size


def _error(status: int, code: int | str, message: str) -> web.Response:
    return web.json_response(envelope(None, code=code, message=message), status=status)


def _validation(field_name: str, message: str) -> web.Response:
    # FastAPI's 422 shape, as the real service answers schema errors.
    return web.json_response(
        {
            "detail": [
                {"loc": ["body", *field_name.split(".")], "msg": message, "type": "value_error"}
            ]
        },
        status=422,
    )


def _event_problems(event: Any, session_id: str) -> list[str]:
    """What is wrong with an agent-control event, per the documented JSON structure."""
    if not isinstance(event, dict):
        return ["not a JSON object"]
    problems = []
    event_type = event.get("event_type")
    if event_type not in _COMMANDS:
        problems.append(f"unknown event_type {event_type!r}")
    if event.get("session_id") != session_id:
        problems.append("session_id does not name this room's session")
    if event_type in _WITH_TEXT and not (isinstance(event.get("text"), str) and event["text"]):
        problems.append("text missing")
    if "event_id" in event and not isinstance(event["event_id"], str):
        problems.append("event_id is not a string")
    return problems


class LoopbackAgentControl:
    """`AgentControlChannel` for tests: publishes into `FakeLiveAvatar`'s room in-process,
    with the agent token LiveAvatar granted, exactly the bytes LiveKit would carry."""

    def __init__(self, fake: FakeLiveAvatar) -> None:
        self.fake = fake
        self.closed: list[str] = []
        self.responses: list[dict] = []  # agent-response events the agent sent back

    async def publish(self, session: AvatarRoom, event: AgentControlEvent) -> None:
        if session.agent_token is None:
            raise AgentControlError("no agent token for this session")
        # Like LiveKitAgentControl: join, and publish only once the avatar is in the room
        # (here it arrives as soon as someone joins).
        token = session.agent_token.get_secret_value()
        if AVATAR_IDENTITY not in self.fake.connect(session.livekit_url, token):
            self.fake.avatar_joins(session.livekit_url)
        self.responses += self.fake.deliver(
            session.livekit_url,
            session.agent_token.get_secret_value(),
            AGENT_CONTROL_TOPIC,
            event.to_bytes(),
        )

    async def close(self, session: AvatarRoom) -> None:
        self.closed.append(session.session_id)
