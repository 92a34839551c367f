"""LiveAvatar and streaming v1 as the vendors run them: the avatar id, keep-alive timing and
credentials, and the error readings, with the real clients against the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.avatar.delivery import AvatarError, AvatarUnavailable, LiveScope
from bot.avatar.live.sessions import keepalive_interval
from bot.config import LiveApi
from bot.heygen.errors import CODE_CONCURRENT_LIMIT, CODE_SESSION_NOT_FOUND, HeyGenError
from bot.heygen.live import LiveConcurrencyLimit, LiveSessionGone, build_room_api
from tests.avatar_stack import avatar_stack, liveavatar_stack
from tests.fakes.clients import served_clients
from tests.fakes.faults import Fault
from tests.fakes.heygen import FakeHeyGen
from tests.fakes.heygen_streaming import API_KEY as HEYGEN_KEY
from tests.fakes.heygen_streaming import AVATAR_ID as STREAMING_AVATAR
from tests.fakes.liveavatar import (
    API_KEY,
    AVATAR_ID,
    PUBLIC_AVATAR_ID,
    FakeLiveAvatar,
    LoopbackAgentControl,
)
from tests.fakes.sleeps import Sleeps

HEYGEN_VIDEO_AVATAR = "Angela-inblackskirt-20220820"  # a HeyGen (video) avatar id


def scope() -> LiveScope:
    return LiveScope(team="T1", channel="C1", user="U1")


async def said(*sentences: str) -> AsyncIterator[str]:
    for s in sentences:
        yield s


def stack(fake: FakeLiveAvatar, store, clock, tmp_path: Path, **settings):
    return liveavatar_stack(fake, store, clock, tmp_path / "data", **settings)


# --- the avatar id --------------------------------------------------------------------------


async def test_a_heygen_avatar_id_alone_never_reaches_liveavatar(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(
        fake, store, clock, tmp_path, heygen_avatar_id=HEYGEN_VIDEO_AVATAR, live_avatar_id=None
    ) as s:
        d = s.delivery
        assert d.live is None and "LIVE_AVATAR_ID" in (d.live_reason or "")
        assert await d.live_link(scope()) is None  # no "Watch live" link is offered
        with pytest.raises(AvatarUnavailable) as info:
            await d.speak(scope(), "a1", said("Hello."))
        assert info.value.variable == "LIVE_AVATAR_ID"
    assert fake.sessions == {}  # no token was minted with the HeyGen id


async def test_a_live_avatar_id_not_in_the_catalogue_turns_live_off_at_start(
    store, clock, tmp_path
) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path, live_avatar_id=HEYGEN_VIDEO_AVATAR) as s:
        d = s.delivery
        assert d.live is None
        assert "LIVE_AVATAR_ID" in (d.live_reason or "")
        assert HEYGEN_VIDEO_AVATAR in (d.live_reason or "")
        assert await d.live_link(scope()) is None
    assert fake.sessions == {}
    assert [r.path for r in fake.faults.requests("avatar_list")] == ["/v1/avatars"]


async def test_a_public_liveavatar_avatar_is_accepted(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack(fake, store, clock, tmp_path, live_avatar_id=PUBLIC_AVATAR_ID) as s:
        assert s.delivery.live is not None and s.delivery.live_reason is None


async def test_when_the_catalogue_cannot_be_read_the_first_token_call_names_the_variable(
    store, clock, tmp_path
) -> None:
    fake = FakeLiveAvatar(clock=clock)
    fake.faults.add("avatar_list", *[Fault.server_error() for _ in range(8)])
    unknown = "11111111-2222-4333-8444-555555555555"
    async with stack(fake, store, clock, tmp_path, live_avatar_id=unknown) as s:
        d = s.delivery
        assert d.live is not None  # could not check: the token call will tell
        with pytest.raises(AvatarError) as info:
            await d.live.viewer_session(d.scope_key(scope()), None)
        assert "LIVE_AVATAR_ID" in str(info.value) and unknown in str(info.value)


# --- keep-alive -----------------------------------------------------------------------------


async def test_streaming_v1_keep_alive_lands_before_its_120_s_idle_timeout(
    store, clock, tmp_path
) -> None:
    fake = FakeHeyGen()
    fake.streaming.clock = clock
    async with avatar_stack(
        fake.app(),
        store,
        clock,
        tmp_path / "data",
        heygen_api_key=HEYGEN_KEY,
        heygen_live_api="streaming",
        live_avatar_id=STREAMING_AVATAR,
        liveavatar_api_key=None,
    ) as s:
        d = s.delivery
        assert d.live is not None
        key = d.scope_key(scope())
        room, _ = await d.live.viewer_session(key, None)
        for _ in range(50):  # 500 s of upkeep ticks (every 10 s) while someone watches
            clock.advance(10)
            await d.live.viewer_heartbeat(key)
            await d.live.tick()
        # (the fake's sessions last 600 s at most: the bot renews them a minute early)
        assert fake.streaming.sessions[room.session_id].state != "stopped"
        assert d.live.sessions_started == 1


def test_the_keep_alive_interval_keeps_a_margin_before_each_idle_timeout() -> None:
    from bot.heygen.live import AvatarRoom

    def room(api: LiveApi, idle: int) -> AvatarRoom:
        return AvatarRoom(
            backend=api, session_id="s", livekit_url="wss://x", access_token="t",
            idle_timeout_seconds=idle,
        )  # fmt: skip

    assert keepalive_interval(120, room(LiveApi.STREAMING, 120)) == 90
    assert keepalive_interval(120, room(LiveApi.LIVEAVATAR, 300)) == 120
    assert keepalive_interval(600, room(LiveApi.LIVEAVATAR, 300)) == 270


async def test_liveavatar_stays_alive_past_the_session_tokens_lifetime(
    store, clock, tmp_path
) -> None:
    # The session token lives 5 minutes (the fake's harsh reading of "short-lived"); the bot
    # keeps the session for LIVE_MAX_SESSION_SECONDS with the API key instead.
    fake = FakeLiveAvatar(clock=clock, session_token_ttl=300)
    async with stack(fake, store, clock, tmp_path, live_avatar_id=AVATAR_ID) as s:
        d = s.delivery
        assert d.live is not None
        key = d.scope_key(scope())
        room, _ = await d.live.viewer_session(key, None)
        for _ in range(90):  # 15 minutes
            clock.advance(10)
            await d.live.viewer_heartbeat(key)
            await d.live.tick()
        assert [x.session_id for x in fake.active()] == [room.session_id]
        keep_alives = fake.faults.requests("session_keep_alive")
        assert keep_alives and all("Authorization" not in r.headers for r in keep_alives)


def clients_for(fake: FakeLiveAvatar, tmp_path: Path):
    return served_clients(
        fake.app(), sleep=Sleeps(), avatarbot_data_dir=tmp_path, liveavatar_api_key=API_KEY
    )


# --- error readings -------------------------------------------------------------------------

CONCURRENCY_READINGS = [
    (400, CODE_CONCURRENT_LIMIT, "Concurrent limit reached, please close other sessions"),
    (403, 403, "Maximum number of concurrent sessions reached for your plan"),
    (429, 429, "Too many active sessions"),
]
GONE_READINGS = [
    (404, CODE_SESSION_NOT_FOUND, "Session not found"),
    (400, 10005, "session state wrong: closed"),
    (410, 410, "Session has ended"),
    (400, 400, "Session is not active"),
]


@pytest.mark.parametrize("reply", CONCURRENCY_READINGS, ids=lambda r: f"{r[0]}-{r[1]}")
async def test_each_reading_of_the_concurrency_limit_is_recognised(
    tmp_path: Path, reply: tuple[int, int, str]
) -> None:
    fake = FakeLiveAvatar(max_concurrent=1, concurrency_reply=reply)
    async with clients_for(fake, tmp_path) as c:
        rooms = build_room_api(c.settings, c, channel=LoopbackAgentControl(fake))
        await rooms.create_session(AVATAR_ID)
        with pytest.raises(LiveConcurrencyLimit):
            await rooms.create_session(AVATAR_ID)


@pytest.mark.parametrize("reply", GONE_READINGS, ids=lambda r: f"{r[0]}-{r[1]}")
async def test_each_reading_of_a_gone_session_is_recognised(
    tmp_path: Path, reply: tuple[int, int, str]
) -> None:
    fake = FakeLiveAvatar(gone_reply=reply)
    async with clients_for(fake, tmp_path) as c:
        rooms = build_room_api(c.settings, c, channel=LoopbackAgentControl(fake))
        room = await rooms.create_session(AVATAR_ID)
        fake.sessions[room.session_id].state = "stopped"
        with pytest.raises(LiveSessionGone):
            await rooms.keep_alive(room)
        await rooms.stop(room)  # stopping a gone session counts as stopped


async def test_a_plain_rate_limit_is_not_the_concurrency_limit(tmp_path: Path) -> None:
    fake = FakeLiveAvatar()
    async with clients_for(fake, tmp_path) as c:
        rooms = build_room_api(c.settings, c, channel=LoopbackAgentControl(fake))
        fake.faults.add("session_start", *[Fault.rate_limited(retry_after="1") for _ in range(8)])
        with pytest.raises(HeyGenError) as info:
            await rooms.create_session(AVATAR_ID)
        assert not isinstance(info.value, LiveConcurrencyLimit) and info.value.is_rate_limited


async def test_a_missing_avatar_on_the_token_call_is_not_a_gone_session(tmp_path: Path) -> None:
    from bot.heygen.live import LiveAvatarUnknown

    fake = FakeLiveAvatar()
    async with clients_for(fake, tmp_path) as c:
        rooms = build_room_api(c.settings, c, channel=LoopbackAgentControl(fake))
        with pytest.raises(LiveAvatarUnknown):
            await rooms.create_session("11111111-2222-4333-8444-555555555555")
        with pytest.raises(LiveAvatarUnknown):
            await rooms.create_session(HEYGEN_VIDEO_AVATAR)


async def test_speech_sent_before_the_avatar_joined_is_lost_in_the_fake(tmp_path: Path) -> None:
    # The fake is as harsh as the lifecycle page: events before the avatar joins do nothing;
    # the server channel therefore waits for the avatar before publishing.
    fake = FakeLiveAvatar()
    channel = LoopbackAgentControl(fake)
    async with clients_for(fake, tmp_path) as c:
        rooms = build_room_api(c.settings, c, channel=channel)
        room = await rooms.create_session(AVATAR_ID)
        early = fake.sessions[room.session_id]
        token = early.client_token
        assert fake.connect(room.livekit_url, token) == []  # the avatar is not there yet
        payload = b'{"event_type":"avatar.speak_text","session_id":"%s","text":"Hi"}'
        assert (
            fake.deliver(
                room.livekit_url, token, "agent-control", payload % room.session_id.encode()
            )
            == []
        )
        assert fake.spoken(room.session_id) == [] and len(early.ignored) == 1
        await rooms.speak(room, "Hello.")
        assert fake.spoken(room.session_id) == ["Hello."]
        started = [e for e in channel.responses if e["event_type"] == "avatar.speak_started"]
        assert [e["source_event_id"] for e in started] == [
            fake.sessions[room.session_id].commands[0]["event_id"]
        ]
