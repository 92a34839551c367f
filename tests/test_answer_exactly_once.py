"""An answer reaches its thread exactly once, as one message: when Slack acts on a request but
the response is lost (the fake drops the connection or answers a 5xx after processing), when
Slack ends a stream on its own, and when the bot is killed with SIGKILL between a post and its
record, mid-stream, or inside a `chat.startStream` (a real `avatarbot serve` process,
restarted). Each test reads back what the fake Slack's thread holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.posting import (
    ANSWER_EVENT,
    answer_metadata,
    find_stream_orphan,
    notice_metadata,
)
from bot.store import open_store
from bot.store.base import AnswerRecord
from knowledge import KnowledgeBase, KnowledgeConfig
from tests.fakes.faults import Fault
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.server import serve
from tests.fakes.slack import BOT_TOKEN, BOT_USER, SIGNING_SECRET, FakeSlack
from tests.knowledge_hits import SAMPLE
from tests.slack_harness import (
    OPENAI_KEY,
    bot_with_model,
    envelope,
    running_bot,
    settings_for,
    sign,
)
from tests.test_cli_serve import AVATARBOT, free_port
from tests.test_slack_app import mention


def answers_in(slack: FakeSlack, channel: str = "C1") -> list[dict[str, Any]]:
    """The thread's messages carrying an answer's metadata (what a person sees)."""
    return [
        m
        for m in slack.messages.get(channel, [])
        if m.get("type") == "message"
        and (m.get("metadata") or {}).get("event_type") == ANSWER_EVENT
    ]


async def test_a_post_processed_but_whose_response_was_lost_is_not_repeated(
    tmp_path: Path,
) -> None:
    async with running_bot(tmp_path) as bot:
        bot.slack.refuse_streaming = True  # the post-and-update path
        bot.slack.faults.add("chat.postMessage", Fault.drop_after_processing())
        await bot.event(mention())
        await bot.slack.wait_for(lambda: [m for m in bot.slack.posted("C1") if m.get("blocks")])
        await bot.idle()
        [answer] = answers_in(bot.slack)
        assert len(bot.slack.calls("chat.postMessage")) == 1  # found, not posted again
        assert bot.slack.calls("conversations.replies")
        assert answer["blocks"] and "avatarbot knowledge add" in answer["text"]
        answer_id = answer["metadata"]["event_payload"]["answer_id"]
        record = await bot.server.services.store.get_answer(answer_id)
        assert record is not None and record.message_ts == answer["ts"]


def bot_messages(slack: FakeSlack, channel: str = "C1") -> list[dict[str, Any]]:
    """Every message of the bot in the channel, streaming or not (what a person sees)."""
    return [
        m
        for m in slack.messages.get(channel, [])
        if m.get("type") == "message" and m.get("user") == BOT_USER
    ]


LONG_ANSWER = "Run avatarbot knowledge add PATH to index a folder [1]. " * 20
LOST = {"dropped": Fault.drop_after_processing, "5xx": Fault.error_after_processing}


@pytest.mark.parametrize("lost", sorted(LOST))
@pytest.mark.parametrize("method", ["chat.startStream", "chat.stopStream"])
async def test_a_lost_stream_call_is_not_repeated(tmp_path: Path, method: str, lost: str) -> None:
    """A repeated startStream is a second stream; a repeated stopStream an error. The answer
    still arrives, once, in the one message: a stream whose start's response was lost is
    found in the thread and becomes the answer (a lost stop is finished with chat.update)."""
    async with running_bot(tmp_path) as bot:
        bot.slack.faults.add(method, LOST[lost]())
        await bot.event(mention())
        await bot.slack.wait_for(lambda: [m for m in answers_in(bot.slack) if m.get("blocks")])
        await bot.idle()
        assert len(bot.slack.calls(method)) == 1
        [message] = bot_messages(bot.slack)
        assert not message.get("streaming") and message["blocks"]
        assert "avatarbot knowledge add" in message["text"]
        assert message["metadata"]["event_type"] == ANSWER_EVENT
        assert not bot.slack.calls("chat.postMessage")


async def test_a_stream_slack_ends_midway_is_finished_whole_with_chat_update(
    tmp_path: Path,
) -> None:
    """Slack ends a stream on its own (a few minutes in): the next append and the stop are
    refused, and the message is finished with chat.update, whole, with its metadata."""
    release = asyncio.Event()
    llm = FakeOpenAI(replies=[Reply(text=LONG_ANSWER)])
    async with bot_with_model(tmp_path, llm) as bot:
        bot.slack.hold_after["chat.appendStream"] = release
        await bot.event(mention())
        await bot.slack.wait_for(lambda: bot.slack.calls("chat.appendStream"))
        assert bot.slack.expire_streams() == 1
        release.set()
        await bot.slack.wait_for(lambda: [m for m in answers_in(bot.slack) if m.get("blocks")])
        await bot.idle()
        [message] = bot_messages(bot.slack)
        assert message["text"].count("Run avatarbot knowledge add") == 20
        assert message["metadata"]["event_type"] == ANSWER_EVENT
        assert not bot.slack.calls("chat.postMessage")


async def test_an_answer_slack_refuses_is_told_and_left_with_nothing_to_resume(
    tmp_path: Path,
) -> None:
    """Slack refuses the answer's post outright (not a lost response): the person is told,
    and the saved intent is dropped, so no restart posts the answer later."""
    async with running_bot(tmp_path) as bot:
        bot.slack.refuse_streaming = True
        bot.slack.faults.add("chat.postMessage", Fault.api_error("msg_too_long", "refused"))
        await bot.event(mention())
        await bot.slack.wait_for(lambda: bot_messages(bot.slack))
        await bot.idle()
        [notice] = bot_messages(bot.slack)
        assert notice["metadata"]["event_type"] != ANSWER_EVENT  # the failure, in words
        assert await bot.server.services.store.unposted_answers(0) == []


async def test_the_orphan_is_the_bots_unmarked_message_after_the_question() -> None:
    """What `find_stream_orphan` takes for a stream whose start's response was lost: the
    bot's first message after the question with no metadata, never a notice, an earlier
    message, a person's message, or another answer's message."""
    slack = FakeSlack()
    async with serve(slack.app()) as base_url:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{base_url}/api/")
        slack.add_message("C1", "first question", user="U1", ts="100.000001")
        slack.add_message("C1", "earlier", user=BOT_USER, ts="100.000002", thread_ts="100.000001")
        slack.add_message("C1", "the question", user="U1", ts="100.000003", thread_ts="100.000001")
        slack.add_message("C1", "a person", user="U2", ts="100.000004", thread_ts="100.000001")
        where = dict(channel="C1", thread_ts="100.000001")
        await client.chat_postMessage(**where, text="Busy", metadata=notice_metadata())
        other = (await client.chat_postMessage(**where, text="another answer"))["ts"]
        await client.chat_postMessage(**where, text="done", metadata=answer_metadata("a0"))
        stream = (
            await client.chat_startStream(
                **where, recipient_user_id="U1", recipient_team_id="T0TEAM"
            )
        )["ts"]
        look = dict(where, after_ts="100.000003", bot_user=BOT_USER)
        assert await find_stream_orphan(client, **look, taken={other}) == stream
        assert await find_stream_orphan(client, **look) == other  # unknown to the store
        assert await find_stream_orphan(client, **look, taken={other, stream}) is None


# --- a real process killed between the post and its record ----------------------------------


@contextlib.asynccontextmanager
async def bot_process(env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """`avatarbot serve`, up and listening; its log is drained so it never blocks."""
    proc = await asyncio.create_subprocess_exec(
        AVATARBOT,
        "serve",
        cwd=env["AVATARBOT_DATA_DIR"],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    async with asyncio.timeout(60):
        while "serving on port" not in (line := (await proc.stderr.readline()).decode()):
            assert line, "serve exited before it was ready"
    drain = asyncio.ensure_future(proc.stderr.read())
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await drain


async def _ask(port: int) -> None:
    body = json.dumps(envelope(mention()))
    headers = {"Content-Type": "application/json", **sign(body)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp,
    ):
        assert resp.status == 200


def _bot_env(tmp_path: Path, base_url: str, **extra: str) -> dict[str, str]:
    """`avatarbot serve`'s environment against the fake Slack, the sample indexed."""
    data = tmp_path / "data"
    KnowledgeBase(KnowledgeConfig(data_dir=data, embeddings="none")).add([SAMPLE])
    return {
        **os.environ,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{base_url}/api/",
        "PORT": str(free_port()),
        "AVATARBOT_DATA_DIR": str(data),
        "EMBEDDINGS": "none",
        "SLACK_RESUME_AFTER_SECONDS": "0",
        "LOG_LEVEL": "INFO",
        **extra,
    }


