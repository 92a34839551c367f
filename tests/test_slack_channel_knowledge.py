"""Slack threads as knowledge: `/knowledge add #channel` reads the resolved threads, then the
channel is followed through message events (new replies, edits, deletions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.store import KnowledgeChannel
from bot.store.sql import SqlStore
from tests.slack_harness import Bot, running_bot

FAST = {"slack_history_calls_per_minute": 60_000}


def seed(bot: Bot) -> None:
    slack = bot.slack
    slack.add_channel("C5", "support")
    slack.add_message("C5", "How do I reset my VPN token? <@U2> any idea?", user="U1", ts="100.1")
    slack.add_message(
        "C5",
        "Open the <https://vpn.example/self|self-service page> and press Reset.",
        user="U2",
        ts="100.2",
        thread_ts="100.1",
    )
    slack.add_message(
        "C5", "I'll answer this", user="UBOT", ts="100.3", thread_ts="100.1", bot=True
    )
    slack.add_message("C5", "Lunch anyone?", user="U1", ts="101.1")  # no replies: not resolved
    slack.add_message("C5", "Where are the printer drivers?", user="U2", ts="102.1")
    slack.add_message(
        "C5", "On the shared drive under IT/drivers.", user="U1", ts="102.2", thread_ts="102.1"
    )


def texts(bot: Bot) -> list[str]:
    return [m.get("text", "") for m in bot.slack.responses + bot.slack.posted()]


async def thread_read(bot: Bot, ts: str, times: int) -> None:
    """Wait until the bot has read the thread `times` times, then for its work to end."""

    def reads() -> int:
        calls = bot.slack.calls("conversations.replies")
        return sum(c.args.get("ts") == ts for c in calls) >= times

    await bot.slack.wait_for(reads)
    await bot.idle()


def message_event(channel: str, **fields: Any) -> dict[str, Any]:
    return {"type": "message", "channel": channel, "channel_type": "channel", **fields}


async def test_a_channel_becomes_knowledge_and_stays_in_step(tmp_path: Path) -> None:
    async with running_bot(tmp_path, **FAST) as bot:
        seed(bot)
        kb = bot.server.services.kb
        await bot.command("/knowledge", "add <#C5|support>", user="UADMIN", channel="C9")
        [done] = await bot.slack.wait_for(
            lambda: [t for t in texts(bot) if "is now a knowledge source" in t]
        )
        assert "2 resolved threads read" in done
        threads = {d.source: d for d in kb.list_documents() if d.source.startswith("slack:")}
        assert set(threads) == {"slack:C5/100.1", "slack:C5/102.1"}
        hits = await kb.asearch("reset VPN token", k=1)
        chunk = hits[0].chunk
        assert chunk.source == "slack:C5/100.1" and "self-service page" in chunk.text
        assert "I'll answer this" not in chunk.text  # the bot's own messages are left out
        assert "<" not in chunk.text  # Slack markup read as words
        assert threads["slack:C5/100.1"].title.startswith("How do I reset my VPN token?")

        # a new reply is followed: the thread is read again
        bot.slack.add_message(
            "C5", "Also restart the client.", user="U1", ts="100.4", thread_ts="100.1"
        )
        await bot.event(
            message_event(
                "C5", user="U1", text="Also restart the client.", ts="100.4", thread_ts="100.1"
            )
        )
        await thread_read(bot, "100.1", 2)
        hits = await kb.asearch("restart the client VPN", k=1)
        assert "restart the client" in hits[0].chunk.text

        # the question is deleted: its document goes
        bot.slack.delete_message("C5", "102.1")
        bot.slack.delete_message("C5", "102.2")
        await bot.event(
            message_event("C5", subtype="message_deleted", deleted_ts="102.1", ts="103.0")
        )
        await thread_read(bot, "102.1", 2)
        assert "slack:C5/102.1" not in {d.source for d in kb.list_documents()}
        # the bot did not answer any of these channel messages
        assert [m["ts"] for m in bot.slack.posted("C5")] == ["100.3"]  # the seeded one only

        await bot.command("/knowledge", "remove <#C5|support>", user="UADMIN", channel="C9")
        await bot.slack.wait_for(lambda: [t for t in texts(bot) if "no longer learn from" in t])
        assert not [d for d in kb.list_documents() if d.source.startswith("slack:")]


async def test_a_channel_the_bot_is_not_in_is_a_clear_message(tmp_path: Path) -> None:
    async with running_bot(tmp_path, **FAST) as bot:
        bot.slack.add_channel("C6", "secret", private=True, member=False)
        await bot.command("/knowledge", "add #secret", user="UADMIN")
        [msg] = await bot.slack.wait_for(lambda: [t for t in texts(bot) if "invite me" in t])
        assert "/invite @avatarbot" in msg
        await bot.command("/knowledge", "add #nowhere", user="UADMIN")
        await bot.slack.wait_for(lambda: [t for t in texts(bot) if "#nowhere" in t])


async def test_only_admins_add_a_channel(tmp_path: Path) -> None:
    async with running_bot(tmp_path, **FAST) as bot:
        seed(bot)
        await bot.command("/knowledge", "add <#C5|support>", user="U1")
        [reply] = await bot.slack.wait_for(lambda: bot.slack.responses)
        assert "only knowledge-base admins" in reply["text"]
        assert await bot.server.services.store.followed_channels() == []


async def test_followed_channels_are_shared_state(any_store: SqlStore) -> None:
    await any_store.follow_channel(
        KnowledgeChannel(channel="C1", datasource="it", private=True, added_by="UADMIN")
    )
    await any_store.follow_channel(
        KnowledgeChannel(channel="C1", datasource="support", private=True, added_by="UADMIN")
    )
    [c] = await any_store.followed_channels()
    assert c.datasource == "support" and c.private and c.added_at > 0
    assert await any_store.unfollow_channel("C1") and await any_store.followed_channels() == []
