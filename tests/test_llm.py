"""The LLM answer path through the real LangChain OpenAI client against a loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from pydantic import SecretStr

from knowledge.answering.answer import (
    NOTHING_FOUND,
    Answer,
    AnswerDone,
    Answerer,
    AnswerEvent,
    AnswerStatus,
    TextDelta,
)
from knowledge.answering.llm import NO_ANSWER, LLMConfig, LLMError, create_chat_model
from knowledge.models import Chunk, Hit
from tests.fakes.openai_server import API_KEY, FakeOpenAI, Reply
from tests.fakes.server import serve
from tests.knowledge_hits import SAMPLE, StaticRetriever, hits, sections

ANSWER = (
    "Run `avatarbot knowledge add` with files, folders or URLs [1]. "
    "Admins can also drop a file into a DM with the bot [2]. "
    "Datasources keep teams apart [3]."
)


@pytest.fixture
def passages() -> list[Hit]:
    loading = sections(SAMPLE / "loading-knowledge.md")
    return hits(
        loading["Add documents from the command line"],
        loading["Add documents from Slack"],
        loading["Datasources"],
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    async with serve(server.app()) as base_url:
        server.base_url = base_url  # type: ignore[attr-defined]
        yield server


def answerer(
    fake: FakeOpenAI,
    found: Sequence[Hit],
    *,
    api_key: str = API_KEY,
    max_retries: int = 0,
    timeout: float = 20.0,
) -> tuple[Answerer, StaticRetriever]:
    config = LLMConfig(
        model="openai:gpt-4o-mini",
        base_url=f"{fake.base_url}/v1",  # type: ignore[attr-defined]
        api_key=SecretStr(api_key),
        max_retries=max_retries,
        timeout_seconds=timeout,
    )
    retriever = StaticRetriever(found)
    model = create_chat_model(config)
    return Answerer(retriever, chat_model=model, llm_timeout_seconds=timeout), retriever


async def run(a: Answerer, question: str, **kw: object) -> tuple[list[str], Answer]:
    deltas: list[str] = []
    final: Answer | None = None
    async for event in a.stream(question, **kw):  # type: ignore[arg-type]
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            final = event.answer
    assert final is not None
    return deltas, final


async def test_streams_tokens_and_keeps_citations_mapped(
    fake: FakeOpenAI, passages: list[Hit]
) -> None:
    fake.replies.append(Reply(text=ANSWER.replace(" [2]", "")))  # cites 1 and 3 only
    a, _ = answerer(fake, passages)
    deltas, answer = await run(a, "How do I add documents?")
    assert len(deltas) > 5  # token by token, not one block
    assert "".join(deltas).strip() == answer.text
    assert answer.status is AnswerStatus.ANSWERED and answer.grounded
    assert [(s.number, s.section) for s in answer.sources] == [
        (1, "Add documents from the command line"),
        (3, "Datasources"),
    ]
    assert answer.sources[0].link.startswith("https://docs.example.com/loading-knowledge")
    assert "[" not in answer.spoken and "`" not in answer.spoken
    # The prompt numbered the passages the way the sources are numbered.
    request = fake.requests[0]
    assert request["stream"] is True and request["model"] == "gpt-4o-mini"
    prompt = request["messages"][-1]["content"]
    assert "[1] Loading documents into the knowledge base — Add documents from the" in prompt
    assert prompt.index("[1] ") < prompt.index("[2] ") < prompt.index("[3] Loading")
    assert fake.unauthorized == 0


async def test_first_text_arrives_only_after_the_server_sends_it(
    fake: FakeOpenAI, passages: list[Hit]
) -> None:
    gate = asyncio.Event()
    fake.replies.append(Reply(text=ANSWER, gate=gate))
    a, _ = answerer(fake, passages)
    seen: list[tuple[bool, AnswerEvent]] = []

    async def consume() -> None:
        async for event in a.stream("How do I add documents?"):
            seen.append((gate.is_set(), event))

    task = asyncio.create_task(consume())
    await asyncio.wait_for(fake.received.wait(), 10)  # the server now holds the first token
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == []
    gate.set()
    await asyncio.wait_for(task, 10)
    assert all(released for released, _ in seen)
    first = seen[0][1]
    assert isinstance(first, TextDelta) and first.text == "Run"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("disconnect", "the connection to the language model failed"),
        ("error_event", "the language model reported an error: Fake overload"),
    ],
)
async def test_failure_mid_stream_keeps_the_text_and_says_so(
    fake: FakeOpenAI, passages: list[Hit], mode: str, reason: str
) -> None:
    fake.replies.append(Reply(text=ANSWER, fail_after_tokens=4, fail_mode=mode))  # type: ignore[arg-type]
    a, _ = answerer(fake, passages)
    deltas, answer = await run(a, "How do I add documents?")
    assert "".join(deltas).startswith("Run `avatarbot knowledge add`")
    assert answer.status is AnswerStatus.LLM_FAILED and not answer.grounded
    assert answer.text.startswith("Run `avatarbot knowledge add`")
    assert "The answer stopped early" in answer.text and "incomplete" in answer.text
    assert answer.error in answer.text and reason in answer.text
    assert [s.number for s in answer.sources] == [1, 2, 3]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "returned an error (HTTP 500)"), (429, "is rate-limiting requests (HTTP 429)")],
)
async def test_http_error_gives_a_clear_message_and_the_sources(
    fake: FakeOpenAI, passages: list[Hit], status: int, reason: str
) -> None:
    fake.default = Reply(status=status, retry_after=0)
    a, _ = answerer(fake, passages)
    deltas, answer = await run(a, "How do I add documents?")
    assert answer.text == "".join(deltas)
    assert answer.text.startswith(f"Sorry, I couldn't write an answer: the language model {reason}")
    assert answer.status is AnswerStatus.LLM_FAILED and not answer.grounded
    assert len(answer.sources) == 3


async def test_rate_limit_with_retry_after_is_retried_by_the_client(
    fake: FakeOpenAI, passages: list[Hit]
) -> None:
    fake.replies += [Reply(status=429, retry_after=0), Reply(text=ANSWER)]
    a, _ = answerer(fake, passages, max_retries=2)
    _, answer = await run(a, "How do I add documents?")
    assert answer.status is AnswerStatus.ANSWERED
    assert len(fake.requests) == 2


async def test_wrong_key_is_named_without_showing_it(fake: FakeOpenAI, passages: list[Hit]) -> None:
    a, _ = answerer(fake, passages, api_key="sk-wrong-secret-9999")
    _, answer = await run(a, "How do I add documents?")
    assert fake.unauthorized == 1
    assert "rejected the API key (check LLM_API_KEY)" in answer.text
    assert "sk-wrong" not in answer.model_dump_json()


async def test_slow_model_times_out_with_a_message(fake: FakeOpenAI, passages: list[Hit]) -> None:
    gate = asyncio.Event()  # never set: the first token never comes
    fake.replies.append(Reply(text=ANSWER, gate=gate))
    a, _ = answerer(fake, passages, timeout=0.5)
    _, answer = await run(a, "How do I add documents?")
    assert answer.status is AnswerStatus.LLM_FAILED
    assert "did not answer in time" in answer.text
    gate.set()


async def test_no_answer_marker_is_never_shown(fake: FakeOpenAI, passages: list[Hit]) -> None:
    fake.replies.append(Reply(text=NO_ANSWER))
    a, _ = answerer(fake, passages)
    deltas, answer = await run(a, "What is the capital of France?")
    assert deltas == [NOTHING_FOUND] and answer.text == NOTHING_FOUND
    assert answer.status is AnswerStatus.LLM_REFUSED and not answer.grounded


async def test_refusal_says_the_model_gave_no_answer(fake: FakeOpenAI, passages: list[Hit]) -> None:
    fake.replies.append(Reply(refusal="I can't help with that."))
    a, _ = answerer(fake, passages)
    _, answer = await run(a, "How do I add documents?")
    assert answer.status is AnswerStatus.LLM_REFUSED and not answer.grounded
    assert "the language model returned no answer" in answer.text
    assert len(answer.sources) == 3


async def test_invented_citations_are_dropped(fake: FakeOpenAI, passages: list[Hit]) -> None:
    fake.replies.append(Reply(text="Use the CLI [1][7]. Or ask an admin [9]."))
    a, _ = answerer(fake, passages)
    _, answer = await run(a, "How do I add documents?")
    assert answer.text == "Use the CLI [1]. Or ask an admin."
    assert [s.number for s in answer.sources] == [1]


async def test_follow_up_is_rewritten_before_retrieval(
    fake: FakeOpenAI, passages: list[Hit]
) -> None:
    standalone = "How do I add documents to the knowledge base from Slack?"
    fake.replies += [Reply(text=standalone), Reply(text="Drop a file into a DM [2].")]
    a, retriever = answerer(fake, passages)
    history = [
        ("user", "How do I add documents?"),
        ("assistant", "Run `avatarbot knowledge add` [1]."),
    ]
    _, answer = await run(a, "and from Slack?", history=history, datasources=["eng"])
    assert retriever.queries == [(standalone, ["eng"])]
    assert answer.standalone_question == standalone and answer.question == "and from Slack?"
    rewrite, final = fake.requests
    assert not rewrite.get("stream")
    assert "user: How do I add documents?" in rewrite["messages"][-1]["content"]
    assert final["messages"][-1]["content"].endswith(f"Question: {standalone}")
    assert [s.number for s in answer.sources] == [2]


async def test_nothing_relevant_does_not_call_the_model(
    fake: FakeOpenAI, passages: list[Hit]
) -> None:
    weak = [h.model_copy(update={"relevance": 0.05}) for h in passages]
    a, _ = answerer(fake, weak)
    _, answer = await run(a, "What is the capital of France?")
    assert answer.text == NOTHING_FOUND and answer.sources == []
    assert answer.status is AnswerStatus.NOTHING_FOUND and fake.requests == []


def test_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(LLMError, match="cannot use LLM_MODEL='nosuchprovider:model'"):
        create_chat_model(LLMConfig(model="nosuchprovider:model"))


async def test_done_event_is_last(fake: FakeOpenAI, passages: list[Hit]) -> None:
    fake.replies.append(Reply(text=ANSWER))
    a, _ = answerer(fake, passages)
    events = [e async for e in a.stream("How do I add documents?")]
    assert isinstance(events[-1], AnswerDone)
    assert all(isinstance(e, TextDelta) for e in events[:-1])


async def test_the_model_reads_the_passages_the_selection_ranks_best(fake: FakeOpenAI) -> None:
    # Ten retrieved passages; the two that answer are ranked 6th and 9th by the retriever.
    loading = sections(SAMPLE / "loading-knowledge.md")
    filler = [
        Chunk(
            id=f"f{i}",
            source=f"f{i}.md",
            title=f"Notice {i}",
            text=f"Office notice {i}: "
            "the kitchen closes early on Fridays and the lifts are serviced monthly.",
        )
        for i in range(8)
    ]
    found = hits(
        *filler[:5],
        loading["Add documents from the command line"],
        *filler[5:7],
        loading["Add documents from Slack"],
        filler[7],
    )
    # Kept in retrieval order: three notices, then the two answering passages as [4], [5].
    fake.replies.append(Reply(text="Run `avatarbot knowledge add` [4]."))
    a, retriever = answerer(fake, found)
    _, answer = await run(a, "How do I add documents from Slack or the command line?")
    assert retriever.queries  # asked once, for twice the passages it hands on
    prompt = fake.requests[0]["messages"][-1]["content"]
    # Both answering passages reach the model; the model still sees five passages.
    assert "Add documents from the command line" in prompt
    assert "Add documents from Slack" in prompt
    assert prompt.count("Office notice") == 3
    assert prompt.index("Office notice 2") < prompt.index("[4] ") < prompt.index("[5] ")
    assert [(s.number, s.section) for s in answer.sources] == [
        (4, "Add documents from the command line")
    ]
