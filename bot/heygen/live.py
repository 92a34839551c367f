"""One small interface over both live-avatar APIs, returning one session shape.

    rooms = build_room_api(settings, clients)                # LIVEAVATAR or STREAMING
    room = await rooms.create_session(avatar_id, voice_id)   # an `AvatarRoom`
    await rooms.speak(room, "Hello!")                        # say it verbatim
    await rooms.keep_alive(room); await rooms.stop(room)
    await rooms.list_open()                                  # what the account has running

The rest of the bot (bot/avatar/) only sees `AvatarRoom` and `RoomApi`; which vendor API
runs underneath is a setting (`HEYGEN_LIVE_API`).

How speech travels differs:
- HeyGen streaming v1: `speak` is `POST /v1/streaming.task` with task_type `repeat`.
- LiveAvatar: there is no speak endpoint. The avatar obeys `avatar.speak_text` events
  published on the LiveKit data topic `agent-control` by a participant in the session's room
  (https://docs.liveavatar.com/docs/full-mode/events). The viewer page is that participant by
  default (bot/avatar/live/speech.py says why); `LiveAvatarRooms.speak` publishes through an
  `AgentControlChannel` only when the server can join the room itself: LiveAvatar granted an
  agent token and the optional `livekit` package is installed (`LiveKitAgentControl`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.config import LiveApi, Settings
from bot.heygen import liveavatar, streaming_v1
from bot.heygen.errors import (
    CODE_AVATAR_NOT_FOUND,
    CODE_SESSION_NOT_FOUND,
    CODE_SESSION_STATE_WRONG,
    HeyGenError,
)
from bot.heygen.http import ApiClient

Quality = Literal["low", "medium", "high"]
AVATAR_PAGES = 5  # of 100 avatars each, per catalogue, before giving up the search
AVATAR_PARTICIPANT = "heygen"  # the avatar's LiveKit identity (the vendor web SDK's name)
READY_TIMEOUT_SECONDS = 30.0  # for the avatar to join the room before speech is refused


class AvatarRoom(BaseModel):
    """A running live-avatar session, the same shape from either backend.

    `access_token` is the LiveKit token for the viewer page (safe to hand to a browser;
    never log it). `session_token`/`agent_token` are server-side only.
    """

    model_config = ConfigDict(frozen=True)

    backend: LiveApi
    session_id: str
    livekit_url: str
    access_token: SecretStr
    agent_token: SecretStr | None = None
    session_token: SecretStr | None = None  # LiveAvatar bearer token for keep-alive/stop
    idle_timeout_seconds: int | None = None  # ends this long after the last activity
    max_duration_seconds: int | None = None  # hard cap, when the API tells us
    created_at: float = Field(default_factory=time.time)  # unix seconds

    def to_record(self) -> dict[str, Any]:
        """Plain JSON-able dict with the tokens revealed, for the session store only
        (so a restarted process can keep using, or stop, a session it started)."""
        record = self.model_dump(mode="json")
        for name in ("access_token", "agent_token", "session_token"):
            secret = getattr(self, name)
            record[name] = secret.get_secret_value() if secret is not None else None
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AvatarRoom:
        return cls.model_validate(record)


class SpeakResult(BaseModel):
    """What the backend told us about one utterance (for pacing and logs)."""

    id: str  # task id (streaming v1) or event id (LiveAvatar)
    duration_ms: float | None = None  # known only for streaming v1


class OpenSession(BaseModel):
    """A session the vendor reports as open (whoever started it): for cleanup and status."""

    session_id: str
    status: str | None = None  # vendor wording (e.g. "connected"); None when not reported
    created_at: float | None = None  # unix seconds


# --- errors: HeyGenError subclasses, so one `except HeyGenError` still catches them --------


class LiveSessionGone(HeyGenError):
    """The session expired (idle timeout), was stopped, or never existed: make a new one."""


class LiveConcurrencyLimit(HeyGenError):
    """The account runs as many sessions as its plan allows; stop one or wait."""


class LiveAvatarUnknown(HeyGenError):
    """The live API does not know the configured avatar (LIVE_AVATAR_ID)."""


class AgentControlError(HeyGenError):
    """An `agent-control` event could not be published into the session's LiveKit room."""

    def __init__(self, message: str) -> None:
        super().__init__(message, service="LiveKit")

    def __str__(self) -> str:
        return f"LiveKit: {self.message}"


