"""Live sessions end to end: AvatarDelivery + the real LiveAvatar / streaming v1 clients
against their fakes, state in a real SQLite store, one FakeClock for store, service and fake
(idle timeouts and keep-alive intervals pass without sleeping). The server publishes speech
here through `LoopbackAgentControl` (the fake room, standing in for the `livekit` SDK); the
viewer-page publisher is covered in tests/avatar/test_live_page.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.avatar.delivery import AvatarLimitReached, AvatarUnavailable, LiveScope
from bot.avatar.live.speech import Publisher
from tests.avatar_stack import Stack, avatar_stack, handbook_answer, liveavatar_stack
from tests.avatar_state import sql_state
from tests.fakes.heygen import API_KEY as HEYGEN_KEY
from tests.fakes.heygen import FakeHeyGen
from tests.fakes.heygen_streaming import AVATAR_ID as STREAMING_AVATAR
from tests.fakes.liveavatar import (
    API_KEY,
    AVATAR_ID,
    VOICE_ID,
    FakeLiveAvatar,
)

LIVE = {
    "liveavatar_api_key": API_KEY,
    "live_avatar_id": AVATAR_ID,
    "live_voice_id": VOICE_ID,
    "heygen_api_key": None,
}


def scope(channel: str = "C1", thread: str | None = None, user: str = "U1") -> LiveScope:
    return LiveScope(team="T1", channel=channel, thread_ts=thread, user=user)


async def said(*sentences: str) -> AsyncIterator[str]:
    for s in sentences:
        yield s


def live_stack(fake: FakeLiveAvatar, store, clock, tmp_path: Path, **settings):
    return liveavatar_stack(fake, store, clock, tmp_path / "data", **settings)


async def watch(stack: Stack, where: LiveScope) -> str:
    """What a viewer page does on load: join the scope's session. Returns the session id."""
    assert stack.delivery.live is not None
    session, publisher = await stack.delivery.live.viewer_session(
        stack.delivery.scope_key(where), None
    )
    assert publisher is Publisher.SERVER
    return session.session_id


async def test_questions_in_a_channel_share_one_session_and_link(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path) as stack:
        d = stack.delivery
        link = await d.live_link(scope())
        assert link is not None and link.startswith(f"{stack.web_url}/live/")
        assert len(link.rsplit("/", 1)[1]) >= 22  # >= 128 bits, URL-safe
        sid = await watch(stack, scope())
        for n in range(3):
            await d.speak(
                scope(thread=f"17.{n}", user=f"U{n}"),
                f"a{n}",
                said(f"Answer {n}, first.", f"Answer {n}, second."),
            )
            assert await d.live_link(scope(thread=f"17.{n}")) == link
        assert list(fake.sessions) == [sid] and d.live.sessions_started == 1
        assert fake.spoken(sid) == [
            f"Answer {n}, {w}." for n in range(3) for w in ("first", "second")
        ]
        config = fake.sessions[sid].config
        assert config["avatar_persona"]["voice_id"] == VOICE_ID
        assert config["video_settings"]["quality"] == "medium"


async def test_thread_reuse_gives_each_thread_its_own_session(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path, live_reuse="thread") as stack:
        d = stack.delivery
        assert await d.live_link(scope(thread="1.1")) != await d.live_link(scope(thread="2.2"))
        a = await watch(stack, scope(thread="1.1"))
        b = await watch(stack, scope(thread="2.2"))
        assert a != b and len(fake.active()) == 2


async def test_speech_waits_for_a_viewer_and_is_spoken_once_when_one_connects(
    store, clock, tmp_path
) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path) as stack:
        await stack.delivery.speak(scope(), "a1", said("One.", "Two."))
        assert not fake.sessions  # nobody watches: no session, nothing billed
        sid = await watch(stack, scope())
        await watch(stack, scope())  # a second tab / reload: nothing is said twice
        assert fake.spoken(sid) == ["One.", "Two."]


async def test_a_new_question_interrupts_the_previous_answer(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path) as stack:
        d = stack.delivery
        await d.speak(scope(), "old", said("Old one.", "Old two."))  # queued, nobody watching
        await d.speak(scope(), "new", said("New one."))
        sid = await watch(stack, scope())
        assert fake.spoken(sid) == ["New one."]  # the old answer's queue was dropped
        await d.speak(scope(), "newer", said("Newer."))
        assert fake.commands(sid)[-2:] == ["avatar.interrupt", "avatar.speak_text"]


