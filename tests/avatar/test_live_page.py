"""The viewer page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Everything is real — the bot's web routes, AvatarDelivery, the LiveAvatar client against its
fake, the SQLite store, the page's own script — except LiveKit's network room: no LiveKit
server can run here, so the page gets `tests/fakes/livekit_room.js` in place of the vendored
livekit-client bundle, and its connect/publish calls are routed into the LiveAvatar fake's
room (which checks the client token and the agent-control event JSON). One test loads the
real bundle to check the names the page relies on.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.avatar.delivery import LiveScope
from bot.avatar.live.events import BusEvent
from bot.heygen.live import AgentControlError
from tests.avatar_stack import HANDBOOK, avatar_stack, handbook_answer
from tests.fakes.clock import FakeClock
from tests.fakes.liveavatar import API_KEY, AVATAR_ID, FakeLiveAvatar

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_ROOM = (Path(__file__).parents[1] / "fakes" / "livekit_room.js").read_text()
LIVE = {"liveavatar_api_key": API_KEY, "live_avatar_id": AVATAR_ID, "heygen_api_key": None}
SCOPE = LiveScope(team="T1", channel="C1", thread_ts="1.1", user="U1")
expect = playwright_api.expect

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists(),
    reason="Debian chromium is not installed (make test installs it)",
)


class Room:
    """The test's side of the replaced LiveKit room: into the LiveAvatar fake."""

    def __init__(self, fake: FakeLiveAvatar, *, avatar_joins: bool = True) -> None:
        self.fake = fake
        self.avatar_joins = avatar_joins  # False: the test lets the avatar in itself
        self.joined: list[str] = []  # client tokens that joined
        self.problems: list[str] = []

    async def handle(self, route: Any, request: Any) -> None:
        body = json.loads(request.post_data or "{}")
        reply: Any = None
        try:
            if request.url.endswith("/connect"):
                session = next(
                    (s for s in self.fake.sessions.values() if s.room_url == body["url"]), None
                )
                if session is None or session.state != "started":
                    raise AgentControlError("no such room")
                if body["token"] != session.client_token:
                    raise AgentControlError("token not valid for this room")
                self.joined.append(body["token"])
                present = self.fake.connect(body["url"], body["token"])
                reply = {"present": present, "avatar_joins": self.avatar_joins}
            elif request.url.endswith("/avatar-join"):
                self.fake.avatar_joins(body["url"])
                reply = {}
            else:
                assert body["reliable"] is True
                reply = self.fake.deliver(
                    body["url"], body["token"], body["topic"], body["payload"].encode()
                )
        except (AgentControlError, AssertionError) as exc:
            self.problems.append(str(exc))
            await route.fulfill(status=403, body=str(exc))
            return
        await route.fulfill(status=200, body=json.dumps(reply), content_type="application/json")


@asynccontextmanager
async def browser(tmp_path: Path, room: Room | None) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        if room is not None:

            async def vendored(route: Any, _request: Any) -> None:
                await route.fulfill(
                    status=200, body=FAKE_ROOM, content_type="application/javascript"
                )

            await context.route("**/live/static/livekit-client.umd.js", vendored)
            await context.route("**/__room/**", room.handle)
        try:
            yield context
        finally:
            await context.close()


async def said(*sentences: str) -> AsyncIterator[str]:
    for s in sentences:
        yield s


async def until(check: Any, limit: float = 10.0) -> None:
    """Wait for a condition on the fakes (a hang guard, not a timing assertion)."""
    async with asyncio.timeout(limit):
        while not check():  # noqa: ASYNC110 - the fakes' state has no event to await
            await asyncio.sleep(0.02)


def stack_for(fake: FakeLiveAvatar, store: Any, clock: FakeClock, tmp_path: Path, **settings):
    return avatar_stack(fake.app(), store, clock, tmp_path / "data", **{**LIVE, **settings})


def live_session_ids(fake: FakeLiveAvatar) -> list[str]:
    return [s.session_id for s in fake.active()]