# How each condition is recognised. Documented codes first: HeyGen streaming v1 answers
# 10006 "session not found", 10005 "session state wrong: closed", 10007 "Concurrent limit
# reached, please make sure you have closed other testing sessions", 10013 "avatar not
# found" (docs.heygen.com reference/errors and its discussions). LiveAvatar documents no
# codes for these, so its answers are also read by status and message: 404 on a session
# call = gone, 404/422 naming the avatar on the token call = unknown avatar, a message
# about concurrent sessions (any status, 429 included) = the concurrency limit.
_GONE_CODES = {CODE_SESSION_NOT_FOUND, CODE_SESSION_STATE_WRONG}
_AVATAR_CODES = {CODE_AVATAR_NOT_FOUND}
_CONCURRENCY = re.compile(r"concurren|too many (active |open )?sessions", re.IGNORECASE)
_GONE = re.compile(
    r"session\b.*\b(not found|not active|closed|expired|ended|stopped|does not exist)",
    re.IGNORECASE,
)
_AVATAR = re.compile(r"avatar", re.IGNORECASE)


def _classified(exc: HeyGenError, *, creating: bool) -> HeyGenError:
    """`exc` as LiveConcurrencyLimit / LiveAvatarUnknown / LiveSessionGone when it reads as
    one of those. `creating`: the call makes a session (a 404 there is not "gone")."""
    text = f"{exc.message} {exc.body}"
    if exc.is_concurrency_limit or (exc.status != 401 and _CONCURRENCY.search(text)):
        cls: type[HeyGenError] = LiveConcurrencyLimit
    elif creating and (
        exc.code in _AVATAR_CODES or (exc.status in (400, 404, 422) and _AVATAR.search(text))
    ):
        cls = LiveAvatarUnknown
    elif not creating and (
        exc.code in _GONE_CODES or exc.status in (404, 410) or bool(_GONE.search(exc.message))
    ):
        cls = LiveSessionGone
    else:
        return exc
    return cls(
        exc.message,
        status=exc.status,
        code=exc.code,
        body=exc.body,
        retry_after=exc.retry_after,
        service=exc.service,
        method=exc.method,
        path=exc.path,
    )


@contextlib.asynccontextmanager
async def _translated_errors(*, creating: bool = False) -> AsyncIterator[None]:
    try:
        yield
    except (LiveSessionGone, LiveConcurrencyLimit, LiveAvatarUnknown, AgentControlError):
        raise
    except HeyGenError as exc:
        new = _classified(exc, creating=creating)
        if new is exc:
            raise
        raise new from exc


# --- the interface ----------------------------------------------------------------------


@runtime_checkable
class RoomApi(Protocol):
    """What the bot needs from a live-avatar API."""

    name: LiveApi

    async def create_session(
        self,
        avatar_id: str,
        voice_id: str | None = None,
        *,
        language: str = "en",
        quality: Quality | None = None,
    ) -> AvatarRoom: ...

    async def speak(self, session: AvatarRoom, text: str) -> SpeakResult: ...

    async def interrupt(self, session: AvatarRoom) -> None: ...

    async def keep_alive(self, session: AvatarRoom) -> None: ...

    async def stop(self, session: AvatarRoom) -> None: ...

    async def has_avatar(self, avatar_id: str) -> bool:
        """Whether the API's own catalogue lists `avatar_id` (raises HeyGenError when it
        cannot be asked)."""
        ...

    async def list_open(self) -> list[OpenSession]: ...


class AgentControlChannel(Protocol):
    """Carries `agent-control` events into a LiveAvatar session's LiveKit room."""

    async def publish(self, session: AvatarRoom, event: liveavatar.AgentControlEvent) -> None: ...

    async def close(self, session: AvatarRoom) -> None: ...


async def _stop_quietly(stop: Callable[[], Awaitable[None]]) -> None:
    """Best-effort cleanup after a failed start: the original error is what matters."""
    with contextlib.suppress(HeyGenError):
        await stop()


# --- LiveAvatar ---------------------------------------------------------------------------