async def test_replay_speaks_an_answer_again(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path) as stack:
        sid = await watch(stack, scope())
        await stack.delivery.speak(scope(), "a1", said("Alpha.", "Beta."))
        key = stack.delivery.scope_key(scope())
        assert await stack.delivery.live.replay(key, "a1") == 2
        assert fake.spoken(sid) == ["Alpha.", "Beta.", "Alpha.", "Beta."]
        assert await stack.delivery.live.replay(key, "a1") == 2  # not the replay's copy too
        assert fake.spoken(sid)[4:] == ["Alpha.", "Beta."]


async def test_a_session_gone_mid_answer_recovers_behind_the_same_link(
    store, clock, tmp_path
) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path) as stack:
        d = stack.delivery
        link = await d.live_link(scope())
        first = await watch(stack, scope())

        async def answer() -> AsyncIterator[str]:
            yield "Before the outage."
            fake.sessions[first].state = "stopped"  # LiveAvatar ended it (session.stopped)
            fake.sessions[first].end_reason = "ZOMBIE_SESSION_REAP"
            yield "After the outage."
            yield "And the end."

        await d.speak(scope(), "a1", answer())
        second = next(s for s in fake.sessions if s != first)
        assert fake.spoken(first) == ["Before the outage."]
        assert fake.spoken(second) == ["After the outage.", "And the end."]
        assert await d.live_link(scope()) == link


async def test_a_page_that_lost_its_session_gets_a_new_one_with_queued_speech(
    store, clock, tmp_path
) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path) as stack:
        d = stack.delivery
        first = await watch(stack, scope())
        clock.advance(301)  # LiveAvatar's idle timeout ended it while the page was away
        await d.speak(scope(), "a1", said("Kept for later."))
        key = d.scope_key(scope())
        session, _ = await d.live.viewer_session(key, first)  # the page: "mine is gone"
        assert session.session_id != first
        assert fake.spoken(session.session_id) == ["Kept for later."]


