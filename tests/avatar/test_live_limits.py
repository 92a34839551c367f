"""The viewer page's routes under hostile use: stream caps, batched heartbeats, streams that end
with their link, throttled replays, foreign origins, security headers (issue 15). Real HTTP
against the bot's web routes on loopback; the LiveAvatar fake behind them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from bot.avatar.delivery import LiveScope
from bot.avatar.live.events import BusEvent
from tests.avatar_stack import liveavatar_stack
from tests.fakes.liveavatar import API_KEY, AVATAR_ID, FakeLiveAvatar

LIVE = {"liveavatar_api_key": API_KEY, "live_avatar_id": AVATAR_ID, "heygen_api_key": None}
SCOPE = LiveScope(team="T1", channel="C1", user="U1")


def stack(fake: FakeLiveAvatar, store, clock, tmp_path: Path, **settings):
    return liveavatar_stack(fake, store, clock, tmp_path / "data", **settings)


async def said(*sentences: str) -> AsyncIterator[str]:
    for s in sentences:
        yield s


async def open_stream(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
    """An SSE stream, read up to its snapshot (so it is counted and subscribed)."""
    resp = await http.get(url, headers={"Accept": "text/event-stream"})
    if resp.status == 200:
        while not (await resp.content.readline()).startswith(b"data:"):
            pass
    return resp


async def next_event(resp: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]]:
    fields: dict[str, str] = {}
    async with asyncio.timeout(10):
        while True:
            line = (await resp.content.readline()).decode()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if not line and "event" in fields:
                return fields["event"], json.loads(fields.get("data", "{}"))
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


async def test_streams_are_capped_per_link_per_client_and_overall(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    caps = {"live_streams_per_link": 2, "live_streams_per_client": 3, "live_streams_total": 4}
    async with stack(fake, store, clock, tmp_path, **caps) as s:
        d = s.delivery
        one = (await d.live_link(SCOPE)).rsplit("/", 1)[-1]
        two = (await d.live_link(LiveScope(team="T1", channel="C2"))).rsplit("/", 1)[-1]
        async with contextlib.AsyncExitStack() as streams, aiohttp.ClientSession() as http:
            url = f"{s.web_url}/live/{one}/events"
            for _ in range(2):
                resp = await open_stream(http, url)
                streams.callback(resp.close)
                assert resp.status == 200
            third = await open_stream(http, url)
            assert third.status == 429
            assert "too many windows" in (await third.json())["error"]
            # the page asks why (Accept: JSON) and is told the same sentence
            async with http.get(url, headers={"Accept": "application/json"}) as why:
                assert why.status == 429 and "too many windows" in (await why.json())["error"]
            resp = await open_stream(http, f"{s.web_url}/live/{two}/events")
            streams.callback(resp.close)
            assert resp.status == 200
            per_client = await open_stream(http, f"{s.web_url}/live/{two}/events")
            assert per_client.status == 429 and "your address" in (await per_client.json())["error"]
        # closed streams free their places (noticed within a couple of seconds)
        async with aiohttp.ClientSession() as http, asyncio.timeout(15):
            while (
                again := await open_stream(http, f"{s.web_url}/live/{one}/events")
            ).status != 200:
                again.close()
                await asyncio.sleep(0.2)
            again.close()


async def test_the_overall_cap_is_a_503_with_a_sentence(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path, live_streams_total=1) as s:
        token = (await s.delivery.live_link(SCOPE)).rsplit("/", 1)[-1]
        async with aiohttp.ClientSession() as http:
            first = await open_stream(http, f"{s.web_url}/live/{token}/events")
            second = await open_stream(http, f"{s.web_url}/live/{token}/events")
            assert first.status == 200 and second.status == 503
            assert "busy" in (await second.json())["error"]
            first.close()


async def test_many_pages_of_one_link_make_one_heartbeat(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path) as s:
        d = s.delivery
        beats: list[dict[str, Any]] = []

        async def count(event: dict[str, Any]) -> None:
            if event["kind"] == BusEvent.VIEWER:
                beats.append(event)

        d.bus.on_event(count)
        token = (await d.live_link(SCOPE)).rsplit("/", 1)[-1]
        async with aiohttp.ClientSession() as http:
            pages = [await open_stream(http, f"{s.web_url}/live/{token}/events") for _ in range(10)]
            assert all(p.status == 200 for p in pages)
            # ten pages connected: the store (and the other replicas) heard of it once
            assert len(beats) == 1
            for p in pages:
                p.close()


async def test_an_open_stream_ends_when_its_link_expires(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path, live_link_ttl_hours=1) as s:
        d = s.delivery
        token = (await d.live_link(SCOPE)).rsplit("/", 1)[-1]
        async with aiohttp.ClientSession() as http:
            resp = await open_stream(http, f"{s.web_url}/live/{token}/events")
            clock.advance(3601)
            await d.bus.publish(d.scope_key(SCOPE), BusEvent.ENDED, reason="idle")
            kinds: list[str] = []
            with contextlib.suppress(EOFError):
                while True:
                    kinds.append((await next_event(resp))[0])
            assert kinds[-1:] == ["expired"]  # whatever came before, the stream ended with it
            resp.close()


async def test_replays_are_throttled_per_scope(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path, live_replay_seconds=5) as s:
        d = s.delivery
        await d.speak(SCOPE, "a1", said("One.", "Two."))
        token = (await d.live_link(SCOPE)).rsplit("/", 1)[-1]
        url = f"{s.web_url}/live/{token}/replay/a1"
        async with aiohttp.ClientSession() as http:
            async with http.post(url) as first:
                assert first.status == 200
            async with http.post(url) as second:
                assert second.status == 429
                assert "one every 5 seconds" in (await second.json())["error"]
            clock.advance(5)
            async with http.post(url) as later:
                assert later.status == 200


async def test_a_foreign_origin_cannot_start_a_billed_session(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path) as s:
        token = (await s.delivery.live_link(SCOPE)).rsplit("/", 1)[-1]
        url = f"{s.web_url}/live/{token}/session"
        async with aiohttp.ClientSession() as http:
            for path in ("session", "claim/1", "replay/a1"):
                async with http.post(
                    f"{s.web_url}/live/{token}/{path}",
                    json={},
                    headers={"Origin": "https://evil.example"},
                ) as resp:
                    assert resp.status == 403
                    assert "bot's own site" in (await resp.json())["error"]
            assert fake.sessions == {}  # nothing was started, nothing is billed
            async with http.post(url, json={}, headers={"Origin": s.web_url}) as resp:
                assert resp.status == 200
        assert len(fake.sessions) == 1


async def test_every_response_carries_the_security_headers(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path) as s:
        link = await s.delivery.live_link(SCOPE)
        async with aiohttp.ClientSession() as http:
            for url in (
                link,
                f"{s.web_url}/live/not-a-token",
                f"{s.web_url}/live/static/live.js",
                f"{s.web_url}/heygen/webhook",
            ):
                async with http.get(url) as resp:
                    h = resp.headers
                    assert "frame-ancestors 'none'" in h["Content-Security-Policy"], url
                    assert h["X-Content-Type-Options"] == "nosniff", url
                    assert h["X-Frame-Options"] == "DENY" and h["Referrer-Policy"] == "no-referrer"


async def test_the_bot_without_an_avatar_still_sends_the_security_headers(tmp_path) -> None:
    from tests.slack_harness import running_bot

    async with running_bot(tmp_path) as bot:  # no HeyGen / LiveAvatar keys: no live routes
        for path in ("/healthz", "/readyz", "/live/anything"):
            async with bot.http.get(f"{bot.url}{path}") as resp:
                assert resp.headers["X-Content-Type-Options"] == "nosniff", path
                assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
