"""Knowledge administration from Slack: /knowledge, file drops, admin checks, /ask-video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowledge.index import Upload
from tests.slack_harness import Bot, file_drop, running_bot

HANDBOOK = b"# Expense policy\n\nReceipts over 25 euros must be scanned within 30 days.\n"


async def responses(bot: Bot, n: int = 1) -> list[dict[str, Any]]:
    return await bot.slack.wait_for(lambda: len(bot.slack.responses) >= n and bot.slack.responses)


async def drop_and_choose(
    bot: Bot, files: list[dict[str, Any]], *, channel: str = "D9", ts: str = "50.0"
) -> dict[str, Any]:
    """Files sent in a DM, the first datasource button pressed: the report message."""
    await bot.event(file_drop(files, user="UADMIN", channel=channel, ts=ts))
    [question] = await bot.slack.wait_for(lambda: bot.slack.posted(channel))
    button = question["blocks"][1]["elements"][0]
    await bot.action(button, user="UADMIN", channel=channel, message_ts=question["ts"])
    [report] = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.posted(channel) if "finished" in m["text"]]
    )
    return report


async def test_non_admin_knowledge_add_is_refused_politely(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        resp = await bot.command("/knowledge", "add https://example.com/doc", user="U1")
        assert resp.status == 200
        [reply] = await responses(bot)
        assert "only knowledge-base admins" in reply["text"]
        assert await bot.server.services.store.audit_log() == []


async def test_admin_cannot_make_the_server_read_its_own_paths(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        before = bot.server.services.kb.stats().documents
        await bot.command("/knowledge", "add /etc/passwd ./data", user="UADMIN")
        [reply] = await responses(bot)
        assert "never read files from the server's disk" in reply["text"]
        assert bot.server.services.kb.stats().documents == before


async def test_workspace_owner_binds_a_channel_and_it_is_audited(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.server.services.kb.aadd([Upload("h.md", HANDBOOK)], datasource="handbook")
        await bot.command("/knowledge", "bind handbook", user="UOWNER", channel="C7")
        [reply] = await responses(bot)
        assert "now answers from `handbook`" in reply["text"]
        store = bot.server.services.store
        assert await store.bindings("C7") == ["handbook"]
        [entry] = await store.audit_log()
        assert entry["action"] == "knowledge.bind" and entry["actor"] == "UOWNER"
        await bot.command("/knowledge", "list", user="U1")
        replies = await responses(bot, 2)
        assert "Indexed documents" in replies[1]["text"]


async def test_admin_file_drop_in_a_dm_is_downloaded_and_indexed(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        info = bot.slack.add_file("F1", "expenses.md", HANDBOOK, user="UADMIN")
        msg = await drop_and_choose(bot, [info])
        assert "File indexing into `default` finished" in msg["text"] and "added" in msg["text"]
        hits = await bot.server.services.kb.asearch("receipts scanned expense", k=1)
        assert "30 days" in hits[0].chunk.text
        [entry] = await bot.server.services.store.audit_log()
        assert entry["action"] == "knowledge.upload" and entry["detail"]["files"] == ["expenses.md"]


async def test_non_admin_file_is_not_indexed_and_they_are_told_why(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        info = bot.slack.add_file("F2", "expenses.md", HANDBOOK, user="U1")
        await bot.event(file_drop([info], user="U1", channel="D1", ts="51.0"))
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("D1"))
        assert "only knowledge-base admins" in msg["text"]
        assert not bot.slack.faults.requests("download")


async def test_files_off_slack_hosts_or_over_the_cap_are_never_downloaded(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path, slack_max_file_mb=1 / 1024) as bot:
        elsewhere = bot.slack.add_file(
            "F3", "a.md", HANDBOOK, user="UADMIN", host="https://attacker.example"
        )
        big = bot.slack.add_file("F4", "big.md", b"x" * 5000, user="UADMIN")
        # Slack's reported size can be wrong: the download itself is capped too.
        lying = bot.slack.add_file("F5", "lying.md", b"y" * 5000, user="UADMIN", size=10)
        msg = await drop_and_choose(bot, [elsewhere, big, lying], ts="52.0")
        text = msg["text"]
        assert "a.md: it is not hosted on Slack's file servers" in text
        assert "big.md: it is 4.9 KB; the limit is 1 KB" in text
        assert "lying.md: it is over the" in text
        downloads = [r.path for r in bot.slack.faults.requests("download")]
        assert downloads == ["/files-pri/T0TEAM-F5/download/lying.md"]


async def test_redirects_are_followed_only_within_slack(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        away = bot.slack.add_file("F6", "away.md", HANDBOOK, user="UADMIN")
        bot.slack.redirects["F6"] = "https://attacker.example/steal"
        moved = bot.slack.add_file("F7", "moved.md", HANDBOOK, user="UADMIN")
        bot.slack.add_file("F8", "moved.md", HANDBOOK, user="UADMIN")
        bot.slack.redirects["F7"] = "/files-pri/T0TEAM-F8/moved.md"
        msg = await drop_and_choose(bot, [away, moved], ts="53.0")
        assert "away.md: Slack redirected it off Slack's servers" in msg["text"]
        assert "added moved.md" in msg["text"] and "slack:" not in msg["text"]


async def test_ask_video_acks_at_once_and_says_videos_are_off(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        resp = await bot.command("/ask-video", "how do I add documents?", user="U1")
        assert resp.status == 200
        [said] = await bot.slack.wait_for(lambda: bot.slack.responses)
        assert said["response_type"] == "ephemeral"
        assert "Answer videos are off" in said["text"] and "HEYGEN_API_KEY" in said["text"]
        await bot.idle()
        assert not bot.slack.posted("C1")  # nothing public for a video that cannot be made


async def test_admin_removes_a_document_and_anyone_can_search(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        kb = bot.server.services.kb
        [doc] = [d for d in kb.list_documents() if d.source.endswith("troubleshooting.txt")]
        await bot.command("/knowledge", "search why is my answer empty", user="U1")
        [found] = await responses(bot)
        assert found["text"].startswith("1. *")
        await bot.command("/knowledge", "remove troubleshooting.txt", user="UADMIN")
        replies = await responses(bot, 2)
        assert replies[1]["text"] == "Removed troubleshooting from `default`."
        assert all(d.source != doc.source for d in kb.list_documents())
        [entry] = await bot.server.services.store.audit_log()
        assert entry["action"] == "knowledge.remove" and entry["actor"] == "UADMIN"
