"""knowledge.answering.spoken.spoken_sentences: the avatar's sentences, as the answer streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

from knowledge.answering.spoken import spoken_sentences


async def chunks(text: str, size: int = 7) -> AsyncIterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


async def collect(text: str, size: int = 7, **kwargs: float) -> list[str]:
    return [s async for s in spoken_sentences(chunks(text, size), **kwargs)]


async def test_markup_citations_and_urls_never_reach_the_voice() -> None:
    said = await collect(
        "Run **`avatarbot knowledge add`** first [1]. "
        "See https://example.com/docs for more [2]. Then ask a question."
    )
    assert all("[" not in s and "http" not in s and "*" not in s for s in said)
    assert said == [
        "Run avatarbot knowledge add first.",
        "See the link in the thread for more.",
        "Then ask a question.",
    ]


async def test_the_stream_stops_at_the_time_budget() -> None:
    text = " ".join(f"Sentence number {i} has six words." for i in range(40))
    said = await collect(text, max_seconds=10)  # 25 words at 150 wpm
    assert 1 <= len(said) <= 5
    assert sum(len(s.split()) for s in said) <= 25


async def test_a_code_block_is_said_to_be_in_the_thread() -> None:
    said = await collect("Install it.\n\n```\npip install x\n```\n\nThat is all.")
    assert said == ["Install it.", "The command is in the thread.", "That is all."]


async def test_a_lead_in_waits_for_its_code_block() -> None:
    said = await collect("Install it with:\n\n```bash\npip install x\n```\n\nDone.", size=3)
    assert said == ["Install it with the command in the thread.", "Done."]
