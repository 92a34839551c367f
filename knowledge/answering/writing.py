"""The chosen sentences written as one cited answer."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.answering.prose import finish
from knowledge.answering.selection import Candidate


@dataclass(frozen=True)
class Composition:
    """The composed text and, in citation-number order, which hits `[1]`, `[2]`, … refer to."""

    text: str
    cited: tuple[int, ...]


def write(chosen: list[Candidate]) -> Composition:
    """The chosen sentences in passage order, each run from one passage ending with its
    citation; passages cited in the order they first appear."""
    if not chosen:
        return Composition("", ())
    chosen = sorted(chosen, key=lambda c: (c.passage, c.position))
    cited: list[int] = []
    parts: list[str] = []
    for i, c in enumerate(chosen):
        closes_run = i == len(chosen) - 1 or chosen[i + 1].passage != c.passage
        if not closes_run:
            parts.append(finish(c.text, None))
            continue
        if c.passage not in cited:
            cited.append(c.passage)
        parts.append(finish(c.text, cited.index(c.passage) + 1))
    return Composition(" ".join(parts), tuple(cited))
