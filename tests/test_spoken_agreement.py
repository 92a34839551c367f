"""One script everywhere: what the live avatar says (the streamed answer through
`spoken_sentences`, as bot/slack/asking.py feeds it) is the stored `Answer.spoken` that the
video render and the viewer transcript read, on the model path and the extractive one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.avatar.live.viewer import answer_entry
from bot.store.base import AnswerRecord, ScopeAnswer
from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.answering.answer import Answer, Answerer, TextDelta
from knowledge.answering.spoken import spoken_sentences
from knowledge.spoken_eval import broken_sentences
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.knowledge_hits import SAMPLE, hits, sections
from tests.test_llm import answerer as model_answerer
from tests.test_llm import fake  # noqa: F401  (the fixture: a loopback OpenAI-style server)

HOSTILE = (
    "Set a HeyGen key with `HEYGEN_LIVE_API=streaming` for the legacy streaming API [1]. "
    "See https://example.com/docs for more [2]. "
    "Run `avatarbot knowledge add ./docs` to add files, e.g. ./docs/setup.md [1][3].\n\n"
    "Install it with:\n\n```bash\npip install avatarbot\n```\n\n"
    "- Uploads up to 10 MB\n- `SLACK_BOT_TOKEN` is required"
)
SAID = (
    "Set a HeyGen key with the HEYGEN LIVE API setting set to streaming for the legacy "
    "streaming API. See the link in the thread for more. Run avatarbot knowledge add to add "
    "files, for example setup.md. Install it with the command in the thread. Uploads up to "
    "10 megabytes. The SLACK BOT TOKEN setting is required."
)


async def live_and_stored(answerer: Answerer, question: str) -> tuple[list[str], Answer]:
    deltas: list[str] = []
    final: Answer | None = None
    async for event in answerer.stream(question):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            final = event.answer
    assert final is not None

    async def chunks() -> AsyncIterator[str]:
        for piece in deltas:
            yield piece

    return [s async for s in spoken_sentences(chunks())], final


async def test_a_model_answer_full_of_code_is_said_whole_and_the_same_everywhere(
    fake: FakeOpenAI,  # noqa: F811  (the fixture imported above)
) -> None:
    fake.replies.append(Reply(text=HOSTILE))
    loading = sections(SAMPLE / "loading-knowledge.md")
    answerer, _ = model_answerer(fake, hits(*list(loading.values())[:3]))
    live, answer = await live_and_stored(answerer, "How do I set it up?")
    assert answer.spoken == SAID
    assert " ".join(live) == answer.spoken
    assert broken_sentences(answer.spoken) == []


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    base = KnowledgeBase(
        KnowledgeConfig(data_dir=tmp_path_factory.mktemp("spoken-kb"), embeddings="none")
    )
    base.add([SAMPLE])
    return base


@pytest.mark.parametrize(
    "question",
    ["How do I add documents to the knowledge base?", "What does ANSWER_MIN_SCORE do?"],
)
async def test_an_extractive_answer_is_the_same_live_and_stored(
    kb: KnowledgeBase, question: str
) -> None:
    live, answer = await live_and_stored(Answerer(kb), question)
    assert answer.spoken and " ".join(live) == answer.spoken
    assert broken_sentences(answer.spoken) == []


def test_a_record_saved_without_a_script_is_shown_in_the_writers_words() -> None:
    # Records saved by older versions may hold an empty script: the viewer transcript
    # gets the writer's script of the text, never the raw markdown.
    record = AnswerRecord(id="a1", question="q", text=HOSTILE, spoken="", channel="C1")
    entry = answer_entry(ScopeAnswer(answer_id="a1", answer=record, sentences=[]))
    assert entry.text == SAID
