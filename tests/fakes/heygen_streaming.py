"""The `streaming.*` routes of the loopback HeyGen fake (legacy Interactive Avatar API).

`FakeStreaming.add_routes(app)` mounts them on any aiohttp app (the HeyGen fake app factory
mounts them next to the video and catalog routes); `FakeStreaming.app()` builds a standalone
app with faults installed, for tests of this family alone.

Checked like the real service (https://docs.heygen.com/reference/new-session and siblings):
- auth: `X-Api-Key: <key>`, or `Authorization: Bearer <token from streaming.create_token>`;
  otherwise 401 `{"code": 400112, "message": "Unauthorized"}`;
- bodies: `version` must be "v2", the avatar and voice must exist, enums must be known,
  `activity_idle_timeout` within 30..3600, a task needs text and a known task_type;
- state: new -> started -> stopped; a task before `streaming.start` is code 400006
  ("Session is not in correct state"); an unknown, stopped or idle-expired session is code
  10006; `streaming.new` past the concurrency limit is code 10007;
- idle expiry: a session ends `activity_idle_timeout` seconds (default 120) after its last
  activity (new, start, task, interrupt, keep_alive) on the fake's clock; tests advance it.
Every `repeat` task is recorded, so tests can assert the sentences spoken, in order.
Route names for faults: `streaming_create_token`, `streaming_new`, `streaming_start`,
`streaming_task`, `streaming_interrupt`, `streaming_keep_alive`, `streaming_stop`,
`streaming_list`, `streaming_avatar_list`.
"""

from __future__ import annotations

import json
import secrets as pysecrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.heygen.errors import CODE_CONCURRENT_LIMIT, CODE_SESSION_NOT_FOUND
from tests.fakes.clock import FakeClock
from tests.fakes.faults import Faults, install_faults

API_KEY = "hg-test-key-8d41e7"
AVATAR_ID = "Wayne_20240711"
VOICE_ID = "hg-voice-1"
SUCCESS = 100
CODE_UNAUTHORIZED = 400112
CODE_MISSING_PARAMS = 40001
CODE_INVALID_PARAMETER = 400175
CODE_WRONG_STATE = 400006
DEFAULT_IDLE_TIMEOUT = 120

Handler = Callable[[web.Request], Awaitable[web.Response]]


def envelope(data: Any = None, *, code: int = SUCCESS, message: str = "success") -> dict:
    return {"code": code, "data": data, "message": message}


def error_body(status: int, code: int | str | None, message: str) -> dict:
    return {"code": code if code is not None else status, "message": message}


@dataclass
class StreamingSession:
    session_id: str
    config: dict[str, Any]
    created_at: float
    last_activity: float
    idle_timeout: float | None  # None: disable_idle_timeout
    state: str = "new"  # new -> started -> stopped
    end_reason: str | None = None
    access_token: str = field(default_factory=lambda: "lk-" + pysecrets.token_urlsafe(12))
    tasks: list[dict[str, Any]] = field(default_factory=list)
    interrupts: int = 0


