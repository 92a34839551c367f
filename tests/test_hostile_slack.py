"""Hostile documents, model answers and button values, through the real Slack path: signed
requests into the bot, everything the fake Slack receives read back. No broadcast, mention
or forged link from a document or a model reaches Slack, in any field."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.store.base import Feedback
from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.sources.parsers import parse_bytes
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.slack import FakeSlack
from tests.fixtures.adversarial import FORBIDDEN_IN_SLACK, HOSTILE_MARKDOWN, hostile_html_page
from tests.slack_harness import bot_with_model, running_bot
from tests.test_slack_app import mention

READS = {"auth.test", "users.info", "conversations.replies", "conversations.history"}
PAGE_URL = "https://docs.example/keys"


def sent_to_slack(slack: FakeSlack) -> str:
    """Every write the bot made to Slack (Web API calls and response_url posts), as text."""
    calls = [c.args for c in slack.log if c.method not in READS]
    return json.dumps([calls, slack.responses], ensure_ascii=False)


def assert_nothing_hostile(slack: FakeSlack) -> None:
    sent = sent_to_slack(slack)
    for needle in FORBIDDEN_IN_SLACK:
        assert needle not in sent, f"{needle!r} reached Slack"
    assert "@channel" not in sent and "@here" not in sent and "@everyone" not in sent


def hostile_kb(data_dir: Path) -> KnowledgeBase:
    kb = KnowledgeBase(KnowledgeConfig(data_dir=data_dir, embeddings="none"))
    page = parse_bytes(hostile_html_page(), "keys.html", url=PAGE_URL, max_bytes=1_000_000)
    kb.add([page])
    return kb


def test_anchors_and_titles_are_sanitised_at_ingest(tmp_path: Path) -> None:
    kb = hostile_kb(tmp_path)
    [hit, *_] = kb.search("rotate the deploy key", k=3)
    link = hit.chunk.link or ""
    assert link.startswith(PAGE_URL + "#")
    assert not any(c in link for c in '<>|" ')  # the anchor cannot end Slack's link
    assert "\n" not in hit.chunk.title and len(hit.chunk.title) <= 300


async def test_a_hostile_document_answered_in_slack_reaches_it_escaped(tmp_path: Path) -> None:
    async with running_bot(tmp_path, kb=hostile_kb(tmp_path / "kb")) as bot:
        await bot.event(mention("<@UBOT> How do I rotate the deploy key?"))
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        await bot.idle()
        sources = json.dumps(msg["blocks"], ensure_ascii=False)
        assert "Sources" in sources and "docs.example/keys#" in sources
        assert bot.slack.calls("chat.startStream")  # streamed markdown_text was checked too
        assert_nothing_hostile(bot.slack)


async def test_hostile_markdown_from_the_model_reaches_slack_escaped(tmp_path: Path) -> None:
    llm = FakeOpenAI(replies=[Reply(text=HOSTILE_MARKDOWN)])
    async with bot_with_model(tmp_path, llm) as bot:
        await bot.event(mention("<@UBOT> How do I add documents?"))
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        await bot.idle()
        assert_nothing_hostile(bot.slack)
        streamed = msg["text"]
        assert "javascript:" not in streamed and "run this" in streamed  # label, no target
        assert "the guide" in streamed


async def test_the_same_model_answer_on_the_post_and_update_path(tmp_path: Path) -> None:
    llm = FakeOpenAI(replies=[Reply(text=HOSTILE_MARKDOWN)])
    async with bot_with_model(tmp_path, llm) as bot:
        bot.slack.refuse_streaming = True
        await bot.event(mention("<@UBOT> How do I add documents?"))
        await bot.slack.wait_for(lambda: [m for m in bot.slack.posted("C1") if m.get("blocks")])
        await bot.idle()
        assert_nothing_hostile(bot.slack)
        assert "<https://a" not in sent_to_slack(bot.slack)


async def test_knowledge_search_shows_safe_text_cut_at_words(tmp_path: Path) -> None:
    kb = hostile_kb(tmp_path / "kb")
    words = {w for h in kb.search("rotate deploy key", k=5) for w in h.chunk.text.split()}
    async with running_bot(tmp_path, kb=kb) as bot:
        await bot.command("/knowledge", "search rotate deploy key")
        [reply] = await bot.slack.wait_for(lambda: bot.slack.responses)
        text = reply["text"]
        assert "Deploy keys" in text
        assert "xoxb-123456789012" not in text  # token-like strings redacted
        assert str(tmp_path) not in text and "/srv/" not in text
        for line in text.splitlines():
            snippet = line.rsplit(") — ", 1)[-1]
            if snippet.endswith(" …"):  # cut: after a whole word of the passage
                assert snippet.removesuffix(" …").split()[-1] in words, snippet
            assert "\x1b" not in snippet and "\n" not in snippet
        assert_nothing_hostile(bot.slack)


@pytest.mark.parametrize(
    "value",
    ["evil:ABCDEFGHIJKLMNOP", "good:" + "A" * 100_000, "good:no-such-answer-id", "bad:", 7],
    ids=["unknown-vote", "100KB", "unknown-answer", "empty-id", "not-a-string"],
)
async def test_feedback_values_are_validated_and_never_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, value: Any
) -> None:
    async with running_bot(tmp_path) as bot:
        with caplog.at_level(logging.WARNING):
            reply = await bot.action({"action_id": "answer_feedback", "value": value})
            assert reply.status == 200
            [note] = await bot.slack.wait_for(
                lambda: [m for m in bot.slack.messages.get("C1", []) if m["type"] == "ephemeral"]
            )
        assert "didn't record" in note["text"]
        assert not [r for r in caplog.records if r.exc_info]
        store = bot.server.services.store
        counts = await store.feedback_counts(str(value).partition(":")[2][:64])
        assert counts == dict.fromkeys(Feedback, 0)


async def test_feedback_on_a_real_answer_is_recorded(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.event(mention())
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        await bot.idle()
        buttons = next(b for b in msg["blocks"] if b["type"] == "context_actions")
        value = buttons["elements"][0]["positive_button"]["value"]
        await bot.action({"action_id": "answer_feedback", "value": value})
        await bot.slack.wait_for(
            lambda: [m for m in bot.slack.messages.get("C1", []) if m["type"] == "ephemeral"]
        )
        counts = await bot.server.services.store.feedback_counts(value.partition(":")[2])
        assert counts[Feedback.GOOD] == 1


async def test_mention_lookups_happen_after_the_rate_limit(tmp_path: Path) -> None:
    """15 messages from one person, each naming 9 people: only the 6 the rate limit lets
    through cost `users.info` calls (there were 135)."""
    async with running_bot(tmp_path, slack_user_rate_per_minute=6) as bot:
        for i in range(15):
            names = " ".join(f"<@U{i:02d}X{j}>" for j in range(9))
            await bot.event(mention(f"<@UBOT> who knows {names}?", ts=f"1700000100.{i:06d}"))
        await bot.slack.wait_for(lambda: len(bot.slack.posted("C1")) == 15)
        await bot.idle()
        assert len(bot.slack.calls("users.info")) == 6 * 9
