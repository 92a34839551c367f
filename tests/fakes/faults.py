"""Fault injection and a request log for every loopback fake server.

A fake names its routes (`app.router.add_post(path, handler, name="create_video")`) and calls
`install_faults(app, faults, error_body=...)`. Tests then queue faults per route name and read
back what the client sent:

    faults.add("create_video", Fault.server_error())
    faults.add("video_status", Fault.rate_limited(retry_after="2"), Fault.server_error())
    faults.add("start_session", Fault.api_error(10007, "Concurrent limit reached", status=400))
    faults.add("video_status", Fault.stall(event))      # hangs until event.set()
    ...
    assert len(faults.requests("create_video")) == 1

Queued faults are consumed one per matching request, in order; then the route behaves normally.
The route name `"*"` matches any route. Each fake passes `error_body(status, code, message)` so
faults answer in that API's own envelope.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ErrorBody = Callable[[int, "int | str | None", str], Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ANY_ROUTE = "*"


def default_error_body(status: int, code: int | str | None, message: str) -> Any:
    return {"code": code if code is not None else status, "message": message, "data": None}


@dataclass(frozen=True)
class Fault:
    """One injected failure. Build with the class methods."""

    status: int = 500
    code: int | str | None = None
    message: str = "Internal Server Error"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # raw JSON body; overrides the fake's envelope when set
    stall: asyncio.Event | None = None  # wait for this before answering (never set: hang)
    pass_through: bool = False  # after the stall, let the real handler answer
    # "drop": the real handler acts, then the connection closes with no response (the
    # request was processed, the client cannot know); "hang": it acts, then never answers;
    # "error": it acts, then the fake answers `status` (a 5xx after the write).
    after_processing: str = ""

    @classmethod
    def rate_limited(
        cls,
        retry_after: str | None = "1",
        *,
        code: int | str | None = None,
        message: str = "Too Many Requests",
    ) -> Fault:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=429, code=code, message=message, headers=headers)

    @classmethod
    def server_error(cls, status: int = 500, message: str = "Internal Server Error") -> Fault:
        return cls(status=status, message=message)

    @classmethod
    def unauthorized(cls, code: int | str | None = None, message: str = "Unauthorized") -> Fault:
        return cls(status=401, code=code, message=message)

    @classmethod
    def api_error(cls, code: int | str, message: str, *, status: int = 400) -> Fault:
        """An API error code in the fake's envelope, e.g. 10006 session not found."""
        return cls(status=status, code=code, message=message)

    @classmethod
    def raw(cls, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Fault:
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def drop_after_processing(cls) -> Fault:
        """The request takes effect, then the connection drops before the response."""
        return cls(after_processing="drop")

    @classmethod
    def error_after_processing(cls, status: int = 503) -> Fault:
        """The request takes effect, then the server answers a 5xx (it may or may not have
        acted: the client cannot know)."""
        return cls(status=status, message="Service Unavailable", after_processing="error")

    @classmethod
    def hang_after_processing(cls, event: asyncio.Event | None = None) -> Fault:
        """The request takes effect, then no response comes (until `event`, then a drop)."""
        return cls(after_processing="hang", stall=event or asyncio.Event())

    @classmethod
    def stall_until(cls, event: asyncio.Event | None = None, *, then_answer: bool = True) -> Fault:
        """Hold the request until `event` is set (or the server stops), then answer normally
        (`then_answer`) or with a 500. With no event the request hangs: a client timeout."""
        return cls(stall=event or asyncio.Event(), pass_through=then_answer)


@dataclass(frozen=True)
class RecordedRequest:
    route: str | None
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any


class Faults:
    """Queued faults per route name, and the log of every request the fake received."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}
        self.log: list[RecordedRequest] = []
        self._stalls: list[asyncio.Event] = []

    def add(self, route: str, *faults: Fault, times: int = 1) -> None:
        queue = self._queues.setdefault(route, deque())
        for _ in range(times):
            queue.extend(faults)

    def clear(self) -> None:
        self._queues.clear()

    def take(self, route: str | None) -> Fault | None:
        for name in (route, ANY_ROUTE):
            queue = self._queues.get(name) if name else None
            if queue:
                return queue.popleft()
        return None

    def pending(self, route: str) -> int:
        return len(self._queues.get(route, ()))

    def requests(
        self, route: str | None = None, *, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.log
            if (route is None or r.route == route)
            and (method is None or r.method == method.upper())
            and (path is None or r.path == path)
        ]

    def release_stalls(self) -> None:
        """Let every stalled request finish (called on server shutdown)."""
        for event in self._stalls:
            event.set()

    def _track(self, event: asyncio.Event) -> None:
        self._stalls.append(event)


# Fakes store their Faults here so `serve()` can release stalled requests on shutdown.
FAULTS_KEY: web.AppKey[Faults] = web.AppKey("faults", Faults)


def faults_middleware(faults: Faults, *, error_body: ErrorBody = default_error_body) -> Any:
    """aiohttp middleware: log each request, then apply the next queued fault for its route."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        faults.log.append(
            RecordedRequest(
                route,
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                raw,
                parsed,
            )
        )
        fault = faults.take(route)
        if fault is None:
            return await handler(request)
        if fault.after_processing:
            await handler(request)
            if fault.after_processing == "error":
                body = error_body(fault.status, fault.code, fault.message)
                return web.json_response(body, status=fault.status)
            if fault.stall is not None:
                faults._track(fault.stall)
                await fault.stall.wait()
            if request.transport is not None:
                request.transport.close()
            return web.Response()  # never reaches the client: its connection is gone
        if fault.stall is not None:
            faults._track(fault.stall)
            await fault.stall.wait()
            if fault.pass_through:
                return await handler(request)
        body = (
            fault.body
            if fault.body is not None
            else error_body(fault.status, fault.code, fault.message)
        )
        return web.json_response(body, status=fault.status, headers=dict(fault.headers))

    return middleware


def install_faults(
    app: web.Application, faults: Faults, *, error_body: ErrorBody = default_error_body
) -> None:
    """Add the fault middleware to `app` (before it starts) and remember `faults` in it."""
    app.middlewares.append(faults_middleware(faults, error_body=error_body))
    app[FAULTS_KEY] = faults
