"""Conversational questions are cleaned before the lexical search, nothing else is."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.retrieval.query import ask_and_situation, lexical_query


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "Hi! Can you tell me how to reset my password please? Thanks :)",
            "how to reset my password",
        ),
        ("does anyone know where invoices go? thanks in advance", "where invoices go"),
        ("How do I use the team plan?", "How do I use the team plan?"),  # content stays
        ("thanks", "thanks"),  # nothing left: searched as written
    ],
)
def test_filler_goes_content_stays(question: str, expected: str) -> None:
    assert expected in lexical_query(question)
    assert "please" not in lexical_query(question).lower() or question == "thanks"


def test_a_chatty_question_finds_the_page_not_the_polite_footer(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    # A page full of politeness, and the page that answers.
    (docs / "contact.md").write_text(
        "# Contact us\n\nThanks for reaching out! Hi there, please say hello: we appreciate "
        "every message. Thank you, thanks again, cheers and kind regards from the team.\n"
    )
    (docs / "passwords.md").write_text(
        "# Passwords\n\nTo reset a password, open Settings and choose Security.\n"
    )
    kb = KnowledgeBase(KnowledgeConfig(data_dir=tmp_path / "data", embeddings="none"))
    kb.add([docs])
    hits = kb.search("hi! thanks, please how do i reset my password? thank you, cheers", k=2)
    assert Path(hits[0].chunk.source).name == "passwords.md"


@pytest.mark.parametrize(
    ("question", "ask", "situation"),
    [
        (
            "we built a ticket classifier and accuracy looks ok. how else should we measure it?",
            "how else should we measure it?",
            "we built a ticket classifier and accuracy looks ok.",
        ),
        ("How do I rotate the token?", "How do I rotate the token?", ""),  # all ask
        ("I run the shop. It sells shoes.", "I run the shop. It sells shoes.", ""),  # no ask
    ],
)
def test_the_ask_is_told_apart_from_the_situation(question: str, ask: str, situation: str) -> None:
    assert ask_and_situation(question) == (ask, situation)
