"""The spoken variant: what the avatar says must be plain speech and fit the time limit."""

from __future__ import annotations

import pytest

from knowledge.answering.sentences import split_sentences
from knowledge.answering.spoken import speakable, spoken_variant

ANSWER = (
    "To add documents, run `avatarbot knowledge add` with files, folders or URLs [1]. "
    "See the [loading guide](https://example.com/guide#add) or https://example.com/faq. "
    "**Datasources** keep teams apart, e.g. `hr` and `eng` [2][3].\n\n"
    "```bash\navatarbot knowledge add ./handbook --datasource hr\n```\n\n"
    "- Re-adding is safe.\n- Unchanged files are skipped"
)


def test_markup_code_urls_and_citations_are_gone() -> None:
    spoken = speakable(ANSWER)
    assert spoken == (
        "To add documents, run avatarbot knowledge add with files, folders or URLs. "
        "See the loading guide. Datasources keep teams apart, e.g. hr and eng. "
        "Re-adding is safe. Unchanged files are skipped."
    )
    for gone in ("[1]", "[2]", "http", "```", "**", "`", "--datasource", "./handbook", "- "):
        assert gone not in spoken


def test_env_variable_names_are_read_as_words() -> None:
    assert speakable("Set `SPOKEN_MAX_SECONDS` to 30 [4].") == "Set SPOKEN MAX SECONDS to 30."


@pytest.mark.parametrize("seconds", [5, 10, 20, 60])
def test_cut_at_a_sentence_boundary_within_the_limit(seconds: float) -> None:
    text = " ".join(
        f"Sentence number {i} explains one more detail about the knowledge base [1]."
        for i in range(1, 40)
    )
    spoken = spoken_variant(text, max_seconds=seconds)
    words = len(spoken.split())
    assert 0 < words <= seconds * 150 / 60
    # Whole sentences only, and as many as fit: one more would break the limit.
    sentences = split_sentences(spoken)
    assert all(s.startswith("Sentence number") and s.endswith("base.") for s in sentences)
    assert words + 11 > seconds * 150 / 60


def test_one_overlong_sentence_is_still_said_in_part() -> None:
    spoken = spoken_variant("word " * 400 + "end.", max_seconds=10)
    assert len(spoken.split()) == 25
    assert spoken.endswith(".")


def test_short_answer_is_said_whole() -> None:
    text = "Run `avatarbot knowledge add knowledge/sample` first [1]. Then ask again [2]."
    expected = "Run avatarbot knowledge add knowledge/sample first. Then ask again."
    assert spoken_variant(text) == expected


def test_code_that_cannot_be_said_leaves_no_dangling_words() -> None:
    text = (
        "Type `/ask-video` and your question, for example `/ask-video how do I add documents?`. "
        "Then loop, e.g. `while (x) { y(); }`."
    )
    assert speakable(text) == (
        "Type ask-video and your question, for example ask-video how do I add documents? Then loop."
    )
