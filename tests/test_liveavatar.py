"""LiveAvatar client against the loopback fake: every endpoint, its failures, its events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.heygen.errors import HeyGenAuthError, HeyGenError, HeyGenProtocolError, HeyGenTimeout
from bot.heygen.liveavatar import (
    AvatarPersona,
    Interrupt,
    LiveAvatarClient,
    SessionEndReason,
    SessionListType,
    SessionTokenRequest,
    SpeakText,
    StartListening,
    VideoQuality,
    VideoSettings,
    parse_agent_control,
)
from tests.fakes.clients import served_clients
from tests.fakes.faults import Fault
from tests.fakes.liveavatar import API_KEY, AVATAR_ID, PUBLIC_AVATAR_ID, VOICE_ID, FakeLiveAvatar
from tests.fakes.sleeps import Sleeps


@pytest.fixture
def fake() -> FakeLiveAvatar:
    return FakeLiveAvatar(max_concurrent=2, idle_timeout=300)


async def make_client(
    fake: FakeLiveAvatar,
    sleeps: Sleeps,
    tmp_path: Path,
    *,
    key: str = API_KEY,
    timeout_s: float = 10.0,
) -> AsyncIterator[LiveAvatarClient]:
    async with served_clients(
        fake.app(),
        sleep=sleeps,
        liveavatar_api_key=key,
        heygen_timeout_seconds=timeout_s,
        avatarbot_data_dir=tmp_path,
    ) as clients:
        yield LiveAvatarClient(clients.liveavatar_api())


@pytest.fixture
async def client(
    fake: FakeLiveAvatar, sleeps: Sleeps, tmp_path: Path
) -> AsyncIterator[LiveAvatarClient]:
    async for c in make_client(fake, sleeps, tmp_path):
        yield c


def token_request(**overrides: object) -> SessionTokenRequest:
    return SessionTokenRequest(
        avatar_id=AVATAR_ID,
        avatar_persona=AvatarPersona(voice_id=VOICE_ID, language="en"),
        **overrides,
    )  # type: ignore[arg-type]


async def started(client: LiveAvatarClient):  # type: ignore[no-untyped-def]
    minted = await client.create_session_token(token_request())
    return minted, await client.start_session(minted.session_token)


# --- the happy path -----------------------------------------------------------------------


async def test_token_then_start_gives_a_livekit_room_and_tokens(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted = await client.create_session_token(
        token_request(video_settings=VideoSettings(quality=VideoQuality.MEDIUM))
    )
    session = await client.start_session(minted.session_token)

    assert session.session_id == minted.session_id
    assert session.livekit_url.startswith("wss://")
    assert session.livekit_client_token.get_secret_value().startswith("lk-client-")
    assert session.livekit_agent_token is not None
    assert fake.sessions[minted.session_id].state == "started"

    token_call = fake.faults.requests("session_token")[0]
    assert token_call.headers["X-API-KEY"] == API_KEY
    assert token_call.json == {
        "mode": "FULL",
        "avatar_id": AVATAR_ID,
        "is_sandbox": False,
        "avatar_persona": {"voice_id": VOICE_ID, "language": "en"},
        "video_settings": {"quality": "medium", "encoding": "VP8"},
    }
    start_call = fake.faults.requests("session_start")[0]
    assert start_call.headers["Authorization"] == (
        "Bearer " + minted.session_token.get_secret_value()
    )


async def test_tokens_never_show_in_reprs(client: LiveAvatarClient) -> None:
    minted, session = await started(client)
    secret = minted.session_token.get_secret_value()
    client_token = session.livekit_client_token.get_secret_value()
    assert secret not in repr(minted) and secret not in str(minted)
    assert client_token not in repr(session)


async def test_stop_ends_the_session_and_is_safe_to_repeat(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted, _ = await started(client)
    await client.stop_session(minted.session_id, minted.session_token)
    assert fake.sessions[minted.session_id].state == "stopped"
    assert fake.sessions[minted.session_id].end_reason == SessionEndReason.USER_CLOSED
    await client.stop_session(minted.session_id, minted.session_token)  # no error
    assert fake.active() == []


async def test_keep_alive_and_stop_also_work_with_the_api_key_alone(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted, _ = await started(client)
    fake.clock.advance(250)
    await client.keep_alive(minted.session_id)  # API key + session_id in the body
    fake.clock.advance(250)
    assert [s.session_id for s in fake.active()] == [minted.session_id]
    await client.stop_session(minted.session_id)
    assert fake.sessions[minted.session_id].state == "stopped"


async def test_list_sessions_shows_active_then_historic(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted, _ = await started(client)
    active = await client.list_sessions()
    assert [e.id for e in active.results] == [minted.session_id] and active.count == 1
    assert active.results[0].created_at is not None
    await client.stop_session(minted.session_id, minted.session_token)
    assert (await client.list_sessions()).results == []
    historic = await client.list_sessions(SessionListType.HISTORIC)
    assert [e.id for e in historic.results] == [minted.session_id]
    assert fake.faults.requests("session_list")[0].query == {
        "type": "active",
        "page": "1",
        "page_size": "100",
    }


# --- idle timeout and keep-alive ----------------------------------------------------------


async def test_keep_alive_extends_the_session_past_the_idle_timeout(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted, _ = await started(client)
    for _ in range(3):  # 3 x 200 s = 600 s alive, twice the idle timeout
        fake.clock.advance(200)
        await client.keep_alive(minted.session_id)  # the API key: it does not expire
    assert fake.sessions[minted.session_id].state == "started"


async def test_the_short_lived_session_token_stops_working_for_keep_alive(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    # Why the bot keeps sessions alive with the API key: the session token is short-lived.
    minted, _ = await started(client)
    fake.clock.advance(200)
    await client.keep_alive(minted.session_id, minted.session_token)
    fake.clock.advance(200)
    with pytest.raises(HeyGenError) as info:
        await client.keep_alive(minted.session_id, minted.session_token)
    assert info.value.status == 401
    await client.keep_alive(minted.session_id)


async def test_an_idle_session_expires_with_session_not_found(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted, _ = await started(client)
    fake.clock.advance(301)
    with pytest.raises(HeyGenError) as info:
        await client.keep_alive(minted.session_id)
    assert info.value.is_session_not_found
    assert fake.sessions[minted.session_id].end_reason == "IDLE_TIMEOUT"


async def test_keep_alive_for_an_unknown_session_is_session_not_found(
    client: LiveAvatarClient,
) -> None:
    with pytest.raises(HeyGenError) as info:
        await client.keep_alive("00000000-0000-0000-0000-000000000000")
    assert info.value.is_session_not_found


# --- limits and bad input -----------------------------------------------------------------


async def test_concurrency_limit_refuses_a_third_session(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    await started(client)
    await started(client)
    minted = await client.create_session_token(token_request())
    with pytest.raises(HeyGenError) as info:
        await client.start_session(minted.session_token)
    assert info.value.is_concurrency_limit
    assert "Concurrent limit" in str(info.value)
    assert len(fake.active()) == 2


async def test_an_expired_session_frees_its_concurrency_slot(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    await started(client)
    await started(client)
    fake.clock.advance(400)
    await started(client)  # both earlier sessions went idle and ended
    assert len(fake.active()) == 1


async def test_a_bad_key_is_a_clear_auth_error_without_the_key(
    fake: FakeLiveAvatar, sleeps: Sleeps, tmp_path: Path
) -> None:
    wrong = "la-wrong-key-SECRET-123456"
    async for client in make_client(fake, sleeps, tmp_path, key=wrong):
        with pytest.raises(HeyGenAuthError) as info:
            await client.create_session_token(token_request())
    err = info.value
    assert err.status == 401
    assert "LiveAvatar API error 401" in str(err) and "Invalid API key" in str(err)
    for text in (str(err), repr(err), err.body):
        assert wrong not in text
    assert sleeps.delays == []  # an auth failure is not retried
    assert len(fake.faults.requests("session_token")) == 1


async def test_a_wrong_session_token_is_refused(client: LiveAvatarClient) -> None:
    with pytest.raises(HeyGenAuthError):
        await client.start_session("not-a-real-session-token")


async def test_a_session_token_echoed_in_an_error_body_is_redacted(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted = await client.create_session_token(token_request())
    token = minted.session_token.get_secret_value()
    fake.faults.add(
        "session_start",
        Fault.raw(401, {"code": 401, "data": None, "message": f"token {token} is not valid"}),
    )
    with pytest.raises(HeyGenAuthError) as info:
        await client.start_session(minted.session_token)
    assert token not in str(info.value) and token not in info.value.body


async def test_unknown_avatar_is_rejected_with_its_id_in_the_message(
    client: LiveAvatarClient,
) -> None:
    nobody = "11111111-2222-4333-8444-555555555555"
    with pytest.raises(HeyGenError) as info:
        await client.create_session_token(SessionTokenRequest(avatar_id=nobody))
    assert info.value.status == 404 and nobody in str(info.value)


async def test_a_heygen_avatar_id_is_refused_by_liveavatar(client: LiveAvatarClient) -> None:
    with pytest.raises(HeyGenError) as info:
        await client.create_session_token(SessionTokenRequest(avatar_id="Wayne_20240711"))
    assert info.value.status == 422 and "avatar_id" in str(info.value)


async def test_the_avatar_catalogue_lists_account_and_public_avatars(
    client: LiveAvatarClient,
) -> None:
    mine = await client.list_avatars()
    public = await client.list_avatars(public=True)
    assert [a.id for a in mine.results] == [AVATAR_ID]
    assert [a.id for a in public.results] == [PUBLIC_AVATAR_ID]


async def test_unknown_voice_is_rejected(client: LiveAvatarClient) -> None:
    with pytest.raises(HeyGenError) as info:
        await client.create_session_token(
            SessionTokenRequest(
                avatar_id=AVATAR_ID, avatar_persona=AvatarPersona(voice_id="no-such-voice")
            )
        )
    assert "no-such-voice" in str(info.value)


async def test_a_non_success_code_in_a_200_envelope_is_an_error(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    fake.faults.add(
        "session_token",
        Fault.raw(200, {"code": 4003, "data": None, "message": "Avatar is not ready"}),
    )
    with pytest.raises(HeyGenError) as info:
        await client.create_session_token(token_request())
    assert info.value.code == 4003 and "Avatar is not ready" in str(info.value)


async def test_a_response_missing_fields_is_a_protocol_error(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    fake.faults.add(
        "session_token",
        Fault.raw(200, {"code": 1000, "data": {"session_id": "x"}, "message": "ok"}),
    )
    with pytest.raises(HeyGenProtocolError) as info:
        await client.create_session_token(token_request())
    assert "session_token" in str(info.value)


# --- retries: safe calls retried, creates never silently sent twice -----------------------


async def test_429_with_retry_after_is_honoured_on_keep_alive(
    client: LiveAvatarClient, fake: FakeLiveAvatar, sleeps: Sleeps
) -> None:
    minted, _ = await started(client)
    fake.faults.add("session_keep_alive", Fault.rate_limited(retry_after="2"))
    await client.keep_alive(minted.session_id, minted.session_token)
    assert sleeps.delays == [2.0]
    assert len(fake.faults.requests("session_keep_alive")) == 2


async def test_stop_is_retried_after_a_server_error(
    client: LiveAvatarClient, fake: FakeLiveAvatar
) -> None:
    minted, _ = await started(client)
    fake.faults.add("session_stop", Fault.server_error(503))
    await client.stop_session(minted.session_id, minted.session_token)
    assert len(fake.faults.requests("session_stop")) == 2
    assert fake.sessions[minted.session_id].state == "stopped"


@pytest.mark.parametrize("route", ["session_token", "session_start"])
async def test_a_create_is_not_resent_after_a_server_error(
    client: LiveAvatarClient, fake: FakeLiveAvatar, sleeps: Sleeps, route: str
) -> None:
    minted = await client.create_session_token(token_request())
    fake.faults.add(route, Fault.server_error(500))
    before = len(fake.faults.requests(route))
    with pytest.raises(HeyGenError) as info:
        if route == "session_token":
            await client.create_session_token(token_request())
        else:
            await client.start_session(minted.session_token)
    assert info.value.status == 500
    assert len(fake.faults.requests(route)) == before + 1
    assert sleeps.delays == []


async def test_a_create_that_times_out_is_not_resent(
    fake: FakeLiveAvatar, sleeps: Sleeps, tmp_path: Path
) -> None:
    release = asyncio.Event()
    fake.faults.add("session_token", Fault.stall_until(release))
    async for client in make_client(fake, sleeps, tmp_path, timeout_s=0.3):
        with pytest.raises(HeyGenTimeout):
            await client.create_session_token(token_request())
        release.set()
    assert len(fake.faults.requests("session_token")) == 1


# --- agent-control events -----------------------------------------------------------------


def test_speak_text_serialises_to_the_documented_json() -> None:
    event = SpeakText(session_id="s-1", text="Café opens at 9.", event_id="e-1")
    assert json.loads(event.to_bytes()) == {
        "event_type": "avatar.speak_text",
        "session_id": "s-1",
        "event_id": "e-1",
        "text": "Café opens at 9.",
    }
    assert "Café" in event.to_bytes().decode("utf-8")  # UTF-8, not \\u escapes


def test_commands_without_data_carry_only_the_common_fields() -> None:
    assert json.loads(Interrupt(session_id="s", event_id="e").to_bytes()) == {
        "event_type": "avatar.interrupt",
        "session_id": "s",
        "event_id": "e",
    }
    assert StartListening(session_id="s").to_json()["event_type"] == "avatar.start_listening"


def test_events_round_trip_and_empty_speech_is_refused() -> None:
    event = SpeakText(session_id="s", text="Hello")
    again = parse_agent_control(event.to_bytes())
    assert isinstance(again, SpeakText) and again == event
    with pytest.raises(ValueError):
        SpeakText(session_id="s", text="")
    with pytest.raises(ValueError):
        parse_agent_control(b'{"event_type": "avatar.dance", "session_id": "s"}')
