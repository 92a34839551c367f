"""A loopback server speaking OpenAI's chat-completions protocol, failures included.

`POST /v1/chat/completions` with `stream: true` answers with server-sent events, one
`chat.completion.chunk` per token (`data: {json}` lines, then `data: [DONE]`), as documented
at https://platform.openai.com/docs/api-reference/chat-streaming ; without `stream` it answers
one `chat.completion` object. Every request must carry `Authorization: Bearer <key>`.

Tests script the replies (`FakeOpenAI.replies`, consumed in order, then `default`):
a `Reply` can be an HTTP error (500, 429 with Retry-After), can hold its first token until
the test sets `gate`, can break the connection or send an error event mid-stream, and can
wait `token_delay` seconds between tokens (benchmarks only). Every request body is recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

API_KEY = "sk-test-fake-key-1234"


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    retry_after: float | None = None
    gate: asyncio.Event | None = None  # content waits until the test sets it
    fail_after_tokens: int | None = None
    fail_mode: Literal["disconnect", "error_event"] = "disconnect"
    token_delay: float = 0.0
    refusal: str | None = None  # OpenAI's structured refusal instead of content


def tokens(text: str) -> list[str]:
    """Word-sized pieces with their leading space, the way models stream."""
    return re.findall(r"\s*\S+", text) or [text]


@dataclass
class FakeOpenAI:
    api_key: str = API_KEY
    model: str = "gpt-4o-mini"
    default: Reply = field(default_factory=lambda: Reply(text="Default answer [1]."))
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    unauthorized: int = 0
    received: asyncio.Event = field(default_factory=asyncio.Event)  # set by every request

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        return app

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if self.replies else self.default

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.unauthorized += 1
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        body = await request.json()
        self.requests.append(body)
        self.received.set()
        reply = self.next_reply()
        if reply.status != 200:
            headers = {}
            if reply.retry_after is not None:
                headers["Retry-After"] = f"{reply.retry_after:g}"
            kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
            return _error(reply.status, f"Fake failure {reply.status}.", kind, headers)
        if body.get("stream"):
            return await self._stream(request, body, reply)
        if reply.gate is not None:
            await reply.gate.wait()
        if reply.token_delay:  # generating the whole answer takes as long as streaming it
            await asyncio.sleep(reply.token_delay * len(tokens(reply.text)))
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.refusal is not None:
            message = {"role": "assistant", "content": None, "refusal": reply.refusal}
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    async def _stream(
        self, request: web.Request, body: dict[str, Any], reply: Reply
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        if reply.gate is not None:
            await reply.gate.wait()
        if reply.refusal is not None:
            await send({"refusal": reply.refusal})
        for i, token in enumerate(tokens(reply.text) if reply.text else []):
            if reply.fail_after_tokens is not None and i == reply.fail_after_tokens:
                if reply.fail_mode == "error_event":
                    error = {"error": {"message": "Fake overload.", "type": "server_error"}}
                    await response.write(f"data: {json.dumps(error)}\n\n".encode())
                    return response
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-answer
                return response
            if reply.token_delay:
                await asyncio.sleep(reply.token_delay)
            await send({"content": token})
        await send({}, finish="stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
            await response.write(f"data: {json.dumps(usage)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)
