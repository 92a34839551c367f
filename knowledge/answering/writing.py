"""The chosen sentences written as one cited answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.answering import markup
from knowledge.answering.prose import finish
from knowledge.answering.selection import Candidate, terms
from knowledge.models import Hit

_ENUMERATOR = re.compile(r"^\d{1,2}[.)]\s+")
_HEADING_WORDS = 8  # a longer heading is a sentence of its own, not a label


@dataclass(frozen=True)
class Composition:
    """The composed text and, in citation-number order, which hits `[1]`, `[2]`, … refer to."""

    text: str
    cited: tuple[int, ...]


def write(chosen: list[Candidate], hits: Sequence[Hit] = ()) -> Composition:
    """The chosen sentences in passage order, each run from one passage ending with its
    citation; passages cited in the order they first appear. An answer that opens a section
    is introduced by the section's heading when the heading says something the sentence does
    not ("June 20th, 2024: Claude 3.5 Sonnet is now available …", "2. Develop your test
    cases: …"): documents put the date, the step or the name there."""
    if not chosen:
        return Composition("", ())
    chosen = sorted(chosen, key=lambda c: (c.passage, c.position))
    cited: list[int] = []
    parts: list[str] = []
    first = chosen[0]
    heading = _heading(hits[first.passage], first) if first.passage < len(hits) else ""
    if heading:
        parts.append(f"{heading}:")
    for i, c in enumerate(chosen):
        closes_run = i == len(chosen) - 1 or chosen[i + 1].passage != c.passage
        if not closes_run:
            parts.append(finish(c.text, None))
            continue
        if c.passage not in cited:
            cited.append(c.passage)
        parts.append(finish(c.text, cited.index(c.passage) + 1))
    return Composition(" ".join(parts), tuple(cited))


def _heading(hit: Hit, first: Candidate) -> str:
    """The heading the passage opens with, when the answer starts there and the heading adds
    to it; else empty."""
    chunk = hit.chunk
    if not first.opens or not chunk.section or not chunk.text.lstrip().startswith("#"):
        return ""
    heading = " ".join(chunk.section.split(">")[-1].split()).rstrip(":.")
    heading = _ENUMERATOR.sub("", heading)  # "2. Develop your test cases": the step's name
    words = terms(heading)
    said = set(terms(f"{first.text} {chunk.title}"))
    if not words or len(heading.split()) > _HEADING_WORDS or all(w in said for w in words):
        return ""
    if not (heading[0].isupper() or heading[0].isdigit()) or markup.HTML_TAG.search(heading):
        return ""  # a code name or markup: not a label to read out
    return heading