async def _recorded(slack: FakeSlack, env: dict[str, str], answer_id: str | None) -> AnswerRecord:
    """Once the (restarted) bot has recorded the answer's message: its record. `None`: the
    only answer in the store."""
    data_dir = Path(env["AVATARBOT_DATA_DIR"])
    store = open_store(settings_for(slack, data_dir, database_url=env.get("DATABASE_URL")))
    await store.start()
    try:
        async with asyncio.timeout(30):
            # Another process's database: nothing to wait on but polling.
            while True:
                if answer_id is None:
                    found = await store.thread_answers("C1", mention()["ts"])
                    record = found[0] if len(found) == 1 else None
                else:
                    record = await store.get_answer(answer_id)
                if record is not None and record.message_ts:
                    return record
                await asyncio.sleep(0.1)
    finally:
        await store.close()


async def _killed_mid_call(
    slack: FakeSlack, env: dict[str, str], crash_on: str, crash_when: Any
) -> None:
    """Ask, then SIGKILL the bot once Slack has acted on `crash_on` (whose response never
    comes: the bot is inside the call, nothing after it done) and `crash_when()` holds."""
    slack.faults.add(crash_on, Fault.hang_after_processing())
    async with bot_process(env, int(env["PORT"])) as proc:
        await _ask(int(env["PORT"]))
        await slack.wait_for(lambda: slack.faults.pending(crash_on) == 0 and crash_when())
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


