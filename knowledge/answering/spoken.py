"""The spoken variant of an answer: what the avatar says.

Same content as the written answer, minus what makes no sense aloud — markdown, code blocks,
URLs, citation marks — and cut at a sentence boundary so it fits a time budget (a short
video script is about a minute of speech).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

from knowledge.answering import markup
from knowledge.answering.sentences import sentences, split_sentences

WORDS_PER_MINUTE = 150  # an unhurried speaking pace; HeyGen voices are close to it

_FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,–-]\s*\d+)*\]")
_SLACK_LINK = re.compile(r"<(?:https?://|mailto:)[^|>]*\|([^>]+)>")
_URL = re.compile(r"<?(?:https?://|www\.)[^\s<>]*[^\s<>.,;:!?)\]'\"]>?")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
_INLINE_CODE = re.compile(r"`([^`\n]*)`")
_EMPTY_PARENS = re.compile(r"\(\s*[,;:]?\s*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,;:.!?])")
_DANGLING = re.compile(
    r"(?:,?\s*\b(?:for example|for instance|e\.g\.|such as)"
    r"|\b(?:at|see|visit|from|to|on|in|or|and))\s*([.,;:!?])",
    re.IGNORECASE,
)


def _inline_code(match: re.Match[str]) -> str:
    # Short code names a thing the sentence needs ("run avatarbot knowledge add");
    # longer code is not speakable.
    code = match.group(1).strip()
    if len(code.split()) > 6 or re.search(r"[{}();=<>$\\]", code):
        return ""
    return code.replace("_", " ").strip("./")


def speakable(text: str) -> str:
    """The answer as plain sentences a voice can read: no markup, code, URLs or citations."""
    text = _FENCED.sub("\n", text)
    text = markup.IMAGE.sub("", text)
    text = _SLACK_LINK.sub(r"\1", text)
    text = markup.LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _CITATION.sub("", text)
    text = markup.HTML_TAG.sub("", text)
    text = _HEADING.sub("", text)
    text = _LIST_MARKER.sub("", text)
    text = _INLINE_CODE.sub(_inline_code, text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _EMPTY_PARENS.sub("", text)
    text = text.replace("|", ", ")
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            # A list item or heading line becomes its own sentence when spoken.
            lines.append(line if markup.TERMINAL.search(line) or line.endswith(":") else line + ".")
    text = " ".join(lines)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    # "the guide at ." once its URL is gone
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", _DANGLING.sub(r"\1", text))
    text = re.sub(r"([,;:])\s*([.!?])", r"\2", text)
    text = re.sub(r"([!?])\.", r"\1", text)  # "…documents?`." once the backticks are gone
    return re.sub(r"\s+", " ", text).strip()


def spoken_variant(
    text: str, max_seconds: float = 60.0, words_per_minute: int = WORDS_PER_MINUTE
) -> str:
    """`speakable(text)` cut at a sentence boundary to at most `max_seconds` of speech.

    A first sentence that alone is too long is cut at the word limit, so there is always
    something to say when there is an answer.
    """
    budget = max(1, int(max_seconds * words_per_minute / 60))
    spoken: list[str] = []
    used = 0
    for sentence in split_sentences(speakable(text)):
        words = len(sentence.split())
        if used + words > budget:
            if not spoken:
                cut = " ".join(sentence.split()[:budget]).rstrip(",;:")
                spoken.append(cut if markup.TERMINAL.search(cut) else cut + ".")
            break
        spoken.append(sentence)
        used += words
    return " ".join(spoken)


async def spoken_sentences(
    chunks: AsyncIterable[str], max_seconds: float = 60.0, words_per_minute: int = WORDS_PER_MINUTE
) -> AsyncIterator[str]:
    """The spoken form of a streamed answer, one sentence as soon as it completes.

    Each raw sentence goes through `speakable` (markup, citation marks and URLs gone); a
    sentence with nothing left to say is skipped, and the stream stops at the time budget
    (like `spoken_variant`, but without waiting for the whole answer).
    """
    budget = max(1, int(max_seconds * words_per_minute / 60))
    used = 0
    async for raw in sentences(chunks):
        for sentence in split_sentences(speakable(raw)):
            words = len(sentence.split())
            if used + words > budget:
                if used == 0:
                    yield " ".join(sentence.split()[:budget]).rstrip(",;:") + "."
                return
            used += words
            yield sentence
