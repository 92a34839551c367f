"""App Home, the assistant pane, private answers, DM uploads and /knowledge wording, as
Slack drives them (signed requests in, every Web API call read back from the fake)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.fakes.faults import Fault
from tests.slack_harness import Bot, file_drop, running_bot

HR = b"# Salaries\n\nSalary bands are reviewed every March by the people team.\n"


def texts(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


async def responses(bot: Bot, n: int = 1) -> list[dict[str, Any]]:
    return await bot.slack.wait_for(lambda: len(bot.slack.responses) >= n and bot.slack.responses)


async def salary_answer(
    bot: Bot, channel: str, ts: str, *, kind: str = "app_mention", user: str = "U1"
) -> str:
    """Ask about salary bands (a mention, or a DM message); the answer's blocks as JSON."""
    event = {"type": kind, "channel": channel, "user": user, "ts": ts}
    if kind == "message":
        event["channel_type"] = "im"
    await bot.event({**event, "text": "<@UBOT> when are salary bands reviewed?"})
    msgs = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.posted(channel) if m.get("thread_ts") == ts]
    )
    return json.dumps(msgs[-1]["blocks"])


def save_example(name: str, view: dict[str, Any]) -> None:
    """`AVATARBOT_SAVE_HOME=docs/` keeps the views of this run (docs/readme/home.md)."""
    where = os.environ.get("AVATARBOT_SAVE_HOME")
    if where:
        Path(where, name).write_text(json.dumps(view, indent=2, ensure_ascii=False) + "\n")


