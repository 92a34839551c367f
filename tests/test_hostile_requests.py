"""Requests from strangers: unsigned, stale, malformed or huge, sent over real HTTP to the
bot's `/slack/events` and `/heygen/webhook`. Each is a fast 401 with nothing logged but a
line, never a 500 or a traceback, and a flood of them does not stop signed events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.redaction import LOG_LINE_LIMIT, RedactingFilter
from bot.web.webhook import add_webhook_routes
from tests.fakes.server import serve
from tests.slack_harness import envelope, running_bot, sign
from tests.test_slack_app import mention

MEGABYTE_JSON = json.dumps({"type": "event_callback", "pad": "A" * (1024 * 1024 - 64)})


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("body", "content_type", "headers"),
    [
        ('{"x":', "application/json", {}),
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded", {}),
        ('{"x":', "application/json", {"X-Slack-Request-Timestamp": "soon"}),
        ('{"x":', "application/json", {"X-Slack-Signature": "v0=é" + "0" * 63}),
        ('{"type":"url_verification"}', "application/json", {"X-Slack-Signature": "v0=zz"}),
    ],
    ids=["truncated-json", "bad-form-payload", "non-numeric-timestamp", "non-ascii-sig", "junk"],
)
async def test_malformed_unsigned_requests_are_a_401_without_a_traceback(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    body: str,
    content_type: str,
    headers: dict[str, str],
) -> None:
    async with running_bot(tmp_path) as bot:
        with caplog.at_level(logging.DEBUG):
            reply = await bot.post(body, content_type, signed=False, headers=headers)
        assert reply.status == 401, reply.text
        _no_tracebacks(caplog)
        assert not bot.slack.posted()


async def test_a_wrong_secret_and_a_stale_signature_are_refused(tmp_path: Path) -> None:
    body = json.dumps(envelope(mention()))
    async with running_bot(tmp_path) as bot:
        wrong = await bot.post(body, "application/json", secret="not-the-secret")
        stale = await bot.post(
            body, "application/json", signed=False, headers=sign(body, ts=int(time.time()) - 400)
        )
        assert (wrong.status, stale.status) == (401, 401)
        assert not bot.slack.calls("chat.startStream") and not bot.slack.posted()


async def test_a_signed_but_malformed_body_is_a_400_not_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(tmp_path) as bot:
        with caplog.at_level(logging.DEBUG):
            truncated = await bot.post('{"x":', "application/json")
            form = await bot.post(
                urlencode({"payload": "{not json"}), "application/x-www-form-urlencoded"
            )
        assert (truncated.status, form.status) == (400, 400)
        _no_tracebacks(caplog)


async def test_an_unsigned_megabyte_is_refused_and_its_body_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_bot(tmp_path) as bot:
        with caplog.at_level(logging.DEBUG):
            replies = [
                await bot.post(MEGABYTE_JSON, "application/json", signed=False),
                await bot.post(MEGABYTE_JSON, "application/json", secret="wrong-secret"),
            ]
        assert [r.status for r in replies] == [401, 401]
        assert not any("AAAAAAAAAAAAAAAA" in r.getMessage() for r in caplog.records)


async def test_signed_events_are_acked_and_answered_during_an_unsigned_flood(
    tmp_path: Path,
) -> None:
    """Eight senders of unsigned megabytes while a signed mention arrives: the mention is
    acked (200) and answered; every flood request is a 401. (The ack latency during such a
    flood is measured by `python -m bench flood`, not asserted here.)"""
    async with running_bot(tmp_path) as bot:
        stop, flooding = asyncio.Event(), asyncio.Event()
        statuses: list[int] = []

        async def sender(secret: str | None) -> None:
            while not stop.is_set():
                signed = secret is not None
                reply = await bot.post(
                    MEGABYTE_JSON, "application/json", signed=signed, secret=secret or "x"
                )
                statuses.append(reply.status)
                if len(statuses) >= 16:
                    flooding.set()

        flood = [asyncio.ensure_future(sender(None if i % 2 else "wrong-secret")) for i in range(8)]
        try:
            await flooding.wait()
            acks = [await bot.event(mention(ts=f"1700000000.00010{i}")) for i in range(3)]
        finally:
            stop.set()
            await asyncio.gather(*flood)
        assert [a.status for a in acks] == [200, 200, 200]
        assert set(statuses) == {401}
        await bot.slack.wait_for(lambda: len(bot.slack.posted("C1")) == 3)


def test_the_log_filter_bounds_a_huge_line_and_still_hides_secrets() -> None:
    secret = "xoxb-" + "1" * 40
    record = logging.LogRecord(
        "slack_bolt", logging.INFO, __file__, 1, "body: %s %s", (secret, "B" * 2_000_000), None
    )
    RedactingFilter().filter(record)
    message = record.getMessage()
    assert len(message) <= LOG_LINE_LIMIT + 100
    assert secret not in message and "characters not logged" in message


def test_a_secret_cut_by_the_bound_is_dropped_whole() -> None:
    secret = "xoxb-" + "7" * 60
    pad = "w " * ((LOG_LINE_LIMIT - 20) // 2)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, pad + secret + " tail", (), None)
    RedactingFilter().filter(record)
    assert "77777777" not in record.getMessage()


async def test_a_non_ascii_heygen_signature_is_a_401_not_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The raw header bytes as an attacker sends them (not UTF-8), over a real socket."""
    app = web.Application()
    settings = SimpleNamespace(heygen_webhook_secret=SecretStr("whsec_test_secret_value"))
    add_webhook_routes(app, SimpleNamespace(settings=settings))
    async with serve(app) as base:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = b'{"event_type":"avatar_video.success"}'
        writer.write(
            b"POST /heygen/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Heygen-Signature: \xff\xfe" + b"a" * 62 + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
    assert status_line.split()[1] == b"401"
    _no_tracebacks(caplog)