class LiveAvatarRooms:
    """LiveAvatar FULL mode: HTTP for the lifecycle, LiveKit data events for speech."""

    name = LiveApi.LIVEAVATAR

    def __init__(
        self,
        client: liveavatar.LiveAvatarClient,
        channel: AgentControlChannel,
        *,
        context_id: str | None = None,
        sandbox: bool = False,
    ) -> None:
        self.client = client
        self.channel = channel
        self.context_id = context_id
        self.sandbox = sandbox

    async def create_session(
        self,
        avatar_id: str,
        voice_id: str | None = None,
        *,
        language: str = "en",
        quality: Quality | None = None,
    ) -> AvatarRoom:
        request = liveavatar.SessionTokenRequest(
            avatar_id=avatar_id,
            avatar_persona=liveavatar.AvatarPersona(
                voice_id=voice_id, context_id=self.context_id, language=language
            ),
            video_settings=(
                liveavatar.VideoSettings(quality=liveavatar.VideoQuality(quality))
                if quality
                else None
            ),
            is_sandbox=self.sandbox,
        )
        async with _translated_errors(creating=True):
            minted = await self.client.create_session_token(request)
            try:
                started = await self.client.start_session(minted.session_token)
            except HeyGenError as exc:
                if exc.status is None or exc.is_server_error:
                    # The room may have started even though we got no answer: end it so it
                    # does not hold a concurrency slot (or bill) until its idle timeout.
                    await _stop_quietly(
                        lambda: self.client.stop_session(minted.session_id, minted.session_token)
                    )
                raise
        return AvatarRoom(
            backend=self.name,
            session_id=started.session_id,
            livekit_url=started.livekit_url,
            access_token=started.livekit_client_token,
            agent_token=started.livekit_agent_token,
            session_token=minted.session_token,
            idle_timeout_seconds=liveavatar.IDLE_TIMEOUT_SECONDS,
            max_duration_seconds=started.max_session_duration,
        )

    async def speak(self, session: AvatarRoom, text: str) -> SpeakResult:
        event = liveavatar.SpeakText(session_id=session.session_id, text=text)
        await self.channel.publish(session, event)
        return SpeakResult(id=event.event_id)

    async def interrupt(self, session: AvatarRoom) -> None:
        await self.channel.publish(session, liveavatar.Interrupt(session_id=session.session_id))

    async def keep_alive(self, session: AvatarRoom) -> None:
        # The API key + session_id, not the short-lived session token (liveavatar.py, 4.).
        async with _translated_errors():
            await self.client.keep_alive(session.session_id)

    async def stop(self, session: AvatarRoom) -> None:
        """End the session; a session that is already gone counts as stopped."""
        try:
            async with _translated_errors():
                await self.client.stop_session(session.session_id)
        except LiveSessionGone:
            pass
        finally:
            await self.channel.close(session)

    async def has_avatar(self, avatar_id: str) -> bool:
        """Whether `avatar_id` is in LiveAvatar's catalogue: the account's, then public."""
        for public in (False, True):
            for page in range(1, AVATAR_PAGES + 1):
                found = await self.client.list_avatars(public=public, page=page)
                if any(a.id == avatar_id for a in found.results):
                    return True
                if not found.next:
                    break
        return False

    async def list_open(self) -> list[OpenSession]:
        page = await self.client.list_sessions(liveavatar.SessionListType.ACTIVE)
        return [
            OpenSession(
                session_id=e.id,
                status="active",
                created_at=e.created_at.timestamp() if e.created_at else None,
            )
            for e in page.results
        ]


class LiveKitAgentControl:
    """Publishes `agent-control` events by joining the room as a backend participant.

    Needs the optional `livekit` package and an agent token (see the module docstring).
    One room connection per session, opened on first use, closed by `close()`.
    """

    def __init__(self) -> None:
        self._rooms: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    async def _room(self, session: AvatarRoom) -> Any:
        async with self._lock:
            room = self._rooms.get(session.session_id)
            if room is not None:
                return room
            if session.agent_token is None:
                raise AgentControlError(
                    "LiveAvatar granted no agent token for this session, so the server cannot "
                    "join its room; the viewer page must publish agent-control events"
                )
            try:
                from livekit import rtc  # optional dependency, imported only when used
            except ImportError:
                raise AgentControlError(
                    "the `livekit` package is not installed; `pip install livekit` to send "
                    "LiveAvatar speech from the server"
                ) from None
            # livekit 1.2 API: Room.connect(url, token); LocalParticipant.publish_data(
            # payload, *, reliable, topic); Room.disconnect() (all coroutines).
            room = rtc.Room()
            joined = asyncio.Event()

            def on_participant(participant: Any) -> None:
                if participant.identity == AVATAR_PARTICIPANT:
                    joined.set()

            room.on("participant_connected", on_participant)
            try:
                await room.connect(session.livekit_url, session.agent_token.get_secret_value())
            except rtc.ConnectError as exc:
                raise AgentControlError(f"could not join the room ({exc.message})") from None
            # Ready only once the avatar is in the room (FULL-mode lifecycle): events
            # published earlier may be lost.
            if AVATAR_PARTICIPANT not in room.remote_participants:
                try:
                    await asyncio.wait_for(joined.wait(), READY_TIMEOUT_SECONDS)
                except TimeoutError:
                    await room.disconnect()
                    raise AgentControlError("the avatar did not join its room") from None
            self._rooms[session.session_id] = room
            return room

    async def publish(self, session: AvatarRoom, event: liveavatar.AgentControlEvent) -> None:
        room = await self._room(session)
        await room.local_participant.publish_data(
            event.to_bytes(), reliable=True, topic=liveavatar.AGENT_CONTROL_TOPIC
        )

    async def close(self, session: AvatarRoom) -> None:
        async with self._lock:
            room = self._rooms.pop(session.session_id, None)
        if room is not None:
            await room.disconnect()


