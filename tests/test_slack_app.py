"""The Slack app end to end: signed HTTP requests in, the fake Slack Web API out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.slack_harness import running_bot

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
