"""HeyGen streaming v1 client against the loopback fake: every endpoint, failures included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.heygen.errors import HeyGenAuthError, HeyGenError, HeyGenTimeout
from bot.heygen.streaming_v1 import (
    AvatarQuality,
    ElevenLabsSettings,
    NewSessionRequest,
    SessionStatus,
    StreamingClient,
    TaskMode,
    TaskRequest,
    TaskType,
    VideoEncoding,
    VoiceEmotion,
    VoiceSetting,
)
from tests.fakes.clients import served_clients
from tests.fakes.faults import Fault
from tests.fakes.heygen_streaming import API_KEY, AVATAR_ID, VOICE_ID, FakeStreaming
from tests.fakes.sleeps import Sleeps


@pytest.fixture
def fake() -> FakeStreaming:
    return FakeStreaming(max_concurrent=2)


async def make_client(
    fake: FakeStreaming,
    sleeps: Sleeps,
    tmp_path: Path,
    *,
    key: str = API_KEY,
    timeout_s: float = 10.0,
) -> AsyncIterator[StreamingClient]:
    async with served_clients(
        fake.app(),
        sleep=sleeps,
        heygen_api_key=key,
        heygen_timeout_seconds=timeout_s,
        avatarbot_data_dir=tmp_path,
    ) as clients:
        yield StreamingClient(clients.heygen_api())


@pytest.fixture
async def client(
    fake: FakeStreaming, sleeps: Sleeps, tmp_path: Path
) -> AsyncIterator[StreamingClient]:
    async for c in make_client(fake, sleeps, tmp_path):
        yield c


def new_request(**overrides: object) -> NewSessionRequest:
    fields: dict[str, object] = {"avatar_id": AVATAR_ID, "voice": VoiceSetting(voice_id=VOICE_ID)}
    fields.update(overrides)
    return NewSessionRequest(**fields)  # type: ignore[arg-type]


async def running(client: StreamingClient) -> str:
    session = await client.new_session(new_request())
    await client.start_session(session.session_id)
    return session.session_id


# --- lifecycle ----------------------------------------------------------------------------


async def test_new_sends_the_documented_body_and_returns_the_livekit_room(
    client: StreamingClient, fake: FakeStreaming
) -> None:
    session = await client.new_session(
        new_request(
            quality=AvatarQuality.MEDIUM,
            video_encoding=VideoEncoding.H264,
            language="en",
            knowledge_base="You answer questions about the handbook.",
            activity_idle_timeout=300,
            voice=VoiceSetting(
                voice_id=VOICE_ID,
                rate=1.1,
                emotion=VoiceEmotion.FRIENDLY,
                elevenlabs_settings=ElevenLabsSettings(stability=0.5),
            ),
        )
    )
    assert session.url.startswith("wss://")
    assert session.access_token.get_secret_value() == fake.sessions[session.session_id].access_token
    assert session.session_duration_limit == 600

    sent = fake.faults.requests("streaming_new")[0]
    assert sent.headers["X-Api-Key"] == API_KEY
    assert sent.json == {
        "version": "v2",
        "avatar_id": AVATAR_ID,
        "quality": "medium",
        "video_encoding": "H264",
        "language": "en",
        "knowledge_base": "You answer questions about the handbook.",
        "activity_idle_timeout": 300,
        "voice": {
            "voice_id": VOICE_ID,
            "rate": 1.1,
            "emotion": "friendly",
            "elevenlabs_settings": {"stability": 0.5},
        },
    }


async def test_new_start_task_stop_moves_the_session_through_its_states(
    client: StreamingClient, fake: FakeStreaming
) -> None:
    session = await client.new_session(new_request())
    assert fake.sessions[session.session_id].state == "new"
    await client.start_session(session.session_id)
    assert fake.sessions[session.session_id].state == "started"
    await client.stop_session(session.session_id)
    assert fake.sessions[session.session_id].state == "stopped"
    assert await client.list_sessions() == []


async def test_repeat_tasks_are_spoken_in_order(
    client: StreamingClient, fake: FakeStreaming
) -> None:
    session_id = await running(client)
    first = await client.repeat(session_id, "First, open the settings.")
    await client.repeat(session_id, "Then choose Knowledge.")
    assert first.task_id and first.duration_ms and first.duration_ms > 0
    assert fake.spoken(session_id) == ["First, open the settings.", "Then choose Knowledge."]
    assert fake.faults.requests("streaming_task")[0].json == {
        "session_id": session_id,
        "text": "First, open the settings.",
        "task_type": "repeat",
        "task_mode": "async",
    }


async def test_talk_and_sync_tasks_are_sent_as_asked(
    client: StreamingClient, fake: FakeStreaming
) -> None:
    session_id = await running(client)
    await client.send_task(
        TaskRequest(
            session_id=session_id,
            text="What is new?",
            task_type=TaskType.TALK,
            task_mode=TaskMode.SYNC,
        )
    )
    assert fake.sessions[session_id].tasks[0]["task_type"] == "talk"
    assert fake.sessions[session_id].tasks[0]["task_mode"] == "sync"
    assert fake.spoken(session_id) == []  # a talk task is not a verbatim utterance


async def test_a_task_before_start_is_refused(client: StreamingClient) -> None:
    session = await client.new_session(new_request())
    with pytest.raises(HeyGenError) as info:
        await client.repeat(session.session_id, "Too early")
    assert info.value.code == 400006


async def test_interrupt_reaches_the_session(client: StreamingClient, fake: FakeStreaming) -> None:
    session_id = await running(client)
    await client.interrupt(session_id)
    assert fake.sessions[session_id].interrupts == 1


async def test_list_sessions_and_avatars(client: StreamingClient) -> None:
    session_id = await running(client)
    listed = await client.list_sessions()
    assert [(s.session_id, s.status) for s in listed] == [(session_id, SessionStatus.CONNECTED)]
    avatars = await client.list_avatars()
    assert [a.avatar_id for a in avatars] == [AVATAR_ID]
    assert avatars[0].is_public is True


async def test_create_token_gives_a_token_the_api_accepts_as_bearer(
    client: StreamingClient, fake: FakeStreaming
) -> None:
    token = await client.create_token()
    assert token.get_secret_value() in fake.tokens
    body = fake.faults.requests("streaming_create_token")[0]
    assert body.method == "POST"


# --- idle timeout, keep-alive, concurrency ------------------------------------------------


async def test_keep_alive_extends_the_session(client: StreamingClient, fake: FakeStreaming) -> None:
    session_id = await running(client)  # default idle timeout: 120 s
    for _ in range(3):
        fake.clock.advance(100)
        await client.keep_alive(session_id)
    await client.repeat(session_id, "Still here after five minutes.")
    assert fake.spoken(session_id) == ["Still here after five minutes."]


async def test_an_idle_session_expires_with_10006(
    client: StreamingClient, fake: FakeStreaming
) -> None:
    session_id = await running(client)
    fake.clock.advance(121)
    with pytest.raises(HeyGenError) as info:
        await client.repeat(session_id, "Anyone there?")
    assert info.value.code == 10006 and info.value.is_session_not_found
    assert fake.spoken(session_id) == []


async def test_the_concurrency_limit_is_10007(client: StreamingClient, fake: FakeStreaming) -> None:
    await running(client)
    await running(client)
    with pytest.raises(HeyGenError) as info:
        await client.new_session(new_request())
    assert info.value.code == 10007 and info.value.is_concurrency_limit
    assert len(fake.open_sessions()) == 2


# --- bad input and bad keys ---------------------------------------------------------------


async def test_a_bad_key_is_a_clear_error_without_the_key(
    fake: FakeStreaming, sleeps: Sleeps, tmp_path: Path
) -> None:
    wrong = "hg-wrong-key-SECRET-98765"
    async for client in make_client(fake, sleeps, tmp_path, key=wrong):
        with pytest.raises(HeyGenAuthError) as info:
            await client.new_session(new_request())
    assert info.value.status == 401 and info.value.code == 400112
    assert "Unauthorized" in str(info.value)
    for text in (str(info.value), repr(info.value), info.value.body):
        assert wrong not in text
    assert fake.sessions == {}


async def test_unknown_avatar_and_voice_are_rejected(client: StreamingClient) -> None:
    with pytest.raises(HeyGenError) as info:
        await client.new_session(new_request(avatar_id="nobody"))
    assert "nobody" in str(info.value)
    with pytest.raises(HeyGenError) as info:
        await client.new_session(new_request(voice=VoiceSetting(voice_id="no-voice")))
    assert "no-voice" in str(info.value)


def test_models_refuse_what_the_api_would() -> None:
    with pytest.raises(ValueError):
        NewSessionRequest(activity_idle_timeout=10)  # below the 30 s minimum
    with pytest.raises(ValueError):
        TaskRequest(session_id="s", text="")


# --- retries ------------------------------------------------------------------------------


async def test_429_with_retry_after_is_honoured_on_lists(
    client: StreamingClient, fake: FakeStreaming, sleeps: Sleeps
) -> None:
    fake.faults.add("streaming_avatar_list", Fault.rate_limited(retry_after="3"))
    assert [a.avatar_id for a in await client.list_avatars()] == [AVATAR_ID]
    assert sleeps.delays == [3.0]
    assert len(fake.faults.requests("streaming_avatar_list")) == 2


async def test_keep_alive_is_retried_after_a_500(
    client: StreamingClient, fake: FakeStreaming
) -> None:
    session_id = await running(client)
    fake.faults.add("streaming_keep_alive", Fault.server_error())
    await client.keep_alive(session_id)
    assert len(fake.faults.requests("streaming_keep_alive")) == 2


@pytest.mark.parametrize("route", ["streaming_new", "streaming_task"])
async def test_a_create_is_not_resent_after_a_server_error(
    client: StreamingClient, fake: FakeStreaming, sleeps: Sleeps, route: str
) -> None:
    session_id = await running(client) if route == "streaming_task" else ""
    fake.faults.add(route, Fault.server_error(502))
    with pytest.raises(HeyGenError) as info:
        if route == "streaming_new":
            await client.new_session(new_request())
        else:
            await client.repeat(session_id, "Say this once.")
    assert info.value.status == 502
    assert len(fake.faults.requests(route)) == 1
    assert sleeps.delays == []


async def test_a_task_that_times_out_is_not_resent(
    fake: FakeStreaming, sleeps: Sleeps, tmp_path: Path
) -> None:
    release = asyncio.Event()
    async for client in make_client(fake, sleeps, tmp_path, timeout_s=0.3):
        session_id = await running(client)
        fake.faults.add("streaming_task", Fault.stall_until(release))
        with pytest.raises(HeyGenTimeout):
            await client.repeat(session_id, "Only once, please.")
        release.set()
        # The stalled request is then answered by the real handler: said exactly once.
        for _ in range(200):
            if fake.spoken(session_id):
                break
            await asyncio.sleep(0.01)
    assert len(fake.faults.requests("streaming_task")) == 1
    assert fake.spoken(session_id) == ["Only once, please."]


async def test_a_keep_alive_that_times_out_is_retried(
    fake: FakeStreaming, sleeps: Sleeps, tmp_path: Path
) -> None:
    async for client in make_client(fake, sleeps, tmp_path, timeout_s=0.3):
        session_id = await running(client)
        fake.faults.add("streaming_keep_alive", Fault.stall_until(then_answer=False))
        await client.keep_alive(session_id)  # the first attempt hangs; the retry answers
        assert len(fake.faults.requests("streaming_keep_alive")) == 2
        assert len(sleeps.delays) == 1


async def test_a_rate_limited_create_with_retry_after_is_sent_again_once(
    client: StreamingClient, fake: FakeStreaming, sleeps: Sleeps
) -> None:
    # 429 + Retry-After means the gateway refused it before it ran, so one new attempt is
    # safe; the session exists exactly once.
    fake.faults.add("streaming_new", Fault.rate_limited(retry_after="1"))
    await client.new_session(new_request())
    assert sleeps.delays == [1.0]
    assert len(fake.faults.requests("streaming_new")) == 2
    assert len(fake.sessions) == 1


async def test_the_routes_work_mounted_in_the_whole_heygen_fake(tmp_path: Path) -> None:
    from tests.fakes.heygen import FakeHeyGen

    heygen = FakeHeyGen()
    assert heygen.streaming is not None
    async with served_clients(
        heygen.app(), heygen_api_key=heygen.api_key, avatarbot_data_dir=tmp_path
    ) as clients:
        client = StreamingClient(clients.heygen_api())
        session_id = await running(client)
        await client.repeat(session_id, "Mounted and speaking.")
    assert heygen.streaming.spoken(session_id) == ["Mounted and speaking."]
