"""Sentence vectors are remembered: a popular page's sentences are embedded once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from knowledge.answering.recent_vectors import RecentVectors


class LetterCounts:
    """A small real embedding (letter counts, L2-normalised) that records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.asked.append(list(texts))
        rows = np.zeros((len(texts), 26), dtype=np.float32)
        for i, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    rows[i, ord(ch) - 97] += 1
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def test_known_sentences_are_not_embedded_again_and_vectors_are_the_same() -> None:
    model = LetterCounts()
    vectors = RecentVectors(model)
    first = vectors(["what is voyage", "Voyage AI makes models.", "Pricing is per seat."])
    second = vectors(["which provider", "Voyage AI makes models.", "which provider"])
    assert model.asked[-1] == ["which provider"]  # only the new text, once
    assert np.allclose(second[1], first[1])
    assert np.allclose(
        second,
        model.embed_documents(["which provider", "Voyage AI makes models.", "which provider"]),
    )


def test_only_the_most_recent_texts_are_kept() -> None:
    model = LetterCounts()
    vectors = RecentVectors(model, size=2)
    vectors(["alpha", "beta"])
    vectors(["alpha"])  # alpha is now the most recent
    vectors(["gamma"])  # beta goes
    vectors(["alpha", "beta"])
    assert model.asked[-1] == ["beta"]
    assert vectors([]).shape[0] == 0
