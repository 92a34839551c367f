"""The HTTP core: retries only what is safe, honours Retry-After, times out, never leaks keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web

from bot.config import load_settings
from bot.heygen.clients import heygen_clients
from bot.heygen.errors import (
    HeyGenAuthError,
    HeyGenConnectionError,
    HeyGenError,
    HeyGenTimeout,
    MissingApiKeyError,
    redact,
)
from bot.heygen.http import ApiClient, parse_retry_after
from tests.fakes.faults import Fault, Faults, install_faults
from tests.fakes.server import serve
from tests.fakes.sleeps import Sleeps

KEY = "sk-test-SECRET-key-0123456789"


def build_echo_app(faults: Faults) -> web.Application:
    """A minimal service: GET/POST /v1/thing answer `{code: 100, data: ...}`."""

    async def get_thing(request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != KEY:
            return web.json_response(
                {"code": 400112, "message": f"Unauthorized key {request.headers.get('X-Api-Key')}"},
                status=401,
            )
        return web.json_response({"code": 100, "data": {"ok": True}, "message": "Success"})

    async def create_thing(request: web.Request) -> web.Response:
        return web.json_response({"code": 100, "data": {"id": "t1"}, "message": "Success"})

    app = web.Application()
    install_faults(app, faults)
    app.router.add_get("/v1/thing", get_thing, name="get_thing")
    app.router.add_post("/v1/thing", create_thing, name="create_thing")
    return app


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
async def base_url(faults: Faults) -> AsyncIterator[str]:
    async with serve(build_echo_app(faults)) as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client(
    session: aiohttp.ClientSession,
    base_url: str,
    sleeps: Sleeps,
    *,
    key: str = KEY,
    timeout: float = 5.0,
) -> ApiClient:
    return ApiClient(
        session,
        base_url,
        headers={"X-Api-Key": key},
        timeout=timeout,
        max_retries=3,
        backoff_base=0.001,
        secrets=[key],
        sleep=sleeps,
    )


async def test_get_retries_429_honouring_retry_after(session, base_url, faults) -> None:
    sleeps = Sleeps()
    faults.add("get_thing", Fault.rate_limited(retry_after="2"), Fault.server_error())
    body = await client(session, base_url, sleeps).request("GET", "/v1/thing", idempotent=True)
    assert body["data"] == {"ok": True}
    assert len(faults.requests("get_thing")) == 3
    assert sleeps.delays[0] == 2.0  # exactly what the server asked for
    assert 0 <= sleeps.delays[1] <= 0.002  # then tiny jittered backoff


async def test_retry_after_http_date_is_understood() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(later, usegmt=True))
    assert seconds is not None and 25 <= seconds <= 31
    assert parse_retry_after("not a date") is None


async def test_get_gives_up_after_max_retries_with_the_last_error(
    session, base_url, faults
) -> None:
    faults.add("get_thing", Fault.server_error(503, "Service Unavailable"), times=10)
    with pytest.raises(HeyGenError) as info:
        await client(session, base_url, Sleeps()).request("GET", "/v1/thing", idempotent=True)
    assert info.value.status == 503 and info.value.is_transient
    assert len(faults.requests("get_thing")) == 4  # 1 + max_retries
    assert str(info.value) == "HeyGen API error 503 (code 503): Service Unavailable"


async def test_create_is_sent_once_on_500(session, base_url, faults) -> None:
    faults.add("create_thing", Fault.server_error())
    with pytest.raises(HeyGenError) as info:
        await client(session, base_url, Sleeps()).request(
            "POST", "/v1/thing", json={"a": 1}, idempotent=False
        )
    assert info.value.status == 500
    assert len(faults.requests("create_thing")) == 1


async def test_create_retried_on_429_with_retry_after_only(session, base_url, faults) -> None:
    sleeps = Sleeps()
    faults.add("create_thing", Fault.rate_limited(retry_after="1"))
    body = await client(session, base_url, sleeps).request(
        "POST", "/v1/thing", json={"a": 1}, idempotent=False
    )
    assert body["data"]["id"] == "t1"
    assert len(faults.requests("create_thing")) == 2 and sleeps.delays == [1.0]

    faults.add("create_thing", Fault.rate_limited(retry_after=None))
    with pytest.raises(HeyGenError) as info:
        await client(session, base_url, sleeps).request(
            "POST", "/v1/thing", json={"a": 1}, idempotent=False
        )
    assert info.value.is_rate_limited
    assert len(faults.requests("create_thing")) == 3


async def test_retry_after_beyond_the_cap_is_raised_not_slept(session, base_url, faults) -> None:
    faults.add("get_thing", Fault.rate_limited(retry_after="3600"))
    with pytest.raises(HeyGenError) as info:
        await client(session, base_url, Sleeps()).request("GET", "/v1/thing", idempotent=True)
    assert info.value.retry_after == 3600.0
    assert len(faults.requests("get_thing")) == 1


async def test_timeout_raises_a_clear_error_and_get_is_retried(session, base_url, faults) -> None:
    faults.add("get_thing", Fault.stall_until())  # hangs until the server stops
    body = await client(session, base_url, Sleeps(), timeout=0.2).request(
        "GET", "/v1/thing", idempotent=True
    )
    assert body["data"] == {"ok": True}
    assert len(faults.requests("get_thing")) == 2

    faults.add("create_thing", Fault.stall_until())
    with pytest.raises(HeyGenTimeout) as info:
        await client(session, base_url, Sleeps(), timeout=0.2).request(
            "POST", "/v1/thing", json={}, idempotent=False
        )
    assert info.value.status is None
    assert "no response within 0.2s" in str(info.value)
    assert "POST /v1/thing" in str(info.value)
    assert len(faults.requests("create_thing")) == 1


async def test_connection_refused_is_retried_then_reported(session) -> None:
    # Bind and close a socket to get a loopback port nobody listens on.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    sleeps = Sleeps()
    with pytest.raises(HeyGenConnectionError) as info:
        await client(session, f"http://127.0.0.1:{port}", sleeps).request(
            "POST", "/v1/thing", json={}, idempotent=False
        )
    assert "cannot connect" in str(info.value)
    assert len(sleeps.delays) == 3  # nothing was sent, so even a create may retry


async def test_bad_key_is_an_auth_error_with_the_key_redacted(session, base_url) -> None:
    bad = "sk-wrong-KEY-abcdef-987654"
    with pytest.raises(HeyGenAuthError) as info:
        await client(session, base_url, Sleeps(), key=bad).request(
            "GET", "/v1/thing", idempotent=True
        )
    err = info.value
    assert err.status == 401 and err.code == 400112 and err.is_auth_error
    assert bad not in str(err) and bad not in err.body and bad not in repr(err)
    assert "[REDACTED]" in err.body
    assert str(err).startswith("HeyGen API error 401 (code 400112): Unauthorized key")


async def test_per_call_bearer_tokens_are_redacted_too(session, base_url, faults) -> None:
    token = "session-token-XYZ-123456"
    faults.add(
        "get_thing",
        Fault.raw(
            400,
            {
                "code": 10006,
                "message": f"bad token {token}",
                "data": {"session_token": "other-secret-value"},
            },
        ),
    )
    with pytest.raises(HeyGenError) as info:
        await client(session, base_url, Sleeps()).request(
            "GET", "/v1/thing", headers={"Authorization": f"Bearer {token}"}, idempotent=True
        )
    err = info.value
    assert err.is_session_not_found and err.is_not_found
    assert token not in str(err) and token not in err.body
    assert "other-secret-value" not in err.body


def test_redact_leaves_text_without_secrets_alone() -> None:
    assert redact("plain text", ["", "ab"]) == "plain text"
    assert redact('{"api_key": "zzz"}', []) == '{"api_key": "[REDACTED]"}'


async def test_missing_key_names_the_variable() -> None:
    settings = load_settings(heygen_api_key=None, liveavatar_api_key=None, _env_file=None)
    async with heygen_clients(settings) as clients:
        with pytest.raises(MissingApiKeyError) as info:
            clients.heygen_api()
        assert str(info.value) == "HEYGEN_API_KEY is not set; set it to your HeyGen API key"
        with pytest.raises(MissingApiKeyError, match="LIVEAVATAR_API_KEY"):
            clients.liveavatar_api()


def test_error_inside_a_200_envelope_reads_cleanly() -> None:
    err = HeyGenError("Missing required input parameters", status=200, code=40001)
    assert str(err) == "HeyGen API error (code 40001): Missing required input parameters"
    assert str(HeyGenTimeout("no response within 1s", method="GET", path="/v3/videos/x")) == (
        "HeyGen API request failed (GET /v3/videos/x): no response within 1s"
    )