async def test_keep_alive_only_while_watched_then_idle_close(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(
        fake, store, clock, tmp_path, live_keepalive_seconds=60, live_idle_close_seconds=120
    ) as stack:
        d = stack.delivery
        sid = await watch(stack, scope())
        clock.advance(61)
        await d.live.viewer_heartbeat(d.scope_key(scope()))
        await d.live.tick()
        assert len(fake.faults.requests("session_keep_alive")) == 1
        clock.advance(61)  # the viewer left (no heartbeat for 61 s): no keep-alive
        await d.live.tick()
        assert len(fake.faults.requests("session_keep_alive")) == 1
        clock.advance(60)
        await d.live.tick()  # 121 s without a viewer: closed, so it stops costing money
        assert fake.sessions[sid].state == "stopped"
        assert fake.sessions[sid].end_reason == "USER_CLOSED"
        record = await store.get_live_session(d.scope_key(scope()))
        assert record is not None and record.state == "closed"


async def test_a_session_is_renewed_before_its_maximum_duration(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(
        fake, store, clock, tmp_path, live_max_session_seconds=600, live_keepalive_seconds=30
    ) as stack:
        d = stack.delivery
        first = await watch(stack, scope())
        for _ in range(18):  # 9 minutes, watched all along, keep-alives every 30 s
            clock.advance(30)
            await d.live.viewer_heartbeat(d.scope_key(scope()))
            await d.live.tick()
        assert fake.sessions[first].state == "stopped"
        [second] = [s.session_id for s in fake.active()]
        assert second != first


async def test_the_concurrency_cap_is_a_plain_sentence(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock, max_concurrent=5)
    async with live_stack(fake, store, clock, tmp_path, live_max_sessions=1) as stack:
        await watch(stack, scope("C1"))
        with pytest.raises(AvatarLimitReached, match="All 1 live avatar sessions are in use"):
            await stack.delivery.speak(scope("C2"), "a2", said("Hi."))
        await stack.delivery.speak(scope("C1"), "a1", said("Still fine here."))


async def test_the_vendor_concurrency_limit_is_a_plain_sentence(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock, max_concurrent=1)
    async with live_stack(fake, store, clock, tmp_path, live_max_sessions=5) as stack:
        await watch(stack, scope("C1"))
        with pytest.raises(AvatarLimitReached, match="as many live sessions as the account"):
            await watch(stack, scope("C2"))


async def test_the_daily_minutes_budget_is_a_plain_sentence(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(
        fake, store, clock, tmp_path, live_daily_minutes=2, live_keepalive_seconds=30
    ) as stack:
        d = stack.delivery
        await watch(stack, scope())
        for _ in range(5):
            clock.advance(30)
            await d.live.viewer_heartbeat(d.scope_key(scope()))
            await d.live.tick()
        with pytest.raises(AvatarLimitReached, match=r"live avatar time \(2 minutes\) is used up"):
            await d.speak(scope(), "a1", said("Too late."))


async def test_shutdown_closes_every_session(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock, max_concurrent=5)
    async with live_stack(fake, store, clock, tmp_path, live_max_sessions=5) as stack:
        await watch(stack, scope("C1"))
        await watch(stack, scope("C2"))
        assert len(fake.active()) == 2
    assert fake.active() == []


async def test_two_replicas_speak_each_sentence_once(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with (
        live_stack(fake, store, clock, tmp_path, owner="replica-a") as a,
        live_stack(fake, store, clock, tmp_path / "b", owner="replica-b") as b,
    ):
        sid = await watch(a, scope())
        await watch(b, scope())  # both replicas see a viewer and may publish
        await a.delivery.speak(scope(), "a1", said("One.", "Two."))
        await b.delivery.speak(scope(), "a2", said("Three."))
        await a.delivery.live.pump(a.delivery.scope_key(scope()))
        await b.delivery.live.pump(b.delivery.scope_key(scope()))
        assert fake.spoken(sid).count("One.") == 1 and fake.spoken(sid)[-1] == "Three."
        assert len(fake.sessions) == 1


async def first_event(url: str) -> tuple[str, dict]:
    """The first server-sent event a viewer page receives from `url`."""
    fields: dict[str, str] = {}
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        while (line := (await resp.content.readline()).decode().rstrip("\n")) or not fields:
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return fields["event"], json.loads(fields["data"])


async def test_a_replica_that_started_later_shows_the_whole_transcript(
    store, clock, tmp_path
) -> None:
    fake = FakeLiveAvatar(clock=clock)
    await store.save_answer(handbook_answer())
    async with live_stack(fake, store, clock, tmp_path, owner="replica-a") as a:
        await a.delivery.speak(scope(), "a1", said("Run add."))
        await a.delivery.speak(scope(), "a2", said("Still being said."))  # not saved yet
        link = await a.delivery.live_link(scope())
        # replica B: its own process state, the same database file, started afterwards
        async with (
            sql_state(tmp_path / "state.db", clock) as store_b,
            live_stack(fake, store_b, clock, tmp_path / "b", owner="replica-b") as b,
        ):
            token = link.rsplit("/", 1)[-1]
            event, data = await first_event(f"{b.web_url}/live/{token}/events")
            # a1 was interrupted unspoken (nobody watched): its replay button still works there
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{b.web_url}/live/{token}/replay/a1") as resp,
            ):
                assert resp.status == 200 and (await resp.json()) == {"queued": 1}
    assert event == "snapshot"
    assert data["answers"] == [
        {
            "answer_id": "a1",
            "question": "How do I add documents?",
            "text": "Run add.",
            "sources": [{"number": 1, "title": "Handbook", "link": "https://docs.example.com/add"}],
        },
        {"answer_id": "a2", "question": "", "text": "Still being said.", "sources": []},
    ]


async def test_streaming_v1_speaks_over_rest(store, clock, tmp_path) -> None:
    fake = FakeHeyGen()
    async with avatar_stack(
        fake.app(),
        store,
        clock,
        tmp_path / "data",
        heygen_api_key=HEYGEN_KEY,
        heygen_live_api="streaming",
        live_avatar_id=STREAMING_AVATAR,
        liveavatar_api_key=None,
    ) as stack:
        sid = await watch(stack, scope())
        await stack.delivery.speak(scope(), "a1", said("Hello from v1."))
        [task] = fake.streaming.sessions[sid].tasks
        assert task["text"] == "Hello from v1." and task["task_type"] == "repeat"


async def test_without_public_base_url_there_is_no_link(store, clock, tmp_path, caplog) -> None:
    fake = FakeLiveAvatar(clock=clock)
    caplog.set_level("INFO")
    async with live_stack(fake, store, clock, tmp_path, public_base_url=None) as stack:
        assert not stack.delivery.live_enabled
        assert await stack.delivery.live_link(scope()) is None
        with pytest.raises(AvatarUnavailable) as off:
            await stack.delivery.speak(scope(), "a1", said("Hi."))
        assert off.value.variable == "PUBLIC_BASE_URL"
    assert sum("PUBLIC_BASE_URL" in r.getMessage() for r in caplog.records) == 1


async def test_an_old_link_while_live_is_off_says_so(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with live_stack(fake, store, clock, tmp_path, public_base_url=None) as stack:
        link = await store.live_link(stack.delivery.scope_key(scope()), 3600)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{stack.web_url}/live/{link.token}") as resp:
                assert resp.status == 503
                assert "The live avatar is turned off" in await resp.text()
            async with http.post(f"{stack.web_url}/live/{link.token}/session") as resp:
                assert resp.status == 503
        assert not fake.sessions