async def _killed_then_restarted(
    tmp_path: Path, slack: FakeSlack, crash_on: str, base_url: str
) -> str:
    """Ask, SIGKILL the bot once Slack has acted on `crash_on` and the answer message
    carries its blocks (the record not written), restart it; returns the answer id once the
    restarted bot has recorded the message."""
    env = _bot_env(tmp_path, base_url)
    await _killed_mid_call(
        slack, env, crash_on, lambda: [m for m in answers_in(slack) if m.get("blocks")]
    )
    [answer] = answers_in(slack)
    answer_id = answer["metadata"]["event_payload"]["answer_id"]
    async with bot_process(env, int(env["PORT"])):
        record = await _recorded(slack, env, answer_id)
        assert record.message_ts == answer["ts"]
    return answer_id


async def test_killed_after_the_stream_was_stopped_the_restart_posts_nothing_new(
    tmp_path: Path,
) -> None:
    slack = FakeSlack()
    slack.add_user("U1", "Ada")
    async with serve(slack.app()) as base_url:
        slack.base_url = base_url
        await _killed_then_restarted(tmp_path, slack, "chat.stopStream", base_url)
        [answer] = answers_in(slack)
        assert answer["blocks"] and not slack.calls("chat.postMessage")
        assert len(slack.calls("chat.startStream")) == 1


async def test_killed_after_the_post_the_restart_posts_nothing_new(tmp_path: Path) -> None:
    slack = FakeSlack(refuse_streaming=True)  # the answer is posted with chat.postMessage
    slack.add_user("U1", "Ada")
    async with serve(slack.app()) as base_url:
        slack.base_url = base_url
        await _killed_then_restarted(tmp_path, slack, "chat.postMessage", base_url)
        [answer] = answers_in(slack)
        assert len(slack.calls("chat.postMessage")) == 1  # found again by its metadata
        assert answer["blocks"] and "avatarbot knowledge add" in answer["text"]


@pytest.mark.parametrize(
    ("method", "fault"),
    [
        ("chat.appendStream", Fault.drop_after_processing),  # a repeat would double text
        ("chat.startStream", Fault.error_after_processing),  # a repeat, a second stream
    ],
)
async def test_a_long_stream_broken_midway_is_finished_whole_in_its_one_message(
    tmp_path: Path, method: str, fault: Any
) -> None:
    llm = FakeOpenAI(replies=[Reply(text=LONG_ANSWER)])
    async with bot_with_model(tmp_path, llm) as bot:
        bot.slack.faults.add(method, fault())
        await bot.event(mention())
        await bot.slack.wait_for(lambda: [m for m in answers_in(bot.slack) if m.get("blocks")])
        await bot.idle()
        assert len(bot.slack.calls(method)) == 1
        [message] = bot_messages(bot.slack)
        assert message["text"].count("Run avatarbot knowledge add") == 20
        assert message["metadata"]["event_type"] == ANSWER_EVENT
        assert not message.get("streaming")
        assert not bot.slack.calls("chat.postMessage")


