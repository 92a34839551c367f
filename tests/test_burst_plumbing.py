"""What keeps a burst of questions cheap: shared model calls, shared sentence vectors, and
a queue for answers instead of a refusal."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.slack.limits import Busy, ConcurrencyGate
from knowledge.answering.recent_vectors import RecentVectors
from knowledge.retrieval.embeddings import MicroBatcher
from tests.fakes.faults import Fault
from tests.slack_harness import running_bot
from tests.test_slack_app import mention


def _vector(text: str) -> np.ndarray:
    return np.array([len(text), sum(map(ord, text))], dtype=np.float32)


class HeldModel:
    """A model whose first call waits until the test lets it go; records every call."""

    name = "held"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        self.release.wait(10)
        return np.stack([_vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def test_questions_asked_together_share_one_model_call_and_each_gets_its_own_vector() -> None:
    model = HeldModel()
    batcher = MicroBatcher(model.embed_documents)
    questions = [f"how do I add documents? #{n}" for n in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        first = pool.submit(batcher, questions[0])
        assert model.entered.wait(10)  # the first question's call is running...
        rest = [pool.submit(batcher, q) for q in questions[1:]]
        while len(batcher._waiting) < len(rest):  # ...while the others line up behind it
            threading.Event().wait(0.001)
        model.release.set()
        results = [first.result(10), *(f.result(10) for f in rest)]
    assert model.calls == [questions[:1], questions[1:]]  # 2 calls for 12 questions
    for question, vector in zip(questions, results, strict=True):
        assert np.array_equal(vector, _vector(question))


def test_a_failing_model_call_reaches_every_question_in_the_batch() -> None:
    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("model file is gone")

    batcher = MicroBatcher(broken)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(batcher, f"q{n}") for n in range(4)]
        for f in futures:
            with pytest.raises(RuntimeError, match="model file is gone"):
                f.result(10)
    # and the batcher still works afterwards
    assert np.array_equal(
        MicroBatcher(lambda t: np.stack([_vector(x) for x in t]))("a"), _vector("a")
    )


def test_sentences_another_answer_is_embedding_are_waited_for_not_embedded_again() -> None:
    model = HeldModel()
    recent = RecentVectors(model)
    sentences = ["Run avatarbot knowledge add.", "Re-adding is safe.", "Files are hashed."]
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(recent, sentences)
        assert model.entered.wait(10)
        # A second answer over the same page, plus one sentence of its own.
        second = pool.submit(recent, [*sentences[1:], "Only new text is embedded."])
        while not recent._running.get("Only new text is embedded."):
            threading.Event().wait(0.001)
        model.release.set()
        a, b = first.result(10), second.result(10)
    assert model.calls == [sentences, ["Only new text is embedded."]]
    assert np.array_equal(a[1:], b[:2])


async def test_a_burst_waits_its_turn_and_only_questions_beyond_the_queue_are_busy() -> None:
    gate = ConcurrencyGate(limit=2, queue=2)
    release = asyncio.Event()
    order: list[int] = []

    async def answer(n: int) -> str:
        try:
            async with gate.slot():
                order.append(n)
                await release.wait()
                return "answered"
        except Busy:
            return "busy"

    tasks = [asyncio.ensure_future(answer(n)) for n in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert gate.active == 2 and gate.waiting == 2
    release.set()
    assert await asyncio.gather(*tasks) == ["answered"] * 4 + ["busy"]
    assert order == [0, 1, 2, 3]  # in the order asked


async def test_slack_gets_its_ack_while_the_app_is_still_waiting_on_slack_itself(
    tmp_path: Path,
) -> None:
    # bolt checks the app's token with auth.test before handing an event to a listener;
    # here Slack is slow to answer it, and the event must be acked regardless (Slack
    # retries an event it has not acked within 3 s).
    async with running_bot(tmp_path) as bot:
        slow = asyncio.Event()
        bot.slack.faults.add("auth.test", Fault.stall_until(slow), times=5)
        reply = await asyncio.wait_for(bot.event(mention()), 10)
        assert reply.status == 200
        assert not bot.slack.posted("C1")  # the answer is still on its way...
        slow.set()
        await bot.idle()
        [answer] = bot.slack.posted("C1")  # ...and comes, once
        assert answer["thread_ts"] == mention()["ts"] and "knowledge add" in answer["text"]


async def test_each_asker_sees_words_before_the_answer_ahead_of_them_is_finished(
    tmp_path: Path,
) -> None:
    # One slot, three questions at once. The first answer gives its slot back once its words
    # are in its thread; its sources and buttons come after the next asker's words, not
    # before the next answer has even begun.
    async with running_bot(tmp_path, slack_max_concurrent_answers=1) as bot:
        held = asyncio.Event()  # the first answer waits on Slack until all three are asked
        bot.slack.faults.add("assistant.threads.setStatus", Fault.stall_until(held), times=1)
        asked = [f"170000000{n}.000100" for n in range(3)]
        await asyncio.gather(
            *(bot.event(mention(ts=ts, user=f"U{n}")) for n, ts in enumerate(asked))
        )
        gate = bot.server.services.gate
        while gate.waiting < 2:  # noqa: ASYNC110 (the other two line up behind the first)
            await asyncio.sleep(0.01)
        held.set()
        await bot.idle()
        started = {
            c.args["thread_ts"]: i
            for i, c in enumerate(bot.slack.log)
            if c.method == "chat.startStream"
        }
        threads = {m["ts"]: m["thread_ts"] for m in bot.slack.posted("C1")}
        stopped = {
            threads[c.args["ts"]]: i
            for i, c in enumerate(bot.slack.log)
            if c.method == "chat.stopStream"
        }
        assert sorted(started) == sorted(stopped) == sorted(asked)  # each answered, once
        first, second = sorted(asked, key=started.__getitem__)[:2]
        assert started[second] < stopped[first]
        for message in bot.slack.posted("C1"):  # and each finished whole
            assert message["blocks"] and "knowledge add" in message["text"]
