"""The spoken-fidelity measure of `avatarbot eval answers`: it must see the holes the old
deleter left and must not count a reading ("e.g." said "for example") as a loss."""

from __future__ import annotations

import pytest

from knowledge.spoken_eval import (
    broken_sentences,
    fidelity,
    kept_in_order,
    sentence_flaws,
    summarize,
)


@pytest.mark.parametrize(
    ("script", "flaw"),
    [
        # What the avatar used to say for the three sentences.
        ("Set a HeyGen key with for the legacy streaming API.", "missing word"),
        ("See for more.", "missing word"),
        ("Run avatarbot knowledge add. /docs to add files.", "split inside a word"),
        ("Read the guide at .", "dangling word"),
        ("Keys differ, e.g.. Teams too.", "orphan punctuation"),
        ("Use the flag ( ) here.", "empty parentheses"),
        ("Open https://example.com now.", "url"),
        ("Run `make` now.", "code mark"),
        ("It works [1].", "citation mark"),
    ],
)
def test_a_hole_is_a_broken_sentence(script: str, flaw: str) -> None:
    assert any(flaw in sentence_flaws(s) for s in broken_sentences(script))


def test_whole_sentences_are_not_broken() -> None:
    script = (
        "Set the HEYGEN LIVE API setting to streaming. See the link in the thread for more. "
        "Run avatarbot knowledge add to add files, for example setup.md. Log in."
    )
    assert broken_sentences(script) == []


def test_fidelity_is_the_share_of_prose_words_kept_in_order() -> None:
    written = "Run `avatarbot knowledge add ./docs` to add files [1], e.g. PDFs."
    assert fidelity(written, "Run avatarbot knowledge add to add files, for example PDFs.") == 1
    # Prose words: run, to, add, files, for, example, pdfs (7); "files" and "to" lost.
    assert fidelity(written, "Run add for example PDFs.") == pytest.approx(5 / 7)
    assert fidelity(written, "PDFs, for example, run add.") < 0.5  # out of order
    assert kept_in_order(["a", "b", "c"], ["a", "x", "c", "b"]) == 2


def test_summary_counts_broken_sentences_over_all_answers() -> None:
    report = summarize([("See it at x.", "See it at ."), ("Fine.", "Fine.")])
    assert report.summary() == {
        "spoken_fidelity": (3 / 4 + 1) / 2,  # "x" lost of see, it, at, x
        "spoken_sentences": 2,
        "spoken_broken": 1,
    }