# --- HeyGen streaming v1 ------------------------------------------------------------------


class StreamingRooms:
    """HeyGen streaming v1 (LiveKit transport): every action is an HTTP call."""

    name = LiveApi.STREAMING

    def __init__(
        self,
        client: streaming_v1.StreamingClient,
        *,
        idle_timeout_seconds: int = streaming_v1.DEFAULT_IDLE_TIMEOUT_SECONDS,
    ) -> None:
        self.client = client
        self.idle_timeout_seconds = idle_timeout_seconds

    async def create_session(
        self,
        avatar_id: str,
        voice_id: str | None = None,
        *,
        language: str = "en",
        quality: Quality | None = None,
    ) -> AvatarRoom:
        request = streaming_v1.NewSessionRequest(
            avatar_id=avatar_id,
            voice=streaming_v1.VoiceSetting(voice_id=voice_id) if voice_id else None,
            quality=streaming_v1.AvatarQuality(quality) if quality else None,
            language=language,
            activity_idle_timeout=self.idle_timeout_seconds,
        )
        async with _translated_errors(creating=True):
            new = await self.client.new_session(request)
            try:
                await self.client.start_session(new.session_id)
            except HeyGenError:
                # streaming.new already holds a concurrency slot: give it back.
                await _stop_quietly(lambda: self.client.stop_session(new.session_id))
                raise
        return AvatarRoom(
            backend=self.name,
            session_id=new.session_id,
            livekit_url=new.url,
            access_token=new.access_token,
            agent_token=new.livekit_agent_token,
            idle_timeout_seconds=self.idle_timeout_seconds,
            max_duration_seconds=new.session_duration_limit,
        )

    async def speak(self, session: AvatarRoom, text: str) -> SpeakResult:
        async with _translated_errors():
            result = await self.client.repeat(session.session_id, text)
        return SpeakResult(id=result.task_id, duration_ms=result.duration_ms)

    async def interrupt(self, session: AvatarRoom) -> None:
        async with _translated_errors():
            await self.client.interrupt(session.session_id)

    async def keep_alive(self, session: AvatarRoom) -> None:
        async with _translated_errors():
            await self.client.keep_alive(session.session_id)

    async def stop(self, session: AvatarRoom) -> None:
        """Close the session; a session that is already gone counts as stopped."""
        try:
            async with _translated_errors():
                await self.client.stop_session(session.session_id)
        except LiveSessionGone:
            pass

    async def has_avatar(self, avatar_id: str) -> bool:
        return any(a.avatar_id == avatar_id for a in await self.client.list_avatars())

    async def list_open(self) -> list[OpenSession]:
        return [
            OpenSession(session_id=s.session_id, status=s.status, created_at=s.created_at)
            for s in await self.client.list_sessions()
        ]


# --- factory ------------------------------------------------------------------------------


class _ApiFactory(Protocol):
    """What the factory needs of `bot.heygen.clients.HeyGenClients`."""

    def heygen_api(self) -> ApiClient: ...

    def liveavatar_api(self) -> ApiClient: ...


def build_room_api(
    settings: Settings, clients: _ApiFactory, *, channel: AgentControlChannel | None = None
) -> RoomApi:
    """The backend `HEYGEN_LIVE_API` selects, over the shared HTTP session in `clients`
    (a `bot.heygen.clients.HeyGenClients`). A missing key raises MissingApiKeyError naming
    the variable."""
    if settings.heygen_live_api is LiveApi.STREAMING:
        return StreamingRooms(streaming_v1.StreamingClient(clients.heygen_api()))
    return LiveAvatarRooms(
        liveavatar.LiveAvatarClient(clients.liveavatar_api()),
        channel if channel is not None else LiveKitAgentControl(),
    )