class FakeStreaming:
    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        avatars: set[str] | None = None,
        voices: set[str] | None = None,
        max_concurrent: int = 2,
        clock: FakeClock | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.api_key = api_key
        self.avatars = avatars if avatars is not None else {AVATAR_ID}
        self.voices = voices if voices is not None else {VOICE_ID}
        self.max_concurrent = max_concurrent
        self.clock = clock or FakeClock()
        self.faults = faults or Faults()
        self.sessions: dict[str, StreamingSession] = {}
        self.tokens: set[str] = set()

    # --- what tests read ---------------------------------------------------------------

    def spoken(self, session_id: str) -> list[str]:
        """Texts of `repeat` tasks the session received, in order."""
        return [t["text"] for t in self.sessions[session_id].tasks if t["task_type"] == "repeat"]

    def open_sessions(self) -> list[StreamingSession]:
        self._expire()
        return [s for s in self.sessions.values() if s.state != "stopped"]

    # --- mounting ------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        post, get = app.router.add_post, app.router.add_get
        post(
            "/v1/streaming.create_token",
            self._auth(self._create_token),
            name="streaming_create_token",
        )
        post("/v1/streaming.new", self._auth(self._new), name="streaming_new")
        post("/v1/streaming.start", self._auth(self._start), name="streaming_start")
        post("/v1/streaming.task", self._auth(self._task), name="streaming_task")
        post("/v1/streaming.interrupt", self._auth(self._interrupt), name="streaming_interrupt")
        post("/v1/streaming.keep_alive", self._auth(self._keep_alive), name="streaming_keep_alive")
        post("/v1/streaming.stop", self._auth(self._stop), name="streaming_stop")
        get("/v1/streaming.list", self._auth(self._list), name="streaming_list")
        get(
            "/v1/streaming/avatar.list", self._auth(self._avatar_list), name="streaming_avatar_list"
        )

    def app(self) -> web.Application:
        app = web.Application()
        install_faults(app, self.faults, error_body=error_body)
        self.add_routes(app)
        return app

    # --- plumbing ------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key and request.headers.get("X-Api-Key") == self.api_key:
            return True
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in self.tokens

    def _auth(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.Response:
            if not self._authorized(request):
                return _error(401, CODE_UNAUTHORIZED, "Unauthorized")
            self._expire()
            return await handler(request)

        return checked

    def _expire(self) -> None:
        now = self.clock()
        for s in self.sessions.values():
            if (
                s.state != "stopped"
                and s.idle_timeout is not None
                and now - s.last_activity >= s.idle_timeout
            ):
                s.state, s.end_reason = "stopped", "idle timeout"

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return _error(400, CODE_INVALID_PARAMETER, "Invalid JSON body")
        if not isinstance(body, dict):
            return _error(400, CODE_INVALID_PARAMETER, "Body must be a JSON object")
        return body

    async def _session(self, request: web.Request) -> StreamingSession | web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        session_id = body.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            return _error(400, CODE_MISSING_PARAMS, "Missing required parameter: session_id")
        session = self.sessions.get(session_id)
        if session is None or session.state == "stopped":
            return _error(400, CODE_SESSION_NOT_FOUND, f"Session not found: {session_id}")
        return session

    # --- handlers ------------------------------------------------------------------------

    async def _create_token(self, request: web.Request) -> web.Response:
        token = "hg-session-" + pysecrets.token_urlsafe(16)
        self.tokens.add(token)
        return web.json_response({"error": None, "data": {"token": token}})

    async def _new(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        problem = _new_session_problem(body, self.avatars, self.voices)
        if problem:
            return _error(400, CODE_INVALID_PARAMETER, problem)
        if len(self.open_sessions()) >= self.max_concurrent:
            return _error(
                400,
                CODE_CONCURRENT_LIMIT,
                "Concurrent limit reached, please make sure you have closed other sessions",
            )
        now = self.clock()
        idle = (
            None
            if body.get("disable_idle_timeout")
            else float(body.get("activity_idle_timeout") or DEFAULT_IDLE_TIMEOUT)
        )
        session = StreamingSession(str(uuid.uuid4()), body, now, now, idle)
        self.sessions[session.session_id] = session
        return web.json_response(
            envelope(
                {
                    "session_id": session.session_id,
                    "url": f"wss://fake-livekit.invalid/heygen/{session.session_id}",
                    "access_token": session.access_token,
                    "realtime_endpoint": f"wss://fake-realtime.invalid/{session.session_id}",
                    "is_paid": True,
                    "session_duration_limit": 600,
                }
            )
        )

    async def _start(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if isinstance(session, web.Response):
            return session
        if session.state != "new":
            return _error(400, CODE_WRONG_STATE, "Session is not in correct state")
        session.state = "started"
        session.last_activity = self.clock()
        return web.json_response(envelope(None))

    async def _task(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if isinstance(session, web.Response):
            return session
        body = await self._body(request)
        assert isinstance(body, dict)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, CODE_MISSING_PARAMS, "Missing required parameter: text")
        task_type = body.get("task_type", "talk")
        task_mode = body.get("task_mode", "sync")
        if task_type not in {"repeat", "talk", "chat"} or task_mode not in {"sync", "async"}:
            return _error(400, CODE_INVALID_PARAMETER, "Invalid task_type or task_mode")
        if session.state != "started":
            return _error(400, CODE_WRONG_STATE, "Session is not in correct state")
        task = {
            "task_id": uuid.uuid4().hex,
            "text": text,
            "task_type": task_type,
            "task_mode": task_mode,
        }
        session.tasks.append(task)
        session.last_activity = self.clock()
        # ~15 characters a second is a fair speaking rate for a fake duration.
        return web.json_response(
            envelope({"task_id": task["task_id"], "duration_ms": round(len(text) / 15 * 1000, 1)})
        )

    async def _interrupt(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if isinstance(session, web.Response):
            return session
        session.interrupts += 1
        session.last_activity = self.clock()
        return web.json_response(envelope(None))

    async def _keep_alive(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if isinstance(session, web.Response):
            return session
        session.last_activity = self.clock()
        return web.json_response(envelope(None))

    async def _stop(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        if isinstance(session, web.Response):
            return session
        session.state, session.end_reason = "stopped", "closed by client"
        return web.json_response(envelope(None))

    async def _list(self, request: web.Request) -> web.Response:
        status = {"new": "new", "started": "connected"}
        return web.json_response(
            envelope(
                {
                    "sessions": [
                        {
                            "session_id": s.session_id,
                            "status": status[s.state],
                            "created_at": int(s.created_at),
                            "api_key_type": "regular",
                        }
                        for s in self.open_sessions()
                    ]
                }
            )
        )

    async def _avatar_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            envelope(
                [
                    {
                        "avatar_id": a,
                        "created_at": 1_720_000_000,
                        "is_public": True,
                        "status": "ACTIVE",
                    }
                    for a in sorted(self.avatars)
                ],
                message="Success",
            )
        )


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(error_body(status, code, message), status=status)


def _new_session_problem(body: dict[str, Any], avatars: set[str], voices: set[str]) -> str:
    if body.get("version") != "v2":
        return "version must be v2 (LiveKit); the v1 WebRTC transport is retired"
    avatar = body.get("avatar_id") or body.get("avatar_name")
    if avatar is not None and avatar not in avatars:
        return f"Avatar not found: {avatar}"
    if body.get("quality", "high") not in {"high", "medium", "low"}:
        return "quality must be high, medium or low"
    if body.get("video_encoding", "VP8") not in {"H264", "VP8"}:
        return "video_encoding must be H264 or VP8"
    voice = body.get("voice") or {}
    if not isinstance(voice, dict):
        return "voice must be an object"
    if voice.get("voice_id") is not None and voice["voice_id"] not in voices:
        return f"Voice not found: {voice['voice_id']}"
    if voice.get("emotion") is not None and voice["emotion"] not in {
        "excited",
        "serious",
        "friendly",
        "soothing",
        "broadcaster",
    }:
        return "Unknown voice emotion"
    idle = body.get("activity_idle_timeout")
    if idle is not None and not (isinstance(idle, int) and 30 <= idle <= 3600):
        return "activity_idle_timeout must be between 30 and 3600 seconds"
    return ""
