"""Videos through Slack end to end: /ask-video and "Make a video" -> the real avatar service
-> the HeyGen fake renders -> the MP4 uploaded into the thread with files_upload_v2."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.slack.videos import MAKING
from tests.fakes.faults import Fault
from tests.fakes.heygen import API_KEY, FakeHeyGen
from tests.fakes.liveavatar import API_KEY as LIVE_KEY
from tests.fakes.liveavatar import AVATAR_ID, VOICE_ID, FakeLiveAvatar
from tests.fakes.server import serve
from tests.slack_harness import Bot, running_bot
from tests.test_slack_app import mention


@asynccontextmanager
async def bot_with_videos(tmp_path: Path, fake: FakeHeyGen, **settings: Any) -> AsyncIterator[Bot]:
    async with serve(fake.app()) as vendor_url:
        fake.file_base = vendor_url
        async with running_bot(
            tmp_path,
            heygen_api_base=vendor_url,
            heygen_api_key=API_KEY,
            heygen_avatar_id="Angela-inblackskirt-20220820",
            heygen_voice_id="hg-voice-1",
            video_poll_seconds=0.01,
            **settings,
        ) as bot:
            yield bot


def live_settings(vendor_url: str) -> dict[str, Any]:
    return {
        "liveavatar_api_base": vendor_url,
        "liveavatar_api_key": LIVE_KEY,
        "live_avatar_id": AVATAR_ID,
        "live_voice_id": VOICE_ID,
        "public_base_url": "https://bot.example",
    }


def make_video_click(answer: dict[str, Any]) -> dict[str, Any]:
    """The "Make a video" button of a posted answer, as its click arrives."""
    actions = next(b for b in answer["blocks"] if b["type"] == "actions")
    button = next(e for e in actions["elements"] if e["action_id"] == "make_video")
    return {
        "type": "button",
        "action_id": "make_video",
        "block_id": actions["block_id"],
        "value": button["value"],
    }


def completed(bot: Bot) -> list[dict[str, Any]]:
    return [c.args for c in bot.slack.calls("files.completeUploadExternal")]


def progress_texts(bot: Bot) -> list[str]:
    """Every text the progress message showed (posted, then updated in place)."""
    posted = [c.args["text"] for c in bot.slack.calls("chat.postMessage")]
    updated = [c.args["text"] for c in bot.slack.calls("chat.update")]
    return [t for t in posted if t.startswith(("🎬 Video", "🎬 Rendering"))] + updated


async def test_ask_video_acks_then_uploads_the_video_into_its_thread(tmp_path: Path) -> None:
    fake = FakeHeyGen(polls_to_complete=2)
    async with bot_with_videos(tmp_path, fake) as bot:
        resp = await bot.command("/ask-video", "how do I add documents?", user="UASKER")
        assert resp.status == 200
        [said] = await bot.slack.wait_for(lambda: bot.slack.responses)
        assert said["response_type"] == "ephemeral" and "in a thread" in said["text"]
        assert "channel" in said["text"] and "Progress shows in the channel" not in said["text"]
        [done] = await bot.slack.wait_for(lambda: completed(bot))
        top = bot.slack.posted("C1")[0]
        # a real mention of the asker (not an escaped one), the question escaped
        assert top["blocks"][0]["text"]["text"].startswith("🎬 <@UASKER> asked for a video")
        assert "&lt;@" not in json.dumps(top["blocks"])
        assert done["channel_id"] == "C1" and done["thread_ts"] == top["ts"]
        [video_id] = fake.videos
        assert f"<{fake.page_url(video_id)}|open on HeyGen>" in done["initial_comment"]
        [uploaded] = bot.slack.uploads.values()
        assert uploaded == fake.mp4_bytes
        # The text answer is in the same thread, and the progress message ends "ready".
        thread = [m for m in bot.slack.posted("C1") if m.get("thread_ts") == top["ts"]]
        assert any("[1]" in m["text"] for m in thread)
        await bot.slack.wait_for(lambda: any("video is ready" in t for t in progress_texts(bot)))
        assert "(in the thread)" not in " ".join(progress_texts(bot))
        for text in progress_texts(bot):  # one line per state, never said twice
            assert "queued… Queued" not in text and text.count("Rendering") <= 1, text
        [job] = fake.videos.values()
        assert "avatarbot knowledge add" in str(job)
        # the video's length (HeyGen's `duration`, 4.2 s in the fake) reaches the metric
        async with bot.http.get(f"{bot.url}/metrics") as resp:
            metrics = await resp.text()
        minutes = next(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("avatarbot_heygen_video_minutes_total ")
        )
        assert minutes >= 4.2 / 60


async def test_ask_video_checks_come_before_any_public_post(tmp_path: Path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with bot_with_videos(tmp_path, fake, slack_user_rate_per_minute=6) as bot:
        too_long = "why " * 2000
        for text in [too_long, "<@UBOT>", *["how do I add documents?"] * 12]:
            assert (await bot.command("/ask-video", text)).status == 200
        await bot.slack.wait_for(lambda: len(bot.slack.responses) == 14)
        await bot.idle()
        top_level = [m for m in bot.slack.posted("C1") if not m.get("thread_ts")]
        assert len(top_level) == 6  # only the admitted ones; the rest were told privately
        said = [r["text"] for r in bot.slack.responses]
        assert all(r["response_type"] == "ephemeral" for r in bot.slack.responses)
        assert sum("faster than I can answer" in t for t in said) == 6
        assert any("characters long" in t for t in said)
        assert any("Ask me a question" in t for t in said)


async def test_ask_video_with_videos_off_says_what_turns_them_on(tmp_path: Path) -> None:
    fake = FakeHeyGen()
    async with (
        serve(fake.app()) as vendor_url,
        running_bot(tmp_path, heygen_api_base=vendor_url, heygen_api_key=API_KEY) as bot,
    ):  # a key, but no avatar
        await bot.command("/ask-video", "how do I add documents?")
        [said] = await bot.slack.wait_for(lambda: bot.slack.responses)
        assert "HEYGEN_AVATAR_ID" in said["text"] and "HEYGEN_API_KEY" not in said["text"]
        assert not bot.slack.posted("C1") and not fake.videos


async def test_ask_video_for_a_question_the_documents_cannot_answer(tmp_path: Path) -> None:
    fake = FakeHeyGen()
    async with bot_with_videos(tmp_path, fake) as bot:
        await bot.command("/ask-video", "What is the capital of France?")
        await bot.slack.wait_for(
            lambda: any("No video this time" in m["text"] for m in bot.slack.posted("C1"))
        )
        await bot.idle()
        assert not fake.videos  # nothing rendered for a non-answer
        answer = next(m for m in bot.slack.posted("C1") if "couldn't find" in m["text"])
        assert not [b for b in answer["blocks"] if b["type"] == "actions"]


async def test_a_failed_render_is_told_in_the_thread(tmp_path: Path) -> None:
    fake = FakeHeyGen(polls_to_complete=1, fail_renders=True)
    async with bot_with_videos(tmp_path, fake) as bot:
        await bot.command("/ask-video", "how do I add documents?")
        await bot.slack.wait_for(lambda: any("⚠️" in t for t in progress_texts(bot)))
        failed = next(t for t in progress_texts(bot) if "⚠️" in t)
        assert failed == "⚠️ HeyGen could not render the video: Avatar rendering timed out."
        assert not completed(bot)


async def test_a_video_slack_will_not_take_is_told_with_its_heygen_page(tmp_path: Path) -> None:
    fake = FakeHeyGen(polls_to_complete=1)
    async with bot_with_videos(tmp_path, fake) as bot:
        refused = Fault.raw(200, {"ok": False, "error": "missing_scope"})
        bot.slack.faults.add("files.getUploadURLExternal", refused, times=10)
        await bot.command("/ask-video", "how do I add documents?")
        await bot.slack.wait_for(lambda: any("⚠️" in t for t in progress_texts(bot)))
        [video_id] = fake.videos
        failed = next(t for t in progress_texts(bot) if "⚠️" in t)
        assert "posting it here failed (Slack refused the upload (missing_scope))" in failed
        assert fake.page_url(video_id) in failed and not completed(bot)


async def test_make_a_video_button_renders_that_answer(tmp_path: Path) -> None:
    fake = FakeHeyGen(polls_to_complete=1)
    async with bot_with_videos(tmp_path, fake) as bot:
        await bot.event(mention())
        [answer] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        resp = await bot.action(make_video_click(answer))
        assert resp.status == 200
        [done] = await bot.slack.wait_for(lambda: completed(bot))
        assert done["thread_ts"] == "1700000000.000100"
        assert list(bot.slack.uploads.values()) == [fake.mp4_bytes]


async def test_answers_get_a_watch_live_link_served_by_the_same_server(tmp_path: Path) -> None:
    live = FakeLiveAvatar()
    async with (
        serve(live.app()) as vendor_url,
        running_bot(tmp_path, **live_settings(vendor_url)) as bot,
    ):
        await bot.event(mention())
        [answer] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        actions = next(b for b in answer["blocks"] if b["type"] == "actions")
        watch = next(e for e in actions["elements"] if e["action_id"] == "watch_live")
        assert watch["url"].startswith("https://bot.example/live/")
        assert all(e["action_id"] != "make_video" for e in actions["elements"])  # videos off
        # The viewer page is on this server; the answer's sentences wait for a viewer.
        path = watch["url"].removeprefix("https://bot.example")
        async with bot.http.get(f"{bot.url}{path}") as resp:
            assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
        store = bot.server.services.store
        [record] = await store.thread_answers("C1", "1700000000.000100")
        await bot.idle()  # speech is queued right after the answer is posted
        speech = await store.answer_speech(record.id)
        assert "avatarbot knowledge add" in " ".join(s.text for s in speech)


async def test_ask_video_where_the_bot_is_not_a_member_is_explained(tmp_path: Path) -> None:
    async with bot_with_videos(tmp_path, FakeHeyGen()) as bot:
        bot.slack.faults.add(
            "chat.postMessage", Fault.raw(200, {"ok": False, "error": "not_in_channel"})
        )
        resp = await bot.command("/ask-video", "how do I add documents?", channel="C5")
        assert resp.status == 200
        await bot.slack.wait_for(lambda: len(bot.slack.responses) == 2)
        reply = bot.slack.responses[-1]
        assert "Slack refused a request (not_in_channel)" in reply["text"]
        assert "error id" in reply["text"]


async def test_repeated_make_a_video_clicks_leave_one_progress_message(tmp_path: Path) -> None:
    fake = FakeHeyGen(polls_to_complete=None)
    async with bot_with_videos(tmp_path, fake) as bot:
        await bot.event(mention())
        [answer] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        click = make_video_click(answer)
        for user in ("U1", "U1", "U2"):
            assert (await bot.action(click, user=user)).status == 200
        await bot.slack.wait_for(lambda: len(bot.slack.calls("chat.postEphemeral")) == 3)
        await bot.slack.wait_for(lambda: fake.videos and progress_texts(bot))
        await bot.idle()
        progress = [
            m for m in bot.slack.posted("C1") if m["text"].startswith(("🎬 Video", "🎬 Rendering"))
        ]
        assert len(progress) == 1 and progress[0]["thread_ts"] == "1700000000.000100"
        assert len(fake.videos) == 1
        said = {c.args["text"] for c in bot.slack.calls("chat.postEphemeral")}
        assert said == {MAKING}


async def test_a_non_answer_gets_no_avatar_buttons_and_is_not_spoken(tmp_path: Path) -> None:
    live = FakeLiveAvatar()
    fake = FakeHeyGen()
    async with (
        serve(live.app()) as live_url,
        serve(fake.app()) as vendor_url,
        running_bot(
            tmp_path,
            **live_settings(live_url),
            heygen_api_base=vendor_url,
            heygen_api_key=API_KEY,
            heygen_avatar_id="Angela-inblackskirt-20220820",
        ) as bot,
    ):
        await bot.event(mention("<@UBOT> What is the capital of France?"))
        [answer] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        await bot.idle()
        assert "couldn't find" in answer["text"]
        kinds = [b["type"] for b in answer["blocks"]]
        assert "actions" not in kinds and "context_actions" in kinds  # feedback stays
        store = bot.server.services.store
        [record] = await store.thread_answers("C1", "1700000000.000100")
        assert await store.answer_speech(record.id) == []
        assert not live.sessions
