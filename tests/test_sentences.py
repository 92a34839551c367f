"""Sentence segmentation: a table of tricky cases, checked whole and streamed in pieces."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from knowledge.answering.sentences import SentenceStream, sentences, split_sentences

CASES: list[tuple[str, str, list[str]]] = [
    ("plain", "The bot answers. It cites sources!", ["The bot answers.", "It cites sources!"]),
    (
        "latin abbreviations",
        "Use a channel, e.g. #help, or a DM, i.e. a private chat. Then wait.",
        ["Use a channel, e.g. #help, or a DM, i.e. a private chat.", "Then wait."],
    ),
    (
        "titles and countries",
        "Dr. Smith moved to the U.S. Army base. He likes it.",
        ["Dr. Smith moved to the U.S. Army base.", "He likes it."],
    ),
    (
        "decimals and percentages",
        "Latency dropped to 3.5 seconds, a 42.1% gain. Nice.",
        ["Latency dropped to 3.5 seconds, a 42.1% gain.", "Nice."],
    ),
    (
        "version numbers",
        "Upgrade to v1.2.3 before Friday. Version 2.0.1 is next.",
        ["Upgrade to v1.2.3 before Friday.", "Version 2.0.1 is next."],
    ),
    (
        "URL with dots and query",
        "Open https://docs.example.com/a.b/guide.html?x=1.2&y=3 in a browser. Then log in.",
        [
            "Open https://docs.example.com/a.b/guide.html?x=1.2&y=3 in a browser.",
            "Then log in.",
        ],
    ),
    (
        "URL ending a sentence",
        "The guide is at https://example.com/guide. It is short.",
        ["The guide is at https://example.com/guide.", "It is short."],
    ),
    (
        "ellipsis inside a sentence",
        "It thinks... then it answers. Done.",
        ["It thinks... then it answers.", "Done."],
    ),
    (
        "numbered list",
        "Do this:\n1. Install the bot.\n2. Add documents.\n3. Ask.",
        ["Do this:", "1. Install the bot.", "2. Add documents.", "3. Ask."],
    ),
    (
        "bullet list",
        "- Mention the bot.\n- Ask in a DM.",
        ["- Mention the bot.", "- Ask in a DM."],
    ),
    (
        "inline code with dots",
        "Run `avatarbot knowledge add ./docs. --datasource hr` now. It indexes.",
        ["Run `avatarbot knowledge add ./docs. --datasource hr` now.", "It indexes."],
    ),
    (
        "fenced code block",
        "Run this:\n```\nx = 1. y = 2.\nprint(x)\n```\nThen check the output. Good.",
        ["Run this:", "```\nx = 1. y = 2.\nprint(x)\n```", "Then check the output.", "Good."],
    ),
    (
        "times and initials",
        "Meet at 5 p.m. today with J. R. Smith. Bring notes.",
        ["Meet at 5 p.m. today with J. R. Smith.", "Bring notes."],
    ),
    (
        "citations after the period",
        "Add files with the CLI [1]. Bind channels to datasources [2].",
        ["Add files with the CLI [1].", "Bind channels to datasources [2]."],
    ),
    (
        "quoted sentence",
        'The bot said "Nothing found." Then it suggested rephrasing.',
        ['The bot said "Nothing found."', "Then it suggested rephrasing."],
    ),
    (
        "abbreviations followed by commas",
        "Pick a surface, e.g., a channel, i.e., a public one. Then ask.",
        ["Pick a surface, e.g., a channel, i.e., a public one.", "Then ask."],
    ),
    (
        "ellipsis ending a sentence",
        "The bot paused... Then it answered.",
        ["The bot paused...", "Then it answered."],
    ),
    (
        "email address",
        "Email ops@example.com for help. They reply fast.",
        ["Email ops@example.com for help.", "They reply fast."],
    ),
    ("no final punctuation", "It ends without a period", ["It ends without a period"]),
    (
        "numbered steps in running text",
        "Step 1. Install it. Step 2. Run it.",
        ["Step 1. Install it.", "Step 2. Run it."],
    ),
    ("numbers inline after a sentence", "1. Do X. 2. Do Y.", ["1. Do X.", "2. Do Y."]),
    (
        "a bare enumerator stays with its item",
        "Do this first. 2. Then this.",
        ["Do this first.", "2. Then this."],
    ),
    (
        "figure and number abbreviations",
        "See Fig. 3 for the flow. Call No. 5 now.",
        ["See Fig. 3 for the flow.", "Call No. 5 now."],
    ),
    (
        "a number ending a sentence",
        "Read chapter 2. Then stop.",
        ["Read chapter 2.", "Then stop."],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole_text(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def _chop(text: str, rng: random.Random) -> list[str]:
    pieces, i = [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        pieces.append(text[i : i + n])
        i += n
    return pieces


async def _aiter(pieces: list[str]) -> AsyncIterator[str]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_streamed_in_small_pieces_gives_the_same_sentences(
    text: str, expected: list[str]
) -> None:
    rng = random.Random(7)
    for pieces in ([*text], _chop(text, rng), _chop(text, rng)):
        assert [s async for s in sentences(_aiter(pieces))] == expected


def test_a_sentence_is_emitted_as_soon_as_the_next_one_has_started() -> None:
    stream = SentenceStream()
    assert stream.feed("Add documents with the CLI.") == []
    # A boundary before a half-typed word could still vanish ("Dr." + " Smith").
    assert stream.feed(" Th") == []
    assert stream.feed("en ask") == ["Add documents with the CLI."]
    assert stream.feed(" away.") == []
    assert stream.flush() == ["Then ask away."]


def test_abbreviation_at_the_end_of_a_piece_is_not_a_boundary() -> None:
    stream = SentenceStream()
    assert stream.feed("Ask Dr.") == []
    assert stream.feed(" Smith about it. ") == []
    assert stream.feed("She knows.") == ["Ask Dr. Smith about it."]


def test_unclosed_code_fence_holds_everything_until_it_closes() -> None:
    stream = SentenceStream()
    assert stream.feed("Run:\n```\nstep one. step two. ") == ["Run:"]
    assert stream.feed("done.\n") == []
    assert stream.feed("```\nThen read it. Ok, ") == [
        "```\nstep one. step two. done.\n```",
        "Then read it.",
    ]


async def test_sentences_yields_before_the_stream_ends() -> None:
    release = asyncio.Event()

    async def chunks() -> AsyncIterator[str]:
        yield "First sentence is here. Second "
        await release.wait()
        yield "one."

    stream = sentences(chunks())
    assert await anext(stream) == "First sentence is here."
    release.set()
    assert [s async for s in stream] == ["Second one."]
