"""Reliability through the real path: failures in words with an error id, a graceful stop
that finishes answers in progress, and two replicas on one store answering once."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from bot.serve import Server
from bot.store import open_store
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.server import serve
from tests.fakes.slack import FakeSlack
from tests.slack_harness import bot_with_model, envelope, sample_kb, settings_for, sign
from tests.test_slack_app import mention


async def test_a_model_failure_is_told_in_words_with_the_error_id_from_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    llm = FakeOpenAI(default=Reply(status=500))
    async with bot_with_model(tmp_path, llm) as bot:
        with caplog.at_level(logging.ERROR, logger="bot.slack"):
            await bot.event(mention())
            [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        assert "couldn't write an answer" in msg["text"]
        note = next(b for b in msg["blocks"] if b["type"] == "context")
        error_id = note["elements"][0]["text"].removeprefix("Error id ").strip("` ")
        assert len(error_id) == 8
        assert any(error_id in r.getMessage() for r in caplog.records)
        assert "Sources" in json.dumps(msg["blocks"])  # what was found is still shown


async def test_stop_finishes_the_answer_in_progress_and_refuses_new_events(
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    llm = FakeOpenAI(replies=[Reply(text="Use avatarbot knowledge add [1].", gate=gate)])
    async with bot_with_model(tmp_path, llm) as bot:
        await bot.event(mention())
        await llm.received.wait()  # the answer is being written
        stopping = asyncio.ensure_future(bot.server.stop(grace=30))
        await asyncio.sleep(0)  # let stop() mark the server as closing
        refused = await bot.event(mention("<@UBOT> another question", ts="2.0"))
        assert refused.status == 503  # Slack retries it, elsewhere or after the restart
        assert not stopping.done()
        gate.set()
        await stopping
        [msg] = bot.slack.posted("C1")
        assert "avatarbot knowledge add" in msg["text"] and msg["thread_ts"] == mention()["ts"]


async def test_two_replicas_on_one_store_answer_a_message_once(tmp_path: Path) -> None:
    slack = FakeSlack()
    slack.add_user("U1", "Ada")
    kb = sample_kb(tmp_path / "kb")
    async with serve(slack.app()) as base_url:
        slack.base_url = base_url
        settings = settings_for(slack, tmp_path)
        replicas = [
            Server(settings, store=open_store(settings), kb=kb, host="127.0.0.1") for _ in range(2)
        ]
        for r in replicas:
            await r.start()
        try:
            body = json.dumps(envelope(mention(), event_id="EvBOTH"))
            headers = {"Content-Type": "application/json", **sign(body)}
            async with aiohttp.ClientSession() as http:
                statuses = await asyncio.gather(
                    *(
                        _post(http, f"http://127.0.0.1:{r.port}/slack/events", body, headers)
                        for r in replicas
                    )
                )
            assert statuses == [200, 200]
            await slack.wait_for(lambda: slack.posted("C1"))
            pending = set().union(*(r.services.work.tasks for r in replicas))
            if pending:
                await asyncio.wait(pending, timeout=20)
            assert len(slack.posted("C1")) == 1
            assert len(slack.calls("chat.startStream")) == 1
        finally:
            for r in replicas:
                await r.stop(grace=5)


async def _post(http: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str]) -> int:
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status


async def test_over_the_global_cap_people_are_told_to_ask_again(tmp_path: Path) -> None:
    gate = asyncio.Event()
    llm = FakeOpenAI(replies=[Reply(text="Use avatarbot knowledge add [1].", gate=gate)])
    async with bot_with_model(
        tmp_path, llm, slack_max_concurrent_answers=1, slack_queued_answers=0
    ) as bot:
        await bot.event(mention())
        await llm.received.wait()  # the one slot is taken
        await bot.event(mention("<@UBOT> and remove?", ts="3.0", user="U2"))
        [busy] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        assert busy["thread_ts"] == "3.0" and "answering a lot of questions" in busy["text"]
        gate.set()
        await bot.slack.wait_for(lambda: len(bot.slack.posted("C1")) == 2)