async def test_app_home_for_a_member_and_for_an_admin(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.event({"type": "app_home_opened", "user": "U1", "tab": "home"})
        member = await bot.slack.wait_for(lambda: bot.slack.homes.get("U1"))
        shown = texts(member)
        assert "What I know" in shown and "Loading documents into the knowledge base" in shown
        assert "How to ask" in shown and "/ask" in shown and "Try asking" in shown
        assert "Admin" not in shown and "passages" not in shown
        assert "/work/" not in shown and str(tmp_path) not in shown

        await bot.server.services.store.bind("C7", "default", by="UADMIN")
        await bot.event({"type": "app_home_opened", "user": "UADMIN", "tab": "home"})
        admin = await bot.slack.wait_for(lambda: bot.slack.homes.get("UADMIN"))
        shown = texts(admin)
        docs = bot.server.services.kb.stats()
        assert f"{docs.documents} documents, {docs.chunks} passages" in shown
        assert "bound to <#C7>" in shown
        assert "Live avatar: 0.0 of 120 minutes today" in shown and "Videos: 0 of 100" in shown
        assert "Live sessions open: 0" in shown and "No feedback yet." in shown
        actions = [b for b in admin["blocks"] if b["type"] == "actions"][-1]
        assert {e["action_id"] for e in actions["elements"]} == {
            "home_add_urls",
            "home_bind_channel",
            "home_remove_document",
        }
        save_example("app-home-member.json", member)
        save_example("app-home-admin.json", admin)

        # An admin button opens its form; submitting it binds the channel and refreshes Home.
        await bot.action({"action_id": "home_bind_channel"}, user="UADMIN", view=True)
        [modal] = await bot.slack.wait_for(lambda: bot.slack.modals)
        assert modal["callback_id"] == "home_bind_view"
        await bot.submit_view(
            modal,
            {
                "channel": {
                    "value": {"type": "conversations_select", "selected_conversation": "C8"}
                },
                "datasource": {
                    "value": {"type": "static_select", "selected_option": {"value": "default"}}
                },
            },
            user="UADMIN",
        )
        [note] = await bot.slack.wait_for(lambda: bot.slack.posted("UADMIN"))
        assert "<#C8> now answers from `default`" in note["text"]
        assert await bot.server.services.store.bindings("C8") == ["default"]


async def test_member_cannot_use_admin_forms(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.action({"action_id": "home_remove_document"}, user="U1", view=True)
        await bot.idle()
        assert bot.slack.modals == []


async def test_feedback_shows_per_datasource_and_the_worst_answers(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.event(
            {
                "type": "app_mention",
                "channel": "C1",
                "user": "U1",
                "ts": "10.0",
                "text": "<@UBOT> how do I add documents?",
            }
        )
        await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        await bot.idle()
        [record] = await bot.server.services.store.thread_answers("C1", "10.0")
        await bot.action({"action_id": "answer_feedback", "value": f"bad:{record.id}"}, user="U1")
        await bot.action({"action_id": "answer_feedback", "value": f"bad:{record.id}"}, user="U2")
        await bot.idle()
        await bot.event({"type": "app_home_opened", "user": "UADMIN", "tab": "home"})
        shown = texts(await bot.slack.wait_for(lambda: bot.slack.homes.get("UADMIN")))
        assert "*default*: 👍 0  👎 2" in shown
        assert "how do I add documents?” — 👎 2 👍 0" in shown


async def test_assistant_thread_gets_prompts_from_documents_a_title_and_sources(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        thread = {
            "user_id": "U1",
            "channel_id": "D1",
            "thread_ts": "20.0",
            "context": {"channel_id": "C5", "team_id": "T0TEAM"},
        }
        await bot.event({"type": "assistant_thread_started", "assistant_thread": thread})
        [call] = await bot.slack.wait_for(lambda: bot.slack.prompts)
        titles = {d.title for d in bot.server.services.kb.list_documents()}
        assert call["channel_id"] == "D1" and not call["ignored"]  # no thread_ts (agent app)
        assert 1 <= len(call["prompts"]) <= 4
        assert all(p["title"] in titles for p in call["prompts"])
        [greeting] = bot.slack.posted("D1")
        assert greeting["metadata"]["event_payload"]["channel_id"] == "C5"

        await bot.event(
            {
                "type": "assistant_thread_context_changed",
                "assistant_thread": {**thread, "context": {"channel_id": "C6"}},
            }
        )
        await bot.slack.wait_for(lambda: len(bot.slack.prompts) == 2)
        assert greeting["metadata"]["event_payload"]["channel_id"] == "C6"

        await bot.event(
            {
                "type": "message",
                "channel_type": "im",
                "channel": "D1",
                "user": "U1",
                "ts": "21.0",
                "thread_ts": "20.0",
                "text": "How do I add documents?",
            }
        )
        answer = await bot.slack.wait_for(
            lambda: [m for m in bot.slack.posted("D1") if m.get("blocks") and m is not greeting]
        )
        assert bot.slack.titles[("D1", "20.0")] == "How do I add documents?"
        sources = next(
            b["text"]["text"]
            for b in answer[-1]["blocks"]
            if b.get("text", {}).get("text", "").startswith("*Sources*")
        )
        assert "[1] Loading documents into the knowledge base" in sources
        assert "/" not in sources.split("\n", 1)[1] and "_(" not in sources


async def test_binding_to_an_unknown_datasource_is_refused_with_the_known_ones(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.command("/knowledge", "bind hr", user="UADMIN", channel="C7")
        [reply] = await responses(bot)
        assert "no datasource called `hr`" in reply["text"] and "`default`" in reply["text"]
        assert reply["response_type"] == "ephemeral"
        assert await bot.server.services.store.bindings("C7") == []


async def test_unknown_subcommand_is_named_and_add_results_go_only_to_the_admin(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.command("/knowledge", "frobnicate", user="U1")
        [reply] = await responses(bot)
        assert reply["text"].startswith("I don't know `/knowledge frobnicate`")
        assert "/knowledge list" in reply["text"]

        await bot.command("/knowledge", "add http://127.0.0.1:9/internal", user="UADMIN")
        replies = await responses(bot, 3)
        assert all(r["response_type"] == "ephemeral" for r in replies)
        assert "skipped" in replies[2]["text"] and "127.0.0.1" in replies[2]["text"]
        assert bot.slack.posted("C1") == []  # nothing in the channel


async def test_list_names_documents_without_server_paths(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.command("/knowledge", "list", user="U1")
        [reply] = await responses(bot)
        assert "loading-knowledge.md" in reply["text"]
        assert str(tmp_path) not in reply["text"] and "/knowledge/sample" not in reply["text"]
        await bot.command("/knowledge", "remove loading-knowledge.md", user="UADMIN")
        replies = await responses(bot, 2)
        assert replies[1]["text"].startswith("Removed Loading documents")


async def test_dm_upload_asks_which_datasource_names_every_file_and_stays_private(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        files = [bot.slack.add_file("F1", "salaries.md", HR, user="UADMIN")]
        files += [
            bot.slack.add_file(
                f"F{i}", f"note{i}.md", f"# Note {i}\n\nText {i}.\n".encode(), user="UADMIN"
            )
            for i in range(2, 23)
        ]
        await bot.event(file_drop(files, user="UADMIN", channel="D9", ts="50.0"))
        [question] = await bot.slack.wait_for(lambda: bot.slack.posted("D9"))
        assert "Got 22 file(s)" in question["text"] and "Which datasource" in question["text"]
        assert (
            "Not taken (I index 20 files per message; send them again): note21.md, note22.md"
            in (question["text"])
        )
        buttons = question["blocks"][1]["elements"]
        assert [b["text"]["text"] for b in buttons] == ["default", "➕ New datasource…"]

        # "New datasource…" opens a form; its name is checked in the form.
        await bot.action(
            buttons[1] | {"action_id": buttons[1]["action_id"]},
            user="UADMIN",
            channel="D9",
            message_ts=question["ts"],
        )
        [modal] = await bot.slack.wait_for(lambda: bot.slack.modals)
        bad = await bot.submit_view(
            modal, {"name": {"value": {"value": "no spaces"}}}, user="UADMIN"
        )
        assert bad.json()["response_action"] == "errors"
        await bot.submit_view(modal, {"name": {"value": {"value": "hr"}}}, user="UADMIN")
        report = await bot.slack.wait_for(
            lambda: [m for m in bot.slack.posted("D9") if "finished" in m["text"]]
        )
        assert question["text"].startswith("⏳ Indexing 20 file(s) into `hr`")
        assert question["edits"] == 1  # "indexing…" replaced the buttons at once
        text = report[0]["text"]
        assert "added salaries.md" in text and "slack:" not in text
        assert "added note20.md" in text and "note21.md" not in text

        kb = bot.server.services.kb
        [doc] = [d for d in kb.list_documents("hr") if d.title == "Salaries"]
        assert doc.place == "D9" and doc.url == "https://fake.slack.com/files/UADMIN/F1/salaries.md"

        assert "Salaries" in await salary_answer(bot, "D9", "60.0", kind="message", user="UADMIN")
        assert "fake.slack.com/files/UADMIN/F1" in await salary_answer(
            bot, "D9", "61.0", kind="message", user="UADMIN"
        )
        assert "Salaries" not in await salary_answer(
            bot, "D2", "62.0", kind="message", user="UADMIN"
        )  # another DM: not there


def public(bot: Bot, channel: str) -> list[dict[str, Any]]:
    return [m for m in bot.slack.posted(channel) if m["type"] == "message"]


async def test_private_answer_is_ephemeral_until_shared(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.command("/ask", "how do I add documents?", user="U1", channel="C3")
        [eph] = await bot.slack.wait_for(
            lambda: [m for m in bot.slack.messages.get("C3", []) if m["type"] == "ephemeral"]
        )
        assert eph["to"] == "U1" and "Only you can see this answer." in json.dumps(eph["blocks"])
        assert public(bot, "C3") == [] and not bot.slack.calls("chat.postMessage")
        share = eph["blocks"][-1]["elements"][0]
        await bot.action(
            {"action_id": share["action_id"], "value": share["value"]}, user="U2", channel="C3"
        )
        await bot.idle()
        assert public(bot, "C3") == []  # only the asker can share it
        await bot.action(
            {"action_id": share["action_id"], "value": share["value"]}, user="U1", channel="C3"
        )
        [shared] = await bot.slack.wait_for(lambda: public(bot, "C3"))
        assert "Shared by <@U1>" in json.dumps(shared["blocks"])


async def test_a_channel_can_answer_privately(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await bot.command("/knowledge", "private on", user="U1", channel="C4")
        [refused] = await responses(bot)
        assert "only knowledge-base admins" in refused["text"]
        await bot.command("/knowledge", "private on", user="UADMIN", channel="C4")
        replies = await responses(bot, 2)
        assert "answered only to the asker" in replies[1]["text"]
        await bot.event(
            {
                "type": "app_mention",
                "channel": "C4",
                "user": "U2",
                "ts": "30.0",
                "text": "<@UBOT> how do I add documents?",
            }
        )
        [eph] = await bot.slack.wait_for(
            lambda: [m for m in bot.slack.messages.get("C4", []) if m["type"] == "ephemeral"]
        )
        assert eph["to"] == "U2" and "Share in channel" in json.dumps(eph["blocks"])
        assert public(bot, "C4") == []


async def test_a_file_shared_in_a_private_channel_answers_only_there_or_where_bound(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        info = bot.slack.add_file("F1", "salaries.md", HR, user="UADMIN")
        await bot.event(
            {
                **file_drop([info], user="UADMIN", channel="G1", ts="40.0"),
                "channel_type": "group",
                "text": "<@UBOT> index this",
            }
        )
        # Its app_mention carries the same file: left to the message event, no answer.
        await bot.event(
            {
                "type": "app_mention",
                "channel": "G1",
                "user": "UADMIN",
                "ts": "40.0",
                "text": "<@UBOT> index this",
                "files": [info],
            }
        )
        [question] = await bot.slack.wait_for(lambda: bot.slack.posted("G1"))
        assert "answerable here, and in channels bound to that datasource" in question["text"]
        button = question["blocks"][1]["elements"][0]
        await bot.action(button, user="UADMIN", channel="G1", message_ts=question["ts"])
        await bot.slack.wait_for(
            lambda: [m for m in bot.slack.posted("G1") if "finished" in m["text"]]
        )
        [doc] = [d for d in bot.server.services.kb.list_documents() if d.title == "Salaries"]
        assert doc.place == "G1"

        assert "Salaries" in await salary_answer(bot, "G1", "41.0")
        assert "Salaries" not in await salary_answer(bot, "C1", "42.0")
        await bot.server.services.store.bind("C2", "default", by="UADMIN")
        assert "Salaries" in await salary_answer(bot, "C2", "43.0")  # bound to its datasource


async def test_assistant_prompts_follow_the_bound_datasource_of_the_channel_in_view(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        from knowledge.index import Upload

        await bot.server.services.kb.aadd([Upload("hr.md", HR)], datasource="hr")
        await bot.server.services.store.bind("C5", "hr", by="UADMIN")
        thread = {
            "user_id": "U1",
            "channel_id": "D1",
            "thread_ts": "20.0",
            "context": {"channel_id": "C5"},
        }
        await bot.event({"type": "assistant_thread_started", "assistant_thread": thread})
        [call] = await bot.slack.wait_for(lambda: bot.slack.prompts)
        assert [p["title"] for p in call["prompts"]] == ["Salaries"]


async def test_private_answer_reaches_the_asker_where_the_bot_is_not_a_member(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        # Slack answers chat.postEphemeral with HTTP 200 {"ok": false, "error": "not_in_channel"}.
        bot.slack.faults.add(
            "chat.postEphemeral",
            Fault.raw(200, {"ok": False, "error": "not_in_channel"}),
        )
        await bot.command("/ask", "how do I add documents?", user="U1", channel="C9")
        [reply] = await responses(bot)
        assert reply["response_type"] == "ephemeral"
        assert "Only you can see this answer." in json.dumps(reply["blocks"])


async def test_base_url_from_slack_makes_file_sources_links(tmp_path: Path) -> None:
    base = "https://github.com/acme/avatarbot/blob/main/knowledge/sample/"
    async with running_bot(tmp_path) as bot:
        await bot.command("/knowledge", f"base-url default {base}", user="U1")
        [refused] = await responses(bot)
        assert "only knowledge-base admins" in refused["text"]
        await bot.command("/knowledge", f"base-url nope {base}", user="UADMIN")
        await bot.command("/knowledge", f"base-url default {base}", user="UADMIN")
        replies = await responses(bot, 3)
        assert "no datasource called `nope`" in replies[1]["text"]
        assert "now link to" in replies[2]["text"]
        await bot.event(
            {
                "type": "app_mention",
                "channel": "C1",
                "user": "U1",
                "ts": "70.0",
                "text": "<@UBOT> how do I add documents?",
            }
        )
        [msg] = await bot.slack.wait_for(
            lambda: [m for m in bot.slack.posted("C1") if m.get("thread_ts") == "70.0"]
        )
        sources = json.dumps(msg["blocks"], ensure_ascii=False)
        assert f"[1] <{base}loading-knowledge.md#" in sources
        assert str(tmp_path) not in sources
