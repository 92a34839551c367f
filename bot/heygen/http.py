"""The HTTP core every HeyGen / LiveAvatar family module builds on.

`ApiClient` sends one JSON request with a timeout, retries what is safe to retry, and turns
every failure into a `HeyGenError` with secrets redacted. It does not know any envelope:
family modules unwrap `{code, message, data}` (HeyGen v1, LiveAvatar) or `{error, data}`
(HeyGen v2 and v3) themselves (see `envelopes.py`). `HttpSession` owns the one
`aiohttp.ClientSession` a process shares.

Retry policy (why each case is safe):
- `idempotent=True` (GETs, calls the API documents as safe to repeat: keep-alive, stop,
  interrupt, and v3 creates sent with an `Idempotency-Key`, which the server replays):
  retried on 429, 5xx, timeouts and connection errors, with exponential backoff and full
  jitter, honouring `Retry-After` (seconds or HTTP-date).
- `idempotent=False` (creates): retried only when the server provably did nothing:
  * 429 *with* `Retry-After`: the gateway rejected the request before it ran;
  * a connect failure (`ClientConnectorError`): no byte of the request left this process.
  A 5xx, a timeout or a dropped connection after sending is ambiguous (the video may exist),
  so it is raised and never silently sent twice.
A `Retry-After` longer than `max_retry_after` is not slept through; the error is raised with
`retry_after` set so the caller can reschedule.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.heygen.errors import (
    HeyGenAuthError,
    HeyGenConnectionError,
    HeyGenError,
    HeyGenProtocolError,
    HeyGenTimeout,
)
from bot.redaction import redact, register_secrets

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

_SENSITIVE_HEADERS = ("x-api-key", "authorization")
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# v3 answers 409 "request_in_progress" when a retry with the same Idempotency-Key arrives while
# the first is still running (https://developers.heygen.com/reference/create-video).
_IN_PROGRESS = "request_in_progress"
_MAX_BODY_CHARS = 2000  # keep error bodies readable in logs


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _secret_values(headers: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for name, value in headers.items():
        if name.lower() in _SENSITIVE_HEADERS and value:
            out.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                out.append(token)
    return out


def _error_fields(payload: Any) -> tuple[int | str | None, str | None]:
    """(code, message) from any HeyGen/LiveAvatar error envelope we know of.

    `{code, message}` (v1, LiveAvatar), `{error: {code, message}}` (v2/v3),
    `{error: "text"}`, `{message}` (API gateway, e.g. a bare 429).
    """
    if not isinstance(payload, dict):
        return None, None
    err = payload.get("error")
    if isinstance(err, dict):
        code = err.get("code")
        message = err.get("message") or err.get("detail")
        return code, str(message) if message is not None else None
    code = payload.get("code")
    message = payload.get("message") or payload.get("msg") or payload.get("detail")
    if isinstance(err, str) and err:
        message = err
    return code, str(message) if message is not None else None


class ApiClient:
    """JSON over HTTP for one API base URL, with timeouts, safe retries and redaction."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
        secrets: Sequence[str] = (),
        service: str = "HeyGen",
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", **headers}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.service = service
        self._secrets = [*secrets, *_secret_values(self._headers)]
        register_secrets(self._secrets)  # so errors raised past this core are redacted too
        # Injectable so tests can see the delays asked for without waiting them out.
        self._sleep = sleep

    def redact(self, text: str, extra: Sequence[str] = ()) -> str:
        return redact(text, [*self._secrets, *extra])

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number `attempt` (0-based)."""
        cap = min(self.backoff_max, self.backoff_base * (2**attempt))
        return random.uniform(0, cap)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> Any:
        """Send one request; return the parsed JSON body (None when empty) or raise."""
        method = method.upper()
        url = self.base_url + "/" + path.lstrip("/")
        call_headers = {**self._headers, **(headers or {})}
        secrets = _secret_values(headers or {})
        register_secrets(secrets)  # per-call bearer tokens (session tokens)
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                return await self._send_once(method, path, url, json, query, call_headers, secrets)
            except HeyGenError as exc:
                delay = self._retry_delay(exc, attempt, idempotent)
                if delay is None:
                    raise
                log.info(
                    "%s %s %s failed (%s); retry %d/%d in %.2fs",
                    self.service,
                    method,
                    path,
                    exc.status or type(exc).__name__,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                await self._sleep(delay)
                attempt += 1

    def _retry_delay(self, exc: HeyGenError, attempt: int, idempotent: bool) -> float | None:
        if attempt >= self.max_retries:
            return None
        if exc.retry_after is not None and exc.retry_after > self.max_retry_after:
            return None
        if exc.status == 429 and exc.retry_after is not None:
            return exc.retry_after  # rejected before it ran: safe even for creates
        if isinstance(exc, _NotSent):
            return self.backoff(attempt)
        if not idempotent:
            return None
        if isinstance(exc, HeyGenTimeout | HeyGenConnectionError) or (
            exc.status in _RETRYABLE_STATUS or exc.code == _IN_PROGRESS
        ):
            return exc.retry_after if exc.retry_after is not None else self.backoff(attempt)
        return None

    async def _send_once(
        self,
        method: str,
        path: str,
        url: str,
        json: Any,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        secrets: Sequence[str],
    ) -> Any:
        try:
            async with self._session.request(
                method,
                url,
                json=json,
                params=params or None,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except aiohttp.ClientConnectorError as exc:
            raise _NotSent(
                f"cannot connect to {self.base_url} ({_reason(exc)})",
                service=self.service,
                method=method,
                path=path,
            ) from None
        except TimeoutError:
            raise HeyGenTimeout(
                f"no response within {self.timeout:g}s"
                + ("" if method == "GET" else "; the request may still have been processed"),
                service=self.service,
                method=method,
                path=path,
            ) from None
        except aiohttp.ClientError as exc:
            raise HeyGenConnectionError(
                self.redact(f"connection failed ({_reason(exc)})", secrets),
                service=self.service,
                method=method,
                path=path,
            ) from None

        # Redact, then cut: a cut first could split a secret so the rest no longer matches.
        body = self.redact(text, secrets)[:_MAX_BODY_CHARS]
        payload: Any = None
        parse_error: str | None = None
        if text.strip():
            try:
                payload = jsonlib.loads(text)
            except ValueError as exc:
                parse_error = str(exc)

        if status >= 400:
            code, message = _error_fields(payload)
            message = self.redact(message, secrets) if message else _status_text(status)
            cls = HeyGenAuthError if status in (401, 403) else HeyGenError
            raise cls(
                message,
                status=status,
                code=code,
                body=body,
                retry_after=retry_after,
                service=self.service,
                method=method,
                path=path,
            )
        if parse_error is not None:
            raise HeyGenProtocolError(
                f"{method} {path} returned a non-JSON body",
                status=status,
                body=body,
                service=self.service,
                method=method,
                path=path,
            )
        return payload


class _NotSent(HeyGenConnectionError):
    """Connecting failed, so nothing was sent: safe to retry even a create."""


def _reason(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if os_error is not None and getattr(os_error, "strerror", None):
        return str(os_error.strerror).lower()
    return type(exc).__name__


def _status_text(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def path_segment(value: str) -> str:
    """An id as exactly one URL path segment, so odd input can never change the path."""
    return quote(value, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class HttpSession:
    """The one `aiohttp.ClientSession` a process shares; build family clients from it.

    Use as `async with HttpSession() as http:`; `http.session` is the shared session.
    """

    def __init__(self, *, limit: int = 100) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Created lazily inside the running loop, as aiohttp requires.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> HttpSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
