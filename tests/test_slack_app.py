"""The Slack app end to end: signed HTTP requests in, the fake Slack Web API out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.store.base import Feedback
from tests.fakes.faults import Fault
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.slack_harness import bot_with_model, running_bot

QUESTION = "<@UBOT> How do I add documents to the knowledge base?"


def mention(
    text: str = QUESTION,
    *,
    ts: str = "1700000000.000100",
    channel: str = "C1",
    user: str = "U1",
    thread_ts: str | None = None,
) -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "team": "T0TEAM",
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def in_thread(text: str, *, user: str, ts: str, thread_ts: str) -> dict[str, Any]:
    """A plain channel message (no mention) posted in a thread."""
    return {
        "type": "message",
        "channel_type": "channel",
        "channel": "C1",
        "user": user,
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
    }


def block_types(msg: dict[str, Any]) -> list[str]:
    return [b["type"] for b in msg.get("blocks") or []]


async def test_mention_gets_a_cited_answer_in_its_thread(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        resp = await bot.event(mention())
        assert resp.status == 200
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        assert msg["thread_ts"] == "1700000000.000100"
        assert "avatarbot knowledge add" in msg["text"] and "[1]" in msg["text"]
        sources = next(b for b in msg["blocks"] if b["type"] == "section")
        assert sources["text"]["text"].startswith("*Sources*")
        assert "Loading documents" in sources["text"]["text"]
        assert "context_actions" in block_types(msg)
        start = bot.slack.calls("chat.startStream")[0].args
        assert start["recipient_user_id"] == "U1" and start["recipient_team_id"] == "T0TEAM"
        assert bot.slack.calls("assistant.threads.setStatus")


def dm(
    text: str, *, ts: str = "1700000001.000100", user: str = "U1", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": "D1",
        "user": user,
        "text": text,
        "ts": ts,
        "team": "T0TEAM",
        **extra,
    }


async def test_dm_is_answered_without_a_mention(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.event(dm("how do I keep my API keys secret?"))
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("D1"))
        assert msg["thread_ts"] == "1700000001.000100"
        assert "[1]" in msg["text"]


async def test_retries_and_the_duplicate_message_event_never_answer_twice(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        event = mention()
        first = await bot.event(event, event_id="EvSAME")
        again = await bot.event(event, event_id="EvSAME", retry=1)
        # Slack also sends message.channels for the same message; it must not answer again.
        channel_copy = {**event, "type": "message", "channel_type": "channel"}
        await bot.event(channel_copy)
        assert first.status == again.status == 200
        await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        # A later, different question proves the app kept working; still one answer per ts.
        await bot.event(mention("<@UBOT> what is the troubleshooting advice?", ts="1700000002.1"))
        await bot.slack.wait_for(lambda: len(bot.slack.posted("C1")) == 2)
        assert [m["thread_ts"] for m in bot.slack.posted("C1")] == [
            "1700000000.000100",
            "1700000002.1",
        ]


async def test_bad_or_missing_signature_is_refused_with_401(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        wrong = await bot.event(mention(), secret="not-the-secret")
        unsigned = await bot.event(mention(), signed=False)
        assert wrong.status == 401 and unsigned.status == 401
        assert not bot.slack.calls("chat.startStream") and not bot.slack.posted()


async def test_bot_messages_edits_and_joins_are_ignored(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.event(dm("from a bot", bot_id="B9"))
        await bot.event(dm("mine", user="UBOT", ts="2.0"))
        await bot.event(
            dm(
                "",
                ts="3.0",
                subtype="message_changed",
                message={"text": "edited question", "user": "U1"},
            )
        )
        await bot.event(
            {
                "type": "message",
                "subtype": "channel_join",
                "channel": "C1",
                "channel_type": "channel",
                "user": "U2",
                "ts": "4.0",
                "text": "<@U2> has joined the channel",
            }
        )
        # A real question afterwards is the only thing answered.
        await bot.event(dm("how do I add documents?", ts="5.0"))
        await bot.slack.wait_for(lambda: bot.slack.posted("D1"))
        assert [m["thread_ts"] for m in bot.slack.posted()] == ["5.0"]


async def test_bare_mention_and_huge_question_get_helpful_replies(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.event(mention("<@UBOT>   ", ts="10.0"))
        await bot.event(mention("<@UBOT> " + "why " * 10_000, ts="11.0"))
        msgs = await bot.slack.wait_for(
            lambda: len(bot.slack.posted("C1")) == 2 and bot.slack.posted("C1")
        )
        by_thread = {m["thread_ts"]: m["text"] for m in msgs}
        assert "Ask me a question" in by_thread["10.0"]
        assert "40,000 characters" in by_thread["11.0"] or "characters long" in by_thread["11.0"]
        assert not bot.slack.calls("chat.startStream")


async def test_markup_is_resolved_before_searching(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        text = (
            "<@UBOT> <!here> <@U2> asked in <#C9|general>: how do I add documents "
            "from <https://example.com/handbook|the handbook>?"
        )
        await bot.event(mention(text))
        await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        [record] = await bot.server.services.store.thread_answers("C1", "1700000000.000100")
        assert record.question == (
            "@Grace asked in #general: how do I add documents from the handbook?"
        )


async def test_thread_follow_up_without_mention_uses_the_history(tmp_path: Path) -> None:
    llm = FakeOpenAI()
    llm.replies = [Reply(text="You add documents with the CLI [1].")]
    async with bot_with_model(tmp_path, llm) as bot:
        await bot.event(mention(ts="20.0"))
        await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        bot.slack.add_message("C1", QUESTION, user="U1", ts="20.0")
        # A message in a thread the bot has not answered in is left alone.
        await bot.event(in_thread("unrelated chatter", user="U2", ts="30.5", thread_ts="30.0"))
        llm.replies = [
            Reply(text="What formats can I add to the knowledge base?"),
            Reply(text="PDF, DOCX, Markdown, HTML and text [1]."),
        ]
        await bot.event(in_thread("and which formats?", user="U1", ts="21.0", thread_ts="20.0"))
        await bot.slack.wait_for(lambda: len(bot.slack.posted("C1")) == 2)
        follow_up = bot.slack.posted("C1")[1]
        assert follow_up["thread_ts"] == "20.0" and "PDF, DOCX" in follow_up["text"]
        assert bot.slack.calls("conversations.replies")
        rewrite = json_text(llm.requests[1])
        assert "How do I add documents" in rewrite and "and which formats?" in rewrite
        assert all(m["thread_ts"] != "30.0" for m in bot.slack.posted())


def json_text(request: dict[str, Any]) -> str:
    return " ".join(str(m.get("content")) for m in request["messages"])


async def test_feedback_buttons_are_recorded(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.event(mention())
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        feedback = next(b for b in msg["blocks"] if b["type"] == "context_actions")
        button = feedback["elements"][0]
        resp = await bot.action(
            {
                "type": "feedback_buttons",
                "action_id": button["action_id"],
                "block_id": feedback["block_id"],
                "value": button["negative_button"]["value"],
            },
            user="U2",
        )
        assert resp.status == 200
        store = bot.server.services.store
        [record] = await store.thread_answers("C1", "1700000000.000100")
        await bot.slack.wait_for(lambda: bot.slack.calls("chat.postEphemeral"))
        counts = await store.feedback_counts(record.id)
        assert counts[Feedback.BAD] == 1 and counts[Feedback.GOOD] == 0


async def test_slack_429_is_retried_after_retry_after(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        bot.slack.faults.add("chat.startStream", Fault.rate_limited(retry_after="1"))
        await bot.event(mention())
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        assert len(bot.slack.faults.requests("chat.startStream")) == 2  # the 429, then ok
        assert "[1]" in msg["text"]


async def test_refused_streaming_falls_back_to_post_and_update(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        bot.slack.refuse_streaming = True
        await bot.event(mention())
        [msg] = await bot.slack.wait_for(
            lambda: [m for m in bot.slack.posted("C1") if m.get("blocks")]
        )
        types = block_types(msg)
        assert types[0] == "section" and "[1]" in msg["blocks"][0]["text"]["text"]
        assert "context_actions" in types
        assert bot.slack.calls("chat.postMessage") or bot.slack.calls("chat.update")


async def test_rate_limited_user_gets_a_friendly_message(tmp_path: Path) -> None:
    async with running_bot(tmp_path, slack_user_rate_per_minute=1) as bot:
        await bot.event(dm("how do I add documents?", ts="40.0"))
        await bot.slack.wait_for(lambda: bot.slack.posted("D1"))
        await bot.event(dm("and how do I remove them?", ts="41.0"))
        msgs = await bot.slack.wait_for(
            lambda: len(bot.slack.posted("D1")) == 2 and bot.slack.posted("D1")
        )
        assert "faster than I can answer" in msgs[1]["text"]


async def test_thread_follow_ups_can_be_turned_off(tmp_path: Path) -> None:
    async with running_bot(tmp_path, slack_thread_followups=False) as bot:
        await bot.event(mention(ts="80.0"))
        await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        await bot.event(in_thread("and which formats?", user="U1", ts="81.0", thread_ts="80.0"))
        # A mention in the thread is still answered; the plain follow-up was not.
        await bot.event(mention("<@UBOT> and which formats?", ts="82.0", thread_ts="80.0"))
        await bot.slack.wait_for(lambda: len(bot.slack.posted("C1")) == 2)
        await bot.idle()
        assert len(bot.slack.posted("C1")) == 2
