"""The Answerer end to end on the bundled sample knowledge, with a real KnowledgeBase."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.answering.answer import NOTHING_FOUND, Answer, Answerer, AnswerStatus, TextDelta
from tests.knowledge_hits import SAMPLE, StaticRetriever, hits, sections


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    data = tmp_path_factory.mktemp("answer-kb")
    base = KnowledgeBase(KnowledgeConfig(data_dir=Path(data), embeddings="none"))
    base.add([SAMPLE])
    base.add([SAMPLE / "privacy-and-secrets.html"], datasource="private")
    return base


async def run(a: Answerer, question: str, **kw: object) -> tuple[str, Answer]:
    streamed, final = "", None
    async for event in a.stream(question, **kw):  # type: ignore[arg-type]
        if isinstance(event, TextDelta):
            streamed += event.text
        else:
            final = event.answer
    assert final is not None
    return streamed, final


async def test_sample_question_gets_a_grounded_cited_answer(kb: KnowledgeBase) -> None:
    streamed, answer = await run(Answerer(kb), "How do I add documents to the knowledge base?")
    assert streamed == answer.text
    assert answer.grounded and answer.status is AnswerStatus.ANSWERED
    assert "avatarbot knowledge add" in answer.text and "[1]" in answer.text
    first = answer.sources[0]
    assert first.number == 1 and first.title == "Loading documents into the knowledge base"
    assert "Add documents" in first.section
    # A file from disk with no base URL for its datasource: the title alone, never the path.
    assert first.link == "" and first.source.endswith("loading-knowledge.md")
    assert "[1]" not in answer.spoken and "`" not in answer.spoken
    assert "avatarbot knowledge add" in answer.spoken


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How do I get a video of the answer?", "/ask-video"),
        ("Are API keys printed in the logs?", "never prints"),
        ("What does ANSWER_MIN_SCORE do?", "ANSWER_MIN_SCORE"),
    ],
)
async def test_answers_come_from_the_matching_document(
    kb: KnowledgeBase, question: str, expected: str
) -> None:
    _, answer = await run(Answerer(kb), question)
    assert answer.grounded
    assert expected in answer.text
    numbers = {s.number for s in answer.sources}
    assert numbers == set(range(1, len(answer.sources) + 1))
    assert all(f"[{n}]" in answer.text for n in numbers)


async def test_off_topic_question_is_answered_honestly(kb: KnowledgeBase) -> None:
    streamed, answer = await run(Answerer(kb), "Who won the football world cup in 2018?")
    assert streamed == answer.text == NOTHING_FOUND
    assert "rephras" in answer.text and "admins" in answer.text
    assert not answer.grounded and answer.sources == []
    assert answer.status is AnswerStatus.NOTHING_FOUND


async def test_datasources_limit_what_is_searched(kb: KnowledgeBase) -> None:
    _, answer = await run(
        Answerer(kb), "How do I add documents to the knowledge base?", datasources=["private"]
    )
    assert all(s.title == "Privacy and secrets" for s in answer.sources)


async def test_follow_up_without_a_model_searches_with_the_previous_question() -> None:
    loading = sections(SAMPLE / "loading-knowledge.md")
    retriever = StaticRetriever(hits(loading["Add documents from Slack"]))
    history = [("user", "How do I add documents?"), ("assistant", "Use the CLI [1].")]
    _, answer = await run(Answerer(retriever), "and from Slack?", history=history)
    assert retriever.queries[0][0] == "How do I add documents? and from Slack?"
    assert "Drop a file into a direct message" in answer.text or "/knowledge add" in answer.text


async def test_spoken_variant_respects_the_time_limit(kb: KnowledgeBase) -> None:
    _, answer = await run(Answerer(kb, spoken_max_seconds=4), "How do I get a video of the answer?")
    assert 0 < len(answer.spoken.split()) <= 10
    assert len(answer.text.split()) > len(answer.spoken.split())
