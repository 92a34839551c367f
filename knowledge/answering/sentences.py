"""Sentence segmentation, for whole texts and for text that arrives in pieces.

pysbd does the linguistic work (abbreviations such as e.g., Dr., U.S., decimals, ellipses,
list items). It does not know markdown, so spans it must never split inside — fenced code
blocks, inline code, URLs and paths — are masked with letters of the same length before it runs and
the offsets are mapped back onto the original text.

Streaming (`sentences`, `SentenceStream`): a sentence is emitted only once the text after it
holds a complete word, because a boundary at the very end of the buffer may vanish when the
next piece arrives ("Hello Dr." + " Smith"). Emitted text is dropped from the buffer, so each
new piece re-segments only the unfinished tail.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from functools import lru_cache

import pysbd

from knowledge.answering import markup

# An unclosed fence or backtick masks everything up to the end of the buffer: in a stream
# the closing mark has not arrived yet, and nothing inside may end a sentence.
_INLINE_CODE = re.compile(r"`[^`\n]*(?:`|\Z)")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>()\[\]`\"']+")
_URL_TRAILING = ".,;:!?"
# A complete word followed by something: the next sentence has really started.
_STARTED = re.compile(r"\w[\s\W]")
# pysbd takes "1." after a word for a sentence end ("Step 1. Install it." -> "Step",
# "1. Install it.") and cuts a bare enumerator off its item ("2." | "Then this.").
_ENUMERATOR = re.compile(r"\d{1,3}[.)]")
_NUMBERING = re.compile(r"(?:[A-Za-z]+[ \t]+)?\d{1,3}[.)]")  # "2." or "Step 2." alone
_OPEN_WORD = re.compile(r"\w[ \t]*$")  # a piece ending in a word, on the same line


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def _protected_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in spans)

    for m in markup.FENCED.finditer(text):
        spans.append(m.span())
    for m in _INLINE_CODE.finditer(text):
        if free(*m.span()):
            spans.append(m.span())
    for m in (*_URL.finditer(text), *markup.PATH.finditer(text)):
        start, end = m.span()
        # A sentence may end right after a URL: its final period is punctuation.
        while end > start and text[end - 1] in _URL_TRAILING:
            end -= 1
        if free(start, end):
            spans.append((start, end))
    return spans


def _mask(text: str) -> str:
    # Letters, not spaces or dots: pysbd sees one long word and never splits inside it.
    chars = list(text)
    for start, end in _protected_spans(text):
        chars[start:end] = "x" * (end - start)
    return "".join(chars)


@lru_cache(maxsize=1024)  # the same answer is split for the thread, the script, the speech
def _boundaries(text: str) -> tuple[int, ...]:
    """Start offsets of each sentence in `text` (the first is always 0)."""
    if not text.strip():
        return (0,)
    masked = _mask(text)
    starts = [0]
    for span in _segmenter().segment(masked):
        if span.start > starts[-1]:
            starts.append(span.start)
    return tuple(_join_enumerators(text, starts))


def _join_enumerators(text: str, starts: list[int]) -> list[int]:
    """Undo splits that leave a numbering ("Step 1.", "2.") apart from its sentence."""
    kept = [starts[0]]
    ends = [*starts[1:], len(text)]
    for start, end in zip(starts[1:], ends[1:], strict=True):
        before = text[kept[-1] : start]
        piece = text[start:end]
        if _NUMBERING.fullmatch(before.strip()) or (
            _ENUMERATOR.match(piece) and _OPEN_WORD.search(before)
        ):
            continue
        kept.append(start)
    return kept


def _pieces(text: str) -> list[str]:
    """Consecutive slices of `text` that concatenate back to it, one per sentence."""
    starts = _boundaries(text)
    ends = [*starts[1:], len(text)]
    return [text[s:e] for s, e in zip(starts, ends, strict=True)]


def split_sentences(text: str) -> list[str]:
    """All sentences of a complete text, stripped, empty ones dropped."""
    return [p.strip() for p in _pieces(text) if p.strip()]


class SentenceStream:
    """Push text in, get complete sentences out; `flush` returns the rest at the end."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        if not _STARTED.search(self._buffer):
            return []
        pieces = _pieces(self._buffer)
        # The last piece may still grow. The boundary before it is certain only once it
        # holds a complete word; until then the piece before it stays open too.
        keep = 1 if _STARTED.search(pieces[-1].lstrip()) else 2
        done, rest = pieces[:-keep], pieces[-keep:]
        self._buffer = "".join(rest)
        return [s.strip() for s in done if s.strip()]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return split_sentences(rest)


async def sentences(chunks: AsyncIterable[str]) -> AsyncIterator[str]:
    """Yield each complete sentence of streamed text as soon as it is known to be complete."""
    stream = SentenceStream()
    async for chunk in chunks:
        for sentence in stream.feed(chunk):
            yield sentence
    for sentence in stream.flush():
        yield sentence
