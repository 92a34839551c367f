"""One live-avatar interface over LiveAvatar and HeyGen streaming v1, each against its fake.

Every behaviour test runs once per backend: the same calls must give the same session shape
and the right thing at each fake (an `avatar.speak_text` event in the LiveKit room, or a
`repeat` task).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import LiveApi, load_settings
from bot.heygen.clients import heygen_clients
from bot.heygen.errors import HeyGenError, MissingApiKeyError
from bot.heygen.live import (
    AgentControlError,
    AvatarRoom,
    LiveAvatarRooms,
    LiveConcurrencyLimit,
    LiveKitAgentControl,
    LiveSessionGone,
    RoomApi,
    StreamingRooms,
    build_room_api,
)
from bot.heygen.liveavatar import SpeakText
from tests.fakes import heygen_streaming, liveavatar
from tests.fakes.clients import served_clients
from tests.fakes.faults import Fault, Faults
from tests.fakes.heygen_streaming import FakeStreaming
from tests.fakes.liveavatar import FakeLiveAvatar, LoopbackAgentControl
from tests.fakes.sleeps import Sleeps


@dataclass
class Stack:
    """A backend built by the factory, and a uniform view of the fake behind it."""

    backend: RoomApi
    kind: LiveApi
    fake: FakeLiveAvatar | FakeStreaming
    avatar_id: str
    voice_id: str
    channel: LoopbackAgentControl | None = None

    @property
    def faults(self) -> Faults:
        return self.fake.faults

    def spoken(self, session_id: str) -> list[str]:
        return self.fake.spoken(session_id)

    def state(self, session_id: str) -> str:
        if isinstance(self.fake, FakeLiveAvatar):
            self.fake.active()  # apply idle expiry
        else:
            self.fake.open_sessions()
        return self.fake.sessions[session_id].state

    def interrupted(self, session_id: str) -> bool:
        if isinstance(self.fake, FakeLiveAvatar):
            return "avatar.interrupt" in self.fake.commands(session_id)
        return self.fake.sessions[session_id].interrupts > 0

    def advance(self, seconds: float) -> None:
        self.fake.clock.advance(seconds)

    def route(self, action: str) -> str:
        names = {
            LiveApi.LIVEAVATAR: {
                "create": "session_token",
                "start": "session_start",
                "stop": "session_stop",
            },
            LiveApi.STREAMING: {
                "create": "streaming_new",
                "start": "streaming_start",
                "stop": "streaming_stop",
            },
        }
        return names[self.kind][action]


@pytest.fixture(params=[LiveApi.LIVEAVATAR, LiveApi.STREAMING], ids=lambda k: k.value)
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    kind: LiveApi = request.param
    if kind is LiveApi.LIVEAVATAR:
        fake: FakeLiveAvatar | FakeStreaming = FakeLiveAvatar(max_concurrent=1, idle_timeout=300)
        avatar, voice = liveavatar.AVATAR_ID, liveavatar.VOICE_ID
    else:
        fake = FakeStreaming(max_concurrent=1)
        avatar, voice = heygen_streaming.AVATAR_ID, heygen_streaming.VOICE_ID
    async with served_clients(
        fake.app(),
        sleep=Sleeps(),
        heygen_live_api=kind,
        avatarbot_data_dir=tmp_path,
        heygen_api_key=heygen_streaming.API_KEY,
        liveavatar_api_key=liveavatar.API_KEY,
    ) as clients:
        channel = LoopbackAgentControl(fake) if isinstance(fake, FakeLiveAvatar) else None
        backend = build_room_api(clients.settings, clients, channel=channel)
        yield Stack(backend, kind, fake, avatar, voice, channel)


# --- one shape, one behaviour -------------------------------------------------------------


async def test_the_factory_picks_the_backend_the_setting_names(stack: Stack) -> None:
    expected = LiveAvatarRooms if stack.kind is LiveApi.LIVEAVATAR else StreamingRooms
    assert isinstance(stack.backend, expected)
    assert isinstance(stack.backend, RoomApi)
    assert stack.backend.name is stack.kind


async def test_create_session_gives_the_standard_shape(stack: Stack) -> None:
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    assert isinstance(session, AvatarRoom)
    assert session.backend is stack.kind
    assert session.session_id in stack.fake.sessions
    assert stack.state(session.session_id) == "started"
    assert session.livekit_url.startswith("wss://")
    assert isinstance(session.access_token, SecretStr) and session.access_token.get_secret_value()
    assert session.idle_timeout_seconds and session.idle_timeout_seconds > 0
    assert session.max_duration_seconds and session.max_duration_seconds > 0
    assert session.access_token.get_secret_value() not in repr(session)


async def test_a_stored_session_keeps_working_after_a_restart(stack: Stack) -> None:
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    record = json.loads(json.dumps(session.to_record()))  # what a store would keep
    restored = AvatarRoom.from_record(record)
    assert restored == session
    await stack.backend.speak(restored, "Back after a restart.")
    await stack.backend.stop(restored)
    assert stack.spoken(session.session_id) == ["Back after a restart."]
    assert stack.state(session.session_id) == "stopped"


async def test_speak_makes_the_avatar_say_each_sentence_in_order(stack: Stack) -> None:
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    sentences = ["Open Settings.", "Choose Knowledge, then Add.", "That's it!"]
    for sentence in sentences:
        result = await stack.backend.speak(session, sentence)
        assert result.id
    assert stack.spoken(session.session_id) == sentences


async def test_interrupt_reaches_the_avatar(stack: Stack) -> None:
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    await stack.backend.speak(session, "A long answer")
    await stack.backend.interrupt(session)
    assert stack.interrupted(session.session_id)


async def test_keep_alive_holds_the_session_past_its_idle_timeout(stack: Stack) -> None:
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    assert session.idle_timeout_seconds is not None
    step = session.idle_timeout_seconds * 0.8
    for _ in range(3):
        stack.advance(step)
        await stack.backend.keep_alive(session)
    assert stack.state(session.session_id) == "started"
    await stack.backend.speak(session, "Still here.")
    assert stack.spoken(session.session_id) == ["Still here."]


async def test_an_expired_session_is_live_session_gone(stack: Stack) -> None:
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    assert session.idle_timeout_seconds is not None
    stack.advance(session.idle_timeout_seconds + 1)
    with pytest.raises(LiveSessionGone) as info:
        await stack.backend.keep_alive(session)
    assert isinstance(info.value, HeyGenError)  # one `except HeyGenError` still catches it
    await stack.backend.stop(session)  # stopping a gone session is not an error


async def test_the_concurrency_limit_is_live_concurrency_limit(stack: Stack) -> None:
    await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    with pytest.raises(LiveConcurrencyLimit) as info:
        await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    assert "Concurrent limit" in str(info.value)


async def test_stop_ends_the_session_and_frees_the_slot(stack: Stack) -> None:
    first = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    await stack.backend.stop(first)
    assert stack.state(first.session_id) == "stopped"
    await stack.backend.stop(first)  # twice is fine
    second = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    assert second.session_id != first.session_id
    if stack.channel is not None:
        assert stack.channel.closed == [first.session_id, first.session_id]


async def test_list_open_reports_running_sessions(stack: Stack) -> None:
    assert await stack.backend.list_open() == []
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    listed = await stack.backend.list_open()
    assert [o.session_id for o in listed] == [session.session_id]
    assert listed[0].created_at is not None
    await stack.backend.stop(session)
    assert await stack.backend.list_open() == []


async def test_a_failed_start_gives_its_slot_back(stack: Stack) -> None:
    stack.faults.add(stack.route("start"), Fault.server_error(500))
    with pytest.raises(HeyGenError) as info:
        await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    assert info.value.status == 500
    assert len(stack.faults.requests(stack.route("create"))) == 1  # never sent twice
    assert len(stack.faults.requests(stack.route("stop"))) == 1  # best-effort cleanup
    # The slot is free again: a new session fits under the limit of one.
    session = await stack.backend.create_session(stack.avatar_id, stack.voice_id)
    assert stack.state(session.session_id) == "started"


# --- LiveAvatar specifics: the agent-control transport -----------------------------------


async def test_liveavatar_speech_is_a_speak_text_event_in_the_room(tmp_path: Path) -> None:
    fake = FakeLiveAvatar()
    async with served_clients(
        fake.app(), liveavatar_api_key=liveavatar.API_KEY, avatarbot_data_dir=tmp_path
    ) as clients:
        backend = build_room_api(clients.settings, clients, channel=LoopbackAgentControl(fake))
        session = await backend.create_session(liveavatar.AVATAR_ID, liveavatar.VOICE_ID)
        await backend.speak(session, "Hello from the bot.")
    command = fake.sessions[session.session_id].commands[0]
    assert command["event_type"] == "avatar.speak_text"
    assert command["session_id"] == session.session_id
    assert command["text"] == "Hello from the bot."
    # Speech went through LiveKit, not HTTP: no request other than token + start.
    assert [r.route for r in fake.faults.log] == ["session_token", "session_start"]


async def test_liveavatar_without_an_agent_token_says_why_it_cannot_speak(tmp_path: Path) -> None:
    fake = FakeLiveAvatar(grant_agent_token=False)
    async with served_clients(
        fake.app(), liveavatar_api_key=liveavatar.API_KEY, avatarbot_data_dir=tmp_path
    ) as clients:
        backend = build_room_api(clients.settings, clients, channel=LiveKitAgentControl())
        session = await backend.create_session(liveavatar.AVATAR_ID)
        with pytest.raises(AgentControlError) as info:
            await backend.speak(session, "Hello?")
    assert "agent token" in str(info.value)
    assert session.agent_token is None


@pytest.mark.skipif(
    importlib.util.find_spec("livekit") is not None,
    reason="livekit is installed; this checks the message when it is not",
)
async def test_the_livekit_channel_names_the_missing_package() -> None:
    session = AvatarRoom(
        backend=LiveApi.LIVEAVATAR,
        session_id="s",
        livekit_url="wss://127.0.0.1:1/room",
        access_token=SecretStr("c"),
        agent_token=SecretStr("a"),
    )
    with pytest.raises(AgentControlError) as info:
        await LiveKitAgentControl().publish(session, SpeakText(session_id="s", text="Hi"))
    assert "pip install livekit" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "variable"),
    [(LiveApi.LIVEAVATAR, "LIVEAVATAR_API_KEY"), (LiveApi.STREAMING, "HEYGEN_API_KEY")],
)
async def test_a_missing_key_names_the_variable(
    kind: LiveApi, variable: str, tmp_path: Path
) -> None:
    settings = load_settings(
        heygen_live_api=kind,
        avatarbot_data_dir=tmp_path,
        heygen_api_key=None,
        liveavatar_api_key=None,
    )
    async with heygen_clients(settings) as clients:
        with pytest.raises(MissingApiKeyError) as info:
            build_room_api(settings, clients)
    assert variable in str(info.value)