# --- a real process killed mid-stream: the restart finishes THAT message ---------------------


@contextlib.asynccontextmanager
async def _streaming_bot_env(
    tmp_path: Path, store_url: str
) -> AsyncIterator[tuple[FakeSlack, dict[str, str]]]:
    """The fake Slack and `serve`'s environment, answering LONG_ANSWER with a model: long
    enough to stream in several appendStream calls; its state in `store_url`."""
    llm = FakeOpenAI(default=Reply(text=LONG_ANSWER))
    slack = FakeSlack()
    slack.add_user("U1", "Ada")
    async with serve(llm.app()) as llm_url, serve(slack.app()) as base_url:
        slack.base_url = base_url
        yield (
            slack,
            _bot_env(
                tmp_path,
                base_url,
                LLM_MODEL="openai:gpt-4o-mini",
                LLM_BASE_URL=f"{llm_url}/v1",
                LLM_API_KEY=OPENAI_KEY,
                DATABASE_URL=store_url,
            ),
        )


def _the_one_complete_answer(slack: FakeSlack, record: AnswerRecord) -> dict[str, Any]:
    """The thread holds one message of the bot: the whole answer, finished, with metadata."""
    [message] = bot_messages(slack)
    assert message["ts"] == record.message_ts
    assert not message.get("streaming")
    assert message["metadata"] == {
        "event_type": ANSWER_EVENT,
        "event_payload": {"answer_id": record.id},
    }
    assert message["text"].count("Run avatarbot knowledge add") == 20
    assert any(b.get("type") == "context_actions" for b in message["blocks"])  # feedback
    assert not record.pending and record.text.count("Run avatarbot knowledge add") == 20
    return message


@pytest.mark.parametrize("while_down", ["nothing", "stream-expired", "message-deleted"])
async def test_killed_mid_stream_the_restart_finishes_that_message(
    tmp_path: Path, store_url: str, while_down: str
) -> None:
    """`kill -9` while the answer is being streamed (inside an appendStream Slack applied):
    after the restart the partial message becomes the whole answer, stopped (or, when Slack
    ended the stream meanwhile, updated), and nothing is posted beside it; only when the
    partial message is gone is the answer posted."""
    async with _streaming_bot_env(tmp_path, store_url) as (slack, env):
        await _killed_mid_call(slack, env, "chat.appendStream", lambda: True)
        [partial] = bot_messages(slack)
        assert partial.get("streaming") and partial["text"].count("knowledge add") < 20
        if while_down == "stream-expired":  # down long enough for Slack to end the stream
            assert slack.expire_streams() == 1
        elif while_down == "message-deleted":  # someone deleted the partial answer
            slack.messages["C1"].remove(partial)
        async with bot_process(env, int(env["PORT"])):
            record = await _recorded(slack, env, None)
        message = _the_one_complete_answer(slack, record)
        assert len(slack.calls("chat.startStream")) == 1
        posted = len(slack.calls("chat.postMessage"))
        assert posted == (1 if while_down == "message-deleted" else 0)
        assert (message["ts"] == partial["ts"]) is (while_down != "message-deleted")


async def test_killed_after_a_start_whose_response_never_came_the_restart_adopts_the_stream(
    tmp_path: Path, store_url: str
) -> None:
    """`kill -9` inside a chat.startStream Slack applied: the bot never learnt the stream's
    ts. The restart finds the stream in the thread (ours, after the question, no metadata)
    and makes it the answer."""
    async with _streaming_bot_env(tmp_path, store_url) as (slack, env):
        await _killed_mid_call(slack, env, "chat.startStream", lambda: True)
        [orphan] = bot_messages(slack)
        assert orphan.get("streaming") and not orphan.get("metadata")
        async with bot_process(env, int(env["PORT"])):
            record = await _recorded(slack, env, None)
        assert record.message_ts == orphan["ts"]
        _the_one_complete_answer(slack, record)
        assert len(slack.calls("chat.startStream")) == 1
        assert not slack.calls("chat.postMessage")