async def test_queued_answer_transcript_sources_and_replay(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    room = Room(fake)
    async with stack_for(fake, store, clock, tmp_path) as stack, browser(tmp_path, room) as ctx:
        d: Any = stack.delivery
        await store.save_answer(handbook_answer(spoken="Run add. Then ask.", thread_ts="1.1"))
        # asked before anybody watches: queued, no session started
        await d.speak(SCOPE, "a1", said("Run add.", "Then ask."))
        assert not fake.sessions
        link = await d.live_link(SCOPE)
        page = await ctx.new_page()
        await page.goto(link)
        await expect(page.locator("#status")).to_have_attribute("data-status", "live")
        [sid] = live_session_ids(fake)
        await until(lambda: fake.spoken(sid) == ["Run add.", "Then ask."])
        first = page.locator('li[data-answer-id="a1"]')
        await expect(first.locator(".question")).to_have_text("How do I add documents?")
        await expect(first.locator(".sources a")).to_have_attribute(
            "href", "https://docs.example.com/add"
        )

        # a new answer arrives without a reload and is spoken at once
        await d.speak(SCOPE, "a2", said("Second answer."))
        await expect(page.locator('li[data-answer-id="a2"] .text')).to_have_text("Second answer.")
        await until(lambda: fake.spoken(sid)[-1:] == ["Second answer."])

        await first.locator(".replay").click()
        await until(lambda: fake.spoken(sid).count("Then ask.") == 2)
        assert fake.spoken(sid) == [
            "Run add.",
            "Then ask.",
            "Second answer.",
            "Run add.",
            "Then ask.",
        ]
        assert room.problems == [] and room.joined == [fake.sessions[sid].client_token]

        # no key or token in the page source, nor in its URL
        async with aiohttp.ClientSession() as http, http.get(link) as resp:
            source = await resp.text()
        for secret in (fake.sessions[sid].client_token, fake.sessions[sid].token, API_KEY):
            assert secret not in source and secret not in link

        # the same link in a second tab: both pages hear every sentence and race to publish
        # it; the claim lets exactly one of them (the replaced room does not displace)
        other = await ctx.new_page()
        await other.goto(link)
        await expect(other.locator("#status")).to_have_attribute("data-status", "live")
        assert fake.spoken(sid).count("Run add.") == 2  # joining republished nothing
        await d.speak(SCOPE, "a3", said("Tab one.", "Tab two.", "Tab three."))
        await expect(other.locator('li[data-answer-id="a3"] .text')).to_have_text(
            "Tab one. Tab two. Tab three."
        )
        await until(lambda: fake.spoken(sid)[-1:] == ["Tab three."])
        assert fake.spoken(sid)[-3:] == ["Tab one.", "Tab two.", "Tab three."]
        assert len(fake.spoken(sid)) == 8
        # LiveKit itself displaces the first tab's connection (one identity per client token)
        await page.evaluate("window.__rooms.at(-1).emit('disconnected', 2)")
        await expect(page.locator("#status")).to_have_attribute("data-status", "elsewhere")


async def test_a_stopped_session_is_replaced_behind_the_same_link(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    room = Room(fake)
    async with stack_for(fake, store, clock, tmp_path) as stack, browser(tmp_path, room) as ctx:
        d: Any = stack.delivery
        link = await d.live_link(SCOPE)
        page = await ctx.new_page()
        await page.goto(link)
        await expect(page.locator("#status")).to_have_attribute("data-status", "live")
        [first] = live_session_ids(fake)
        # LiveAvatar ends the session; the page hears session.stopped on agent-response
        fake.sessions[first].state, fake.sessions[first].end_reason = "stopped", "IDLE_TIMEOUT"
        await page.evaluate(
            "window.__rooms.at(-1).agentSays({event_type: 'session.stopped',"
            f" session_id: '{first}', end_reason: 'IDLE_TIMEOUT'}})"
        )
        await until(lambda: len(live_session_ids(fake)) == 1 and live_session_ids(fake)[0] != first)
        [second] = live_session_ids(fake)
        await expect(page.locator("#status")).to_have_attribute("data-status", "live")
        await d.speak(SCOPE, "a1", said("Back again."))
        await until(lambda: fake.spoken(second) == ["Back again."])
        assert page.url == link and room.problems == []

        # the bot closed the idle session: the page says so and offers to watch again
        await d.bus.publish(d.scope_key(SCOPE), BusEvent.ENDED, reason="idle")
        await expect(page.locator("#status")).to_have_attribute("data-status", "ended")
        await expect(page.locator("#rejoin")).to_be_visible()


async def test_expired_and_unknown_links_show_a_clear_page(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack_for(fake, store, clock, tmp_path) as stack, browser(tmp_path, None) as ctx:
        link = await stack.delivery.live_link(SCOPE)
        page = await ctx.new_page()
        response = await page.goto(f"{stack.web_url}/live/not-a-real-token")
        assert response.status == 404
        await expect(page.locator("#notice")).to_have_attribute("data-kind", "unknown")
        clock.advance(24 * 3600 + 1)
        response = await page.goto(link)
        assert response.status == 410
        await expect(page.locator("h1")).to_have_text("This live link has expired")
        assert not fake.sessions


async def test_the_vendored_livekit_client_has_what_the_page_uses(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    async with stack_for(fake, store, clock, tmp_path) as stack, browser(tmp_path, None) as ctx:
        page = await ctx.new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        await page.goto(await stack.delivery.live_link(SCOPE))
        names = await page.evaluate("""() => [typeof LivekitClient.Room,
            LivekitClient.RoomEvent.DataReceived, LivekitClient.RoomEvent.TrackSubscribed,
            LivekitClient.RoomEvent.Disconnected,
            typeof LivekitClient.DisconnectReason.DUPLICATE_IDENTITY,
            typeof new LivekitClient.Room().localParticipant.publishData]""")
        assert names == [
            "function",
            "dataReceived",
            "trackSubscribed",
            "disconnected",
            "number",
            "function",
        ]
        # the page and the real bundle run under the page's CSP without a violation
        assert not [m for m in console if "Content Security Policy" in m], console


async def test_speech_waits_for_the_avatar_and_a_lost_sentence_is_sent_once_more(
    store, clock, tmp_path
) -> None:
    fake = FakeLiveAvatar(clock=clock)
    room = Room(fake, avatar_joins=False)  # the avatar arrives when the test says
    async with stack_for(fake, store, clock, tmp_path) as stack, browser(tmp_path, room) as ctx:
        d: Any = stack.delivery
        await d.speak(SCOPE, "a1", said("First words.", "Second words."))
        page = await ctx.new_page()
        await page.goto(await d.live_link(SCOPE))
        await expect(page.locator("#status")).to_have_attribute("data-status", "waiting")
        [sid] = live_session_ids(fake)
        # connected, but the avatar is not in the room: nothing is claimed or published
        assert fake.sessions[sid].ignored == [] and fake.spoken(sid) == []
        assert len(await store.pending_speech(d.scope_key(SCOPE))) == 2
        fake.lose_next_speech = 1  # the first publish vanishes on the way
        await page.evaluate("window.__rooms.at(-1).avatarJoins()")
        await expect(page.locator("#status")).to_have_attribute("data-status", "live")
        await until(lambda: fake.spoken(sid) == ["First words.", "Second words."], limit=30)
        assert fake.sessions[sid].ignored == [] and room.problems == []
        # the re-sent sentence kept its event id: one utterance, said once
        ids = [c["event_id"] for c in fake.sessions[sid].commands]
        assert len(set(ids)) == 2


async def test_the_page_people_see(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    room = Room(fake, avatar_joins=False)
    settings = {"live_link_ttl_hours": 2}
    async with (
        stack_for(fake, store, clock, tmp_path, **settings) as stack,
        browser(tmp_path, room) as ctx,
    ):
        d: Any = stack.delivery
        await store.save_answer(
            handbook_answer(
                sources=[HANDBOOK, {"number": 2, "title": "Notes (a file)", "link": ""}]
            )
        )
        await d.speak(SCOPE, "a1", said("Run add."))
        await d.speak(SCOPE, "a2", said("The newest answer."))
        page = await ctx.new_page()
        await page.goto(await d.live_link(SCOPE))
        # while connecting: a poster, not a black box; autoplay rules: a click starts sound
        await expect(page.locator("#poster")).to_be_visible()
        await expect(page.locator("#sound")).to_have_text("🔊 Click to start sound")
        await page.locator("#sound").click()
        await expect(page.locator("#sound")).to_be_hidden()
        # newest answer on top, numbered sources that link when they can
        await expect(page.locator("#answers > li").first).to_have_attribute("data-answer-id", "a2")
        sources = page.locator('li[data-answer-id="a1"] .sources li')
        await expect(sources.nth(0)).to_have_text("[1] Handbook")
        await expect(sources.nth(0).locator("a")).to_have_attribute(
            "href", "https://docs.example.com/add"
        )
        await expect(sources.nth(1)).to_have_text("[2] Notes (a file)")
        assert await sources.nth(1).locator("a").count() == 0
        await expect(page.locator(".hint")).to_contain_text("works for 2 hours")
        await expect(page.locator('li[data-answer-id="a1"] .replay')).to_have_text("↻ Replay")
        # captions follow the agent's avatar.speak_started / speak_ended
        [sid] = live_session_ids(fake)
        fake.lose_next_speech = 5  # keep the sentence unconfirmed so the test drives the events
        await page.evaluate("window.__rooms.at(-1).avatarJoins()")
        await until(lambda: fake.sessions[sid].avatar_joined)
        event_id = await page.evaluate(
            """async () => { while (!window.__avatarPage.sent.size)
                   await new Promise((r) => setTimeout(r, 20));
               return [...window.__avatarPage.sent.keys()][0]; }"""
        )
        await page.evaluate(
            "(id) => window.__rooms.at(-1).agentSays({event_type: 'avatar.speak_started',"
            " event_id: 'x1', source_event_id: id})",
            event_id,
        )
        await expect(page.locator("#caption")).to_have_text("The newest answer.")
        await page.evaluate(
            "(id) => window.__rooms.at(-1).agentSays({event_type: 'avatar.speak_ended',"
            " event_id: 'x2', source_event_id: id})",
            event_id,
        )
        await expect(page.locator("#caption")).to_be_hidden()
        shots = os.environ.get("AVATARBOT_SCREENSHOTS")
        if shots:  # `AVATARBOT_SCREENSHOTS=docs/img pytest -k page_people_see` refreshes them
            await page.evaluate(
                "window.__rooms.at(-1).agentSays({event_type: 'avatar.speak_started',"
                " event_id: 'x3', source_event_id: [...window.__avatarPage.sent.keys()][0]})"
            )
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.screenshot(path=f"{shots}/live-page-desktop.png", full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.screenshot(path=f"{shots}/live-page-phone.png", full_page=True)
        # the phone layout does not scroll sideways
        await page.set_viewport_size({"width": 390, "height": 844})
        assert await page.evaluate("document.documentElement.scrollWidth <= 390")


async def test_a_refused_stream_is_explained_on_the_page(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    room = Room(fake)
    settings = {"live_streams_per_link": 1}
    async with (
        stack_for(fake, store, clock, tmp_path, **settings) as stack,
        browser(tmp_path, room) as ctx,
    ):
        link = await stack.delivery.live_link(SCOPE)
        first = await ctx.new_page()
        await first.goto(link)
        await expect(first.locator("#status")).to_have_attribute("data-status", "live")
        second = await ctx.new_page()
        await second.goto(link)
        await expect(second.locator("#alert")).to_contain_text("too many windows")
        await expect(page_title(second)).to_have_text("Avatar answers")


def page_title(page: Any) -> Any:
    return page.locator("h1")


async def test_the_expired_page_says_how_long_links_last(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    settings = {"live_link_ttl_hours": 2}
    async with (
        stack_for(fake, store, clock, tmp_path, **settings) as stack,
        browser(tmp_path, None) as ctx,
    ):
        link = await stack.delivery.live_link(SCOPE)
        clock.advance(2 * 3600 + 1)
        page = await ctx.new_page()
        await page.goto(link)
        await expect(page.locator("#notice p")).to_contain_text("Live links last 2 hours")


async def test_confirmations_without_our_event_id_confirm_in_order(store, clock, tmp_path) -> None:
    fake = FakeLiveAvatar(clock=clock)
    fake.reply_source_ids = False  # `source_event_id` is documented as nullable
    room = Room(fake)
    async with stack_for(fake, store, clock, tmp_path) as stack, browser(tmp_path, room) as ctx:
        d: Any = stack.delivery
        await d.speak(SCOPE, "a1", said("One.", "Two.", "Three."))
        page = await ctx.new_page()
        await page.goto(await d.live_link(SCOPE))
        await expect(page.locator("#status")).to_have_attribute("data-status", "live")
        [sid] = live_session_ids(fake)
        await until(lambda: fake.spoken(sid) == ["One.", "Two.", "Three."])
        # every sentence is confirmed, so none is ever sent again
        await page.wait_for_function(
            """() => { const s = [...window.__avatarPage.sent.values()];
                       return s.length === 3 && s.every((x) => x.confirmed); }""",
            timeout=10000,
        )
        assert fake.spoken(sid) == ["One.", "Two.", "Three."]
