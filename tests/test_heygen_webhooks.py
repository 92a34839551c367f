"""Webhook endpoints (v3) and delivery verification, end to end against the HeyGen fake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.heygen.clients import HeyGenClients
from bot.heygen.errors import HeyGenError
from bot.heygen.video import RenderRequest
from bot.heygen.webhooks import (
    EVENT_ID_HEADER,
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    VIDEO_EVENTS,
    WebhookEvent,
    WebhookVerificationError,
    parse_event,
    sign,
    verify_webhook,
)
from tests.fakes.clients import served_clients
from tests.fakes.faults import Fault
from tests.fakes.heygen import API_KEY, FakeHeyGen
from tests.fakes.server import serve
from tests.fakes.sleeps import Sleeps

SECRET = "whsec_unit_test_secret_0001"
BODY = json.dumps(
    {
        "event_type": "avatar_video.success",
        "event_data": {"video_id": "v1", "url": "https://x/v1.mp4", "callback_id": "job-1"},
    }
).encode()


@pytest.fixture
def fake() -> FakeHeyGen:
    return FakeHeyGen(polls_to_complete=None)


@pytest.fixture
async def clients(fake: FakeHeyGen) -> AsyncIterator[HeyGenClients]:
    async with served_clients(
        fake.app(), sleep=Sleeps(), backoff_base=0.001, heygen_api_key=API_KEY, _env_file=None
    ) as c:
        yield c


# --- verifier (pure) ------------------------------------------------------------------------


def headers_for(body: bytes, secret: str = SECRET, **extra: str) -> dict[str, str]:
    return {
        SIGNATURE_HEADER: sign(body, secret),
        TIMESTAMP_HEADER: "1000",
        EVENT_ID_HEADER: "evt_1",
        **extra,
    }


def test_good_signature_is_accepted() -> None:
    event = verify_webhook(BODY, headers_for(BODY), SECRET, now=1010)
    assert event.succeeded and event.event_data.video_id == "v1"
    assert event.event_data.url == "https://x/v1.mp4" and event.event_id == "evt_1"


def test_header_names_are_case_insensitive() -> None:
    h = {k.lower(): v for k, v in headers_for(BODY).items()}
    assert verify_webhook(BODY, h, SECRET, now=1000).event_data.callback_id == "job-1"


@pytest.mark.parametrize(
    ("body", "headers", "secret", "reason"),
    [
        (BODY.replace(b"v1.mp4", b"evil.mp4"), headers_for(BODY), SECRET, "does not match"),
        (BODY, headers_for(BODY, "whsec_other_secret"), SECRET, "does not match"),
        (BODY, {TIMESTAMP_HEADER: "1000"}, SECRET, "missing Heygen-Signature"),
        (BODY, headers_for(BODY), "", "no webhook secret"),
        (BODY, headers_for(BODY, **{TIMESTAMP_HEADER: "10"}), SECRET, "too old"),
        (b"not json", headers_for(b"not json"), SECRET, "not a HeyGen webhook event"),
    ],
    ids=["tampered-body", "wrong-secret", "missing-header", "no-secret", "stale", "not-json"],
)
def test_bad_deliveries_are_rejected(
    body: bytes, headers: dict[str, str], secret: str, reason: str
) -> None:
    with pytest.raises(WebhookVerificationError, match=reason) as info:
        verify_webhook(body, headers, secret, now=1000)
    assert SECRET not in str(info.value)


# --- endpoint management --------------------------------------------------------------------


async def test_register_list_rotate_delete_endpoint(clients, fake) -> None:
    fake.validate_endpoints = False  # bot.example is not served here
    hooks = clients.webhooks
    ep = await hooks.create_endpoint("https://bot.example/heygen/webhook", list(VIDEO_EVENTS))
    assert ep.secret is not None and ep.secret.get_secret_value().startswith("whsec_")
    assert ep.secret.get_secret_value() not in repr(ep)  # SecretStr never prints
    assert fake.endpoints[ep.endpoint_id].events == ["avatar_video.success", "avatar_video.fail"]
    page = await hooks.list_endpoints()
    assert [e.endpoint_id for e in page.data] == [ep.endpoint_id]
    assert page.data[0].secret is None  # only shown on create and rotate
    rotated = await hooks.rotate_secret(ep.endpoint_id)
    assert rotated.secret.get_secret_value() != ep.secret.get_secret_value()
    await hooks.delete_endpoint(ep.endpoint_id)
    assert (await hooks.list_endpoints()).data == []
    with pytest.raises(HeyGenError) as info:
        await hooks.delete_endpoint(ep.endpoint_id)
    assert info.value.is_not_found


async def test_register_retried_on_500_creates_one_endpoint(clients, fake) -> None:
    fake.validate_endpoints = False  # bot.example is not served here
    fake.faults.add("create_endpoint", Fault.server_error())
    await clients.webhooks.create_endpoint("https://bot.example/hook")
    assert len(fake.faults.requests("create_endpoint")) == 2
    assert len(fake.endpoints) == 1  # same Idempotency-Key: replayed, not duplicated


async def test_unknown_event_type_is_rejected(clients) -> None:
    with pytest.raises(HeyGenError) as info:
        await clients.webhooks.create_endpoint("https://bot.example/hook", ["video.exploded"])
    assert info.value.status == 400 and info.value.code == "invalid_parameter"


# --- signed deliveries end to end -----------------------------------------------------------


async def test_an_endpoint_is_validated_with_options_before_it_is_added(clients, fake) -> None:
    receiver = web.Application()
    receiver.router.add_post("/no-options", _ok)
    receiver.router.add_route("OPTIONS", "/hook", _ok)
    async with serve(receiver) as base:
        with pytest.raises(HeyGenError) as info:
            await clients.webhooks.create_endpoint(base + "/no-options")
        assert info.value.status == 400 and "OPTIONS" in info.value.message
        ep = await clients.webhooks.create_endpoint(base + "/hook")
    assert [e.endpoint_id for e in fake.endpoints.values()] == [ep.endpoint_id]
    assert fake.probes == [(base + "/no-options", 405), (base + "/hook", 200)]
    assert await clients.webhooks.find_endpoint(base + "/hook/") == ep.model_copy(
        update={"secret": None}
    )


async def _ok(_request: web.Request) -> web.Response:
    return web.Response()


def _receiver(received: asyncio.Queue, secrets_by_path: dict[str, str]) -> web.Application:
    """Takes a delivery on any path: verified when the path has a secret, else unsigned."""

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            secret = secrets_by_path.get(request.path)
            event = (
                verify_webhook(raw, request.headers, secret)
                if secret
                else parse_event(raw, request.headers)
            )
        except WebhookVerificationError as exc:
            await received.put((request.path, exc.reason))
            return web.Response(status=401)
        await received.put((request.path, event))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{path}", receive)
    app.router.add_route("OPTIONS", "/{path}", _ok)
    return app


async def test_completion_goes_unsigned_to_the_callback_and_signed_to_the_endpoint(
    clients, fake
) -> None:
    received: asyncio.Queue[tuple[str, WebhookEvent | str]] = asyncio.Queue()
    secrets_by_path: dict[str, str] = {}
    async with serve(_receiver(received, secrets_by_path)) as base:
        ep = await clients.webhooks.create_endpoint(base + "/endpoint", list(VIDEO_EVENTS))
        assert ep.secret is not None
        secrets_by_path["/endpoint"] = ep.secret.get_secret_value()
        video_id = await clients.video.submit(
            RenderRequest(
                script="Hi",
                avatar_id="Wayne_20240711",
                callback_url=base + "/callback",
                job_id="job-9",
            )
        )
        fake.complete(video_id)
        got = dict([await asyncio.wait_for(received.get(), 5) for _ in range(2)])
    for path in ("/callback", "/endpoint"):
        event = got[path]
        assert isinstance(event, WebhookEvent), event
        assert event.succeeded and event.event_data.video_id == video_id
        assert event.event_data.callback_id == "job-9"
        assert event.event_data.url == fake.video_url(video_id)
    assert got["/endpoint"].signed and got["/endpoint"].event_id.startswith("evt_")
    assert not got["/callback"].signed and got["/callback"].event_id is None


async def test_failure_is_delivered_and_a_wrong_secret_is_refused(clients, fake) -> None:
    received: asyncio.Queue[tuple[str, WebhookEvent | str]] = asyncio.Queue()
    async with serve(_receiver(received, {"/cb": "whsec_not_it"})) as base:
        await clients.webhooks.create_endpoint(base + "/cb", list(VIDEO_EVENTS))
        video_id = await clients.video.submit(
            RenderRequest(script="Hi", avatar_id="Wayne_20240711")
        )
        fake.fail(video_id)
        assert await asyncio.wait_for(received.get(), 5) == (
            "/cb",
            "signature does not match the body",
        )
        delivery = await asyncio.wait_for(fake.deliveries.get(), 5)
    assert delivery.status == 401
    assert delivery.event["event_type"] == "avatar_video.fail"
    assert delivery.event["event_data"]["msg"] == "Avatar rendering timed out"


def test_a_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    # how aiohttp hands over bytes that are not UTF-8 (surrogateescape)
    headers = {**headers_for(BODY), SIGNATURE_HEADER: b"\xe9\xff".decode(errors="surrogateescape")}
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify_webhook(BODY, headers, SECRET, now=1000)


def test_an_oversized_body_is_refused_even_when_correctly_signed() -> None:
    padded = BODY[:-1] + b" " * MAX_BODY_BYTES + b"}"  # a valid event, signed, but huge
    with pytest.raises(WebhookVerificationError, match="body too large") as info:
        verify_webhook(padded, headers_for(padded), SECRET, now=1000)
    assert str(MAX_BODY_BYTES) in info.value.reason
    assert verify_webhook(BODY, headers_for(BODY), SECRET, now=1000).succeeded
