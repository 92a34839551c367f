"""An answer reaches its thread exactly once: when Slack acts on a request but the response
is lost (the fake drops the connection after processing), and when the bot is killed with
SIGKILL between a post and its record (a real `avatarbot serve` process, restarted)."""

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

from bot.slack.posting import ANSWER_EVENT
from bot.store import open_store
from knowledge import KnowledgeBase, KnowledgeConfig
from tests.fakes.faults import Fault
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.server import serve
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.knowledge_hits import SAMPLE
from tests.slack_harness import bot_with_model, envelope, running_bot, settings_for, sign
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


@pytest.mark.parametrize("method", ["chat.startStream", "chat.stopStream"])
async def test_a_lost_stream_call_is_not_repeated(tmp_path: Path, method: str) -> None:
    """A repeated startStream is a second stream; a repeated stopStream an error. The answer
    still arrives, once (a lost stop is finished with chat.update, which is idempotent)."""
    async with running_bot(tmp_path) as bot:
        bot.slack.faults.add(method, Fault.drop_after_processing())
        await bot.event(mention())
        await bot.slack.wait_for(lambda: answers_in(bot.slack))
        await bot.idle()
        assert len(bot.slack.calls(method)) == 1
        [answer] = answers_in(bot.slack)
        assert "avatarbot knowledge add" in answer["text"]


async def test_reads_are_still_retried_after_a_dropped_connection(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        bot.slack.faults.add("users.info:get", Fault.drop_after_processing())  # a GET
        await bot.event(mention("<@UBOT> what did <@U2> say about adding documents?"))
        await bot.slack.wait_for(lambda: answers_in(bot.slack))
        assert len(bot.slack.calls("users.info")) == 2  # idempotent: repeated


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


async def _killed_then_restarted(
    tmp_path: Path, slack: FakeSlack, crash_on: str, base_url: str
) -> str:
    """Ask, SIGKILL the bot once Slack has acted on `crash_on` (whose response never comes:
    the bot is inside the call, its record not written), restart it; returns the answer id
    once the restarted bot has recorded the message."""
    data = tmp_path / "data"
    KnowledgeBase(KnowledgeConfig(data_dir=data, embeddings="none")).add([SAMPLE])
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{base_url}/api/",
        "PORT": str(port),
        "AVATARBOT_DATA_DIR": str(data),
        "EMBEDDINGS": "none",
        "SLACK_RESUME_AFTER_SECONDS": "0",
        "LOG_LEVEL": "INFO",
    }
    slack.faults.add(crash_on, Fault.hang_after_processing())
    async with bot_process(env, port) as proc:
        await _ask(port)
        # The effect is visible: the answer message carries its blocks.
        await slack.wait_for(lambda: [m for m in answers_in(slack) if m.get("blocks")])
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    [answer] = answers_in(slack)
    answer_id = answer["metadata"]["event_payload"]["answer_id"]
    settings = settings_for(slack, data)
    async with bot_process(env, port):
        store = open_store(settings)
        await store.start()
        try:
            async with asyncio.timeout(30):
                # Another process's database: nothing to wait on but polling.
                while (  # noqa: ASYNC110
                    record := await store.get_answer(answer_id)
                ) is None or not record.message_ts:
                    await asyncio.sleep(0.1)
        finally:
            await store.close()
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


async def test_a_lost_append_is_not_repeated_and_the_message_is_finished_whole(
    tmp_path: Path,
) -> None:
    long_answer = "Run avatarbot knowledge add PATH to index a folder [1]. " * 20
    llm = FakeOpenAI(replies=[Reply(text=long_answer)])
    async with bot_with_model(tmp_path, llm) as bot:
        bot.slack.faults.add("chat.appendStream", Fault.drop_after_processing())
        await bot.event(mention())
        await bot.slack.wait_for(lambda: [m for m in answers_in(bot.slack) if m.get("blocks")])
        await bot.idle()
        assert len(bot.slack.calls("chat.appendStream")) == 1  # a repeat doubles the text
        [answer] = answers_in(bot.slack)
        assert answer["text"].count("Run avatarbot knowledge add") == 20
        assert not bot.slack.calls("chat.postMessage")
